"""``collector_token``: a new API token for a collector account, printed once."""

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from licensing.services.collectors import collector_token_issue


class Command(BaseCommand):
    help = ("Print a new API token for a collector account (valid --days days, 365 by default) and revoke its "
            "earlier ones. The token is shown only here: put it in the license server's scheduled task.")

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--days", type=int, default=365)

    def handle(self, *args, username, days, **options):
        try:
            token, expires_at, server = collector_token_issue(username=username, days=days)
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages) + " No token was issued.") from exc
        self.stderr.write(f"Token for {username} (sends for {server.name}), valid until "
                          f"{expires_at:%Y-%m-%d %H:%M} UTC; earlier tokens revoked:")
        self.stdout.write(token)
