from django.core.management.base import BaseCommand

from licensing.tasks import expire_due_temporary_licenses


class Command(BaseCommand):
    help = "Mark temporary CALs past their 90 days expired (the scheduled task's code)."

    def handle(self, *args, **options):
        count = expire_due_temporary_licenses()
        self.stdout.write(f"{count} temporary CAL(s) expired.")
