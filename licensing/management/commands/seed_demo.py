"""Deterministic, realistic demo and scale data.

``small`` builds a portal an administrator can click through in a minute; ``large``
builds the sizes of CONTRACT.md (about 5 license servers, 2,000 key packs, 100,000
machines, 150,000 licenses and 1,000,000 audit events) with bulk inserts. Every rule
of DOMAIN.md holds in the result, and the audit chain verifies. A handful of transfers
and CSC calls then go through the real services, so their history is genuine.
"""

import random
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction

from core.audit import AuditBatch
from core.models import AuditEvent
from inventory.models import OS_EDITIONS_WITH_BUILTIN_CAL, ClientMachine, MachineStatus, OsEdition
from licensing.models import (
    ActivationStatus,
    CalType,
    CscContact,
    KeyPack,
    KeyPackOrigin,
    License,
    LicenseEndReason,
    LicenseKind,
    LicenseProgram,
    LicenseServer,
    LicenseStatus,
    WindowsVersion,
)
from licensing.services import transfers as tsvc
from licensing.services.licenses import license_issue_temporary
from licensing.services.reissue import reissue_install, reissue_log_call

V = WindowsVersion


@dataclass(frozen=True)
class Scale:
    servers: int
    key_packs: int
    machines: int
    licenses: int
    audit_events: int


SCALES = {
    "small": Scale(servers=3, key_packs=14, machines=300, licenses=420, audit_events=0),
    "large": Scale(servers=5, key_packs=2_000, machines=100_000, licenses=150_000, audit_events=1_000_000),
}

SERVERS = [
    ("TSLS-HQ-01", V.WINDOWS_SERVER_2003, "Head office, rack B4"),
    ("TSLS-BRANCH-01", V.WINDOWS_SERVER_2003, "Leeds branch"),
    ("TSLS-DC2-01", V.WINDOWS_SERVER_2008_R2, "Second data centre"),
    ("TSLS-CLOUD-01", V.WINDOWS_SERVER_2016, "Azure VM"),
    ("TSLS-CLOUD-02", V.WINDOWS_SERVER_2019, "Azure VM"),
]
VERSION_ORDER = list(V.values)
OS_WEIGHTS = [
    (OsEdition.WINDOWS_XP_HOME, 8), (OsEdition.WINDOWS_XP_PROFESSIONAL, 10),
    (OsEdition.WINDOWS_2000_PROFESSIONAL, 4), (OsEdition.WINDOWS_2000_SERVER, 1),
    (OsEdition.NT4_WORKSTATION, 2), (OsEdition.WINDOWS_9X, 2), (OsEdition.WINDOWS_CE, 5),
    (OsEdition.WINDOWS_VISTA, 3), (OsEdition.WINDOWS_7, 14), (OsEdition.WINDOWS_8, 4),
    (OsEdition.WINDOWS_10, 30), (OsEdition.WINDOWS_11, 15), (OsEdition.OTHER, 2),
]
PROGRAM_WEIGHTS = [
    (LicenseProgram.SELECT, 30), (LicenseProgram.OPEN, 25), (LicenseProgram.ENTERPRISE_AGREEMENT, 20),
    (LicenseProgram.RETAIL, 10), (LicenseProgram.CAMPUS, 5), (LicenseProgram.SCHOOL, 4),
    (LicenseProgram.SERVICE_PROVIDER, 3), (LicenseProgram.OTHER, 3),
]
SITES = ["London", "Leeds", "Dublin", "Frankfurt", "Madrid", "Boston", "Toronto", "Singapore"]
CSC_CONTACTS = [
    ("North America", "+1 888 555 0142", "Mon-Fri 06:00-18:00 Pacific"),
    ("United Kingdom", "+44 20 7946 0321", "Mon-Fri 08:00-18:00 GMT"),
    ("Ireland (EMEA)", "+353 1 555 0199", "Mon-Fri 08:00-18:00 GMT"),
    ("Germany", "+49 30 5550 1234", "Mo-Fr 08:00-18:00 MEZ"),
    ("Australia", "+61 2 5550 4321", "Mon-Fri 08:00-18:00 AEST"),
]
DEMO_STAFF = [("ana.admin", "admin"), ("ben.admin", "admin"), ("rita.requester", "requester"),
              ("audrey.auditor", "auditor")]
FILLER_ACTIONS = ["machine.updated", "auth.login", "report.exported", "key_pack.updated"]


