from django.core.management.base import BaseCommand, CommandError

from core.audit import SYSTEM_ACTOR
from core.signin import lockout_end, normalise_username


class Command(BaseCommand):
    help = "End the login lockout of a user name (from every address) and forget its failed sign-ins."

    def add_arguments(self, parser):
        parser.add_argument("username")

    def handle(self, *args, username, **options):
        if not normalise_username(username):
            raise CommandError("Give the user name to unlock.")
        cleared = lockout_end(username=username, actor=SYSTEM_ACTOR)
        if not cleared:
            raise CommandError(f"{username} has no failed sign-ins on record, so there is nothing to unlock.")
        self.stdout.write(f"Unlocked {username}: failed sign-ins from {cleared} address(es) forgotten.")
