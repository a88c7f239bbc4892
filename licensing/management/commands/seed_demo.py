"""Deterministic, realistic demo and scale data.

``small`` builds a portal an administrator can click through in a minute; ``large``
builds the sizes of CONTRACT.md (about 5 license servers, 2,000 key packs, 100,000
machines, 150,000 licenses and 1,000,000 audit events) with bulk inserts.

The demo spans four years, from the article's Windows Server 2003 license servers to
Windows Server 2022 (``licensing.management.seed.world``): key packs of each server's own
version or older, per-device and per-user. Its history is consistent in time: every object
is created, and every event dated, after the objects it depends on, and the audit trail's
sequence runs in time order (``seed.history``). Transfers, CSC calls and revocations go
through the real services at the moments they happened (``seed.stories``), and the Remote
Desktop farm's collector sends a snapshot with its per-user CALs through the real import
(``seed.snapshot``). One server's temporary CALs end within three weeks with fewer seats
free than machines that will need one: the shortfall forecast of rule 14.
"""

import time
from datetime import UTC, datetime, timedelta

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction

from core.models import AuditEvent
from inventory.models import ClientMachine
from licensing.management.seed.history import History
from licensing.management.seed.snapshot import send_snapshot
from licensing.management.seed.stories import Stories
from licensing.management.seed.world import RDS, SCALES, World
from licensing.models import KeyPack, License, LicenseServer, PerUserIssuance, Revocation, TransferRequest

DEMO_STAFF = [("ana.admin", "admin"), ("ben.admin", "admin"), ("rita.requester", "requester"),
              ("audrey.auditor", "auditor")]


class Command(BaseCommand):
    help = "Build deterministic demo data (small) or the CONTRACT.md scale data (large)."

    def add_arguments(self, parser):
        parser.add_argument("--scale", choices=sorted(SCALES), default="small")
        parser.add_argument("--seed", type=int, default=315262)
        parser.add_argument("--if-empty", action="store_true",
                            help="Do nothing when the portal already holds license servers.")

    def handle(self, *args, scale, seed, if_empty, **options):
        if LicenseServer.objects.exists():
            if if_empty:
                self.stdout.write("The portal already holds data; seed_demo left it as it is.")
                return
            raise CommandError("The database already holds license servers; seed an empty database.")
        started = time.monotonic()
        today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        size = SCALES[scale]
        world = World(scale=size, seed=seed, today=today)
        with transaction.atomic():
            staff = self._staff(since=world.start - timedelta(days=1))
            history = History(world, seed=seed, staff=staff)
            history.write_objects()
            stories = Stories(world, servers=history.servers, contacts=history.contacts, staff=staff)
            history.replay(stories.steps(), size.audit_events)
            send_snapshot(history.servers[RDS], rng=world.rng, today=today)
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("ANALYZE")
        counts = {
            "license servers": LicenseServer.objects.count(), "key packs": KeyPack.objects.count(),
            "machines": ClientMachine.objects.count(), "licenses": License.objects.count(),
            "revocations": Revocation.objects.count(), "per-user issuances": PerUserIssuance.objects.count(),
            "transfers": TransferRequest.objects.count(), "audit events": AuditEvent.objects.count(),
        }
        summary = ", ".join(f"{n:,} {label}" for label, n in counts.items())
        self.stdout.write(f"Seeded {scale} data in {time.monotonic() - started:.1f} s: {summary}.")

    def _staff(self, *, since: datetime) -> dict:
        """The demo's people; those it creates joined before the history they appear in."""
        User = get_user_model()
        staff = {}
        for username, role in DEMO_STAFF:
            user, created = User.objects.get_or_create(username=username, defaults={"email": f"{username}@example.com"})
            if created:
                user.set_unusable_password()
                user.date_joined = since
                user.save()
            user.groups.set([Group.objects.get(name=role)])
            staff[username] = user
        return staff