def weighted(rng: random.Random, pairs):
    values, weights = zip(*pairs, strict=True)
    return rng.choices(values, weights=weights, k=1)[0]


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
        self.rng = random.Random(seed)
        self.size = SCALES[scale]
        self.today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        with transaction.atomic():
            self.staff = self._staff()
            self.chain = AuditBatch(batch_size=10_000)
            self.clock = self.today - timedelta(days=3 * 365)
            contacts = self._contacts()
            servers = self._servers()
            packs = self._key_packs(servers)
            machines = self._machines()
            self._licenses(packs, machines, servers)
            self._filler_events(machines)
            self.chain.close()
        self._workflow(servers, contacts)
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("ANALYZE")
        counts = {
            "license servers": LicenseServer.objects.count(), "key packs": KeyPack.objects.count(),
            "machines": ClientMachine.objects.count(), "licenses": License.objects.count(),
            "transfers": tsvc.TransferRequest.objects.count(), "audit events": AuditEvent.objects.count(),
        }
        summary = ", ".join(f"{n:,} {label}" for label, n in counts.items())
        self.stdout.write(f"Seeded {scale} data in {time.monotonic() - started:.1f} s: {summary}.")

    # -- history clock: events are written in time order, as they would have happened
    def _tick(self, span_seconds: float) -> datetime:
        self.clock += timedelta(seconds=self.rng.uniform(0, span_seconds))
        return min(self.clock, self.today)

    def _staff(self):
        User = get_user_model()
        staff = {}
        for username, role in DEMO_STAFF:
            user, created = User.objects.get_or_create(username=username, defaults={"email": f"{username}@example.com"})
            if created:
                user.set_unusable_password()
                user.save()
            user.groups.set([Group.objects.get(name=role)])
            staff[username] = user
        return staff

    def _contacts(self):
        contacts = CscContact.objects.bulk_create(
            [CscContact(location=loc, phone_number=phone, hours=hours) for loc, phone, hours in CSC_CONTACTS]
        )
        for c in contacts:
            self.chain.add(occurred_at=self._tick(60), actor="ana.admin", action="csc_contact.created",
                           object_type="csccontact", object_id=c.pk, summary=f"CSC contact {c.location} added.",
                           data={"after": {"location": c.location, "phone_number": c.phone_number}})
        return contacts

    def _servers(self):
        servers = []
        for name, version, location in SERVERS[: self.size.servers]:
            servers.append(LicenseServer(
                name=name, windows_version=version, server_id=f"{self.rng.getrandbits(64):016X}",
                activation_status=ActivationStatus.ACTIVATED, location=location,
                builtin_cal_for_pro_clients=LicenseServer.default_builtin_cal(version),
            ))
        servers = LicenseServer.objects.bulk_create(servers)
        for s in servers:
            self.chain.add(occurred_at=self._tick(600), actor="ana.admin", action="license_server.created",
                           object_type="licenseserver", object_id=s.pk, summary=f"License server {s.name} added.",
                           data={"after": {"name": s.name, "windows_version": s.windows_version},
                                 "refs": {"license_server": [s.pk]}})
        return servers

    def _key_packs(self, servers):
        packs = []
        for i in range(self.size.key_packs):
            server = servers[i % len(servers)]
            top = VERSION_ORDER.index(server.windows_version)
            product = VERSION_ORDER[self.rng.randint(max(0, top - 1), top)]
            per_user = self.rng.random() < 0.08
            installed = (self.today - timedelta(days=self.rng.randint(200, 1500))).date()
            packs.append(KeyPack(
                license_server=server, key_pack_id=10_000 + i, product_version=product,
                cal_type=CalType.PER_USER if per_user else CalType.PER_DEVICE,
                license_program=weighted(self.rng, PROGRAM_WEIGHTS),
                agreement_number=f"{self.rng.randint(10_000_000, 99_999_999)}",
                total_licenses=self.rng.choice([5, 10, 20, 25, 50, 100, 150, 200, 250]),
                installed_on=installed, origin=KeyPackOrigin.ORIGINAL,
                description=f"{product.replace('_', ' ').title()} TS CALs",
            ))
        packs = KeyPack.objects.bulk_create(packs, batch_size=5000)
        for p in packs:
            self.chain.add(occurred_at=self._tick(3600), actor="ana.admin", action="key_pack.installed",
                           object_type="keypack", object_id=p.pk,
                           summary=f"Key pack {p.key_pack_id} ({p.total_licenses} CALs) installed.",
                           data={"after": {"key_pack_id": p.key_pack_id, "total_licenses": p.total_licenses},
                                 "refs": {"key_pack": [p.pk], "license_server": [p.license_server_id]}})
        return packs

    def _machines(self):
        rows = []
        for i in range(self.size.machines):
            site = self.rng.choice(SITES)
            retired = self.rng.random() < 0.03
            rows.append(ClientMachine(
                hostname=f"{site[:3].upper()}-WS-{i:06d}", os_edition=weighted(self.rng, OS_WEIGHTS),
                status=MachineStatus.RETIRED if retired else MachineStatus.ACTIVE,
                retired_at=self.today - timedelta(days=self.rng.randint(1, 300)) if retired else None,
                hardware_id=f"{self.rng.getrandbits(80):020x}", asset_tag=f"AT{100000 + i}",
                location=site, owner=f"user{self.rng.randint(1, 9999):04d}",
            ))
        machines = ClientMachine.objects.bulk_create(rows, batch_size=5000)
        for m in machines:
            self.chain.add(occurred_at=self._tick(300), actor="ana.admin", action="machine.created",
                           object_type="clientmachine", object_id=m.pk, summary=f"Machine {m.hostname} added.",
                           data={"after": {"hostname": m.hostname, "os_edition": m.os_edition},
                                 "refs": {"machine": [m.pk]}})
        return machines

    def _licenses(self, packs, machines, servers):
        """Permanent CALs within each pack's total, one per machine and product; temporary
        CALs (active, expiring soon, expired) for machines still without one."""
        by_server = {s.pk: s for s in servers}
        free = {}  # product -> [pack, seats left], per-device packs only
        for p in packs:
            if p.cal_type == CalType.PER_DEVICE:
                free.setdefault(p.product_version, []).append([p, p.total_licenses])
        rows = []
        target = self.size.licenses
        temporaries = max(3, target // 30)
        permanent_target = target - temporaries
        held = set()  # (machine pk, product)
        candidates = [m for m in machines]
        self.rng.shuffle(candidates)
        index = 0
        rounds = 0
        while len(rows) < permanent_target and rounds < 3:
            machine = candidates[index]
            index += 1
            if index == len(candidates):
                index, rounds = 0, rounds + 1
            product = self.rng.choice(list(free))
            if (machine.pk, product) in held or not free[product]:
                continue
            slot = free[product][0]
            pack = slot[0]
            server = by_server[pack.license_server_id]
            if machine.os_edition in OS_EDITIONS_WITH_BUILTIN_CAL and server.builtin_cal_for_pro_clients:
                continue
            slot[1] -= 1
            if slot[1] == 0:
                free[product].pop(0)
            held.add((machine.pk, product))
            issued = self.today - timedelta(days=self.rng.randint(30, 1100), seconds=self.rng.randint(0, 86_000))
            rows.append(License(
                license_id=len(rows) + 1, machine=machine, key_pack=pack, license_server_id=pack.license_server_id,
                product_version=product, kind=LicenseKind.PERMANENT, status=LicenseStatus.ACTIVE,
                issued_at=issued, hardware_id=machine.hardware_id,
            ))
        # Temporary CALs: on machines that hold no permanent CAL for the product.
        temp_made = 0
        product_server = {}
        for p in packs:
            product_server.setdefault(p.product_version, p.license_server_id)
        while temp_made < temporaries:
            machine = self.rng.choice(machines)
            product = self.rng.choice(list(product_server))
            server = by_server[product_server[product]]
            if (machine.pk, product) in held or machine.status == MachineStatus.RETIRED:
                continue
            if machine.os_edition in OS_EDITIONS_WITH_BUILTIN_CAL and server.builtin_cal_for_pro_clients:
                continue
            held.add((machine.pk, product))
            age = self.rng.choice([5, 20, 45, 80, 84, 88, 120, 200])  # some expire within 14 days, some expired
            issued = self.today - timedelta(days=age)
            expired = age >= 90
            rows.append(License(
                machine=machine, license_server=server, product_version=product, kind=LicenseKind.TEMPORARY,
                status=LicenseStatus.EXPIRED if expired else LicenseStatus.ACTIVE, issued_at=issued,
                expires_at=issued + timedelta(days=90), ended_at=issued + timedelta(days=90) if expired else None,
                end_reason=LicenseEndReason.EXPIRED_90_DAYS if expired else "",
            ))
            temp_made += 1
        rows.sort(key=lambda lic: lic.issued_at)
        licenses = License.objects.bulk_create(rows, batch_size=5000)
        for lic in licenses:
            temporary = lic.kind == LicenseKind.TEMPORARY
            self.chain.add(
                occurred_at=max(self.clock, lic.issued_at), actor="ana.admin",
                action="license.temporary_issued" if temporary else "license.issued",
                object_type="license", object_id=lic.pk,
                summary=f"{'Temporary' if temporary else 'Permanent'} CAL #{lic.pk} issued to {lic.machine.hostname}.",
                data={"after": {"kind": lic.kind, "product_version": lic.product_version},
                      "refs": {"machine": [lic.machine_id], "license": [lic.pk],
                               **({"key_pack": [lic.key_pack_id]} if lic.key_pack_id else {})}},
            )

    def _filler_events(self, machines):
        """Day-to-day history (edits, logins, exports) up to the scale's event count."""
        missing = self.size.audit_events - self.chain.count
        if missing <= 0:
            return
        start = self.clock
        step = (self.today - start).total_seconds() / missing
        for i in range(missing):
            when = start + timedelta(seconds=step * i)
            action = FILLER_ACTIONS[i % len(FILLER_ACTIONS)]
            actor = self.rng.choice(["ana.admin", "ben.admin", "audrey.auditor"])
            if action == "machine.updated":
                m = machines[self.rng.randrange(len(machines))]
                self.chain.add(occurred_at=when, actor=actor, action=action, object_type="clientmachine",
                               object_id=m.pk, summary=f"Machine {m.hostname} edited.",
                               data={"changes": {"owner": ["", m.owner]}, "refs": {"machine": [m.pk]}})
            elif action == "auth.login":
                self.chain.add(occurred_at=when, actor=actor, action=action, object_type="user",
                               object_id=self.staff[actor].pk, summary=f"{actor} logged in.", data={})
            elif action == "report.exported":
                self.chain.add(occurred_at=when, actor="audrey.auditor", action=action, object_type="report",
                               object_id="licenses", summary="Report licenses exported as csv.",
                               data={"format": "csv", "filters": {}})
            else:
                self.chain.add(occurred_at=when, actor=actor, action=action, object_type="keypack",
                               object_id="0", summary="Key pack notes edited.", data={"changes": {"notes": ["", ""]}})
        self.clock = self.today

    def _workflow(self, servers, contacts):
        """A few transfers and CSC calls through the real services, in every state."""
        ana, ben, rita = self.staff["ana.admin"], self.staff["ben.admin"], self.staff["rita.requester"]
        server = servers[0]
        product = V.WINDOWS_SERVER_2003
        sources = list(
            License.objects.filter(license_server=server, product_version=product, kind=LicenseKind.PERMANENT,
                                   status=LicenseStatus.ACTIVE).order_by("pk")[:9]
        )
        targets = list(
            ClientMachine.objects.filter(status=MachineStatus.ACTIVE, os_edition=OsEdition.WINDOWS_10)
            .exclude(licenses__product_version=product).order_by("pk")[:9]
        )
        if len(sources) < 9 or len(targets) < 9:
            return
        made = [tsvc.transfer_file(license=s, target_machine=t, reason="Hardware refresh: PC replaced",
                                   actor=rita if i % 2 else ana)
                for i, (s, t) in enumerate(zip(sources, targets, strict=True))]
        for t in made[1:]:
            tsvc.transfer_approve(transfer=t, actor=ben)
        for t in made[3:]:
            tsvc.transfer_confirm_removal(transfer=t, actor=ana, method="registry_key_deleted")
        # Waiting for the CSC on a temporary CAL.
        license_issue_temporary(machine=made[5].target_machine, license_server=server, product_version=product,
                                actor=ana)
        fulfilled = reissue_log_call(
            actor=ana, called_at=self.today - timedelta(days=12), license_server=server, product_version=product,
            license_program=LicenseProgram.SELECT, quantity_requested=3, transfers=made[6:9],
            csc_contact=contacts[0], representative="M. Alvarez", confirmation_number="TSL-4471-2209",
        )
        reissue_install(reissue_request=fulfilled, actor=ben, key_pack_id=90_001, total_licenses=4,
                        description="Reissued after hardware refresh")
        reissue_log_call(
            actor=ana, called_at=self.today - timedelta(days=2), license_server=server, product_version=product,
            license_program=LicenseProgram.SELECT, quantity_requested=2, transfers=made[4:6],
            csc_contact=contacts[1], representative="J. Patel", confirmation_number="TSL-5120-0087",
        )
