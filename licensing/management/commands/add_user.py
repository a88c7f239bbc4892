"""``add_user``: a person's account with one role, or a collector account bound to its license
server. It lives with licensing because a collector's binding names a license server."""

import os

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from core.users import ALL_ROLES
from licensing.services.collectors import account_save


class Command(BaseCommand):
    help = ("Create a portal user or update it, with one role (admin, requester or auditor), or a collector "
            "account bound to one license server (--role collector --license-server SERVER).")

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--role", required=True, choices=ALL_ROLES)
        parser.add_argument(
            "--password",
            help="The password (or set PORTAL_PASSWORD); kept as it is when omitted for an existing user. "
                 "A collector has none.",
        )
        parser.add_argument("--email", default="")
        parser.add_argument("--license-server", default=None, metavar="SERVER",
                            help="The license server a collector account sends for (its name in the portal).")

    def handle(self, *args, username, role, password, email, license_server, **options):
        if role != "collector":
            password = password or os.environ.get("PORTAL_PASSWORD")
        try:
            user, created = account_save(username=username, role=role, password=password, email=email,
                                         license_server=license_server)
        except ValidationError as exc:
            raise CommandError("Refused, and nothing was changed: " + " ".join(exc.messages)) from exc
        what = f"{role}, sends for {user.collector_binding.license_server.name}" if role == "collector" else role
        self.stdout.write(f"{'Created' if created else 'Updated'} {username} ({what}).")
