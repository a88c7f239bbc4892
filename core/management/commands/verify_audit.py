from django.core.management.base import BaseCommand, CommandError

from core.audit import audit_verify_chain


class Command(BaseCommand):
    help = (
        "Recompute the audit trail's hash chain. Exits 0 and prints the number of events when "
        "it is intact; otherwise exits 1 and names the first event that does not verify."
    )

    def handle(self, *args, **options):
        result = audit_verify_chain()
        if not result.ok:
            raise CommandError(
                f"The audit chain does not verify. First event that does not verify: "
                f"#{result.first_bad_sequence} ({result.reason}); {result.events} events checked.",
                returncode=1,
            )
        self.stdout.write(f"Audit chain intact: {result.events} events verified.")
