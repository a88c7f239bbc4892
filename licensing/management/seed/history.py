"""The demo's world written to the database, and its history to the audit trail in time order.

Rows are inserted in bulk with the moments they came to be (``created_at`` included). The
audit events of that history, the stories the services tell (``stories``) and the day-to-day
filler are then merged into one stream ordered by time: each event is chained as it happened,
so the trail's sequence runs in time order and no event is dated before the object it
touches. A story's step runs the real service with the clock set to its moment
(``clock_at``), between the events before it and the events after it.
"""

import heapq
import random
from bisect import bisect_right
from contextlib import contextmanager
from datetime import datetime, timedelta
from operator import itemgetter

from django.db import connection
from django.utils import timezone

from core.audit import AuditBatch
from core.bulk import insert_rows
from inventory.models import ClientMachine, MachineStatus
from licensing.choices import version_rank
from licensing.management.seed.world import DAY, SERVERS, World
from licensing.models import (
    ActivationStatus,
    CalType,
    CscContact,
    KeyPack,
    KeyPackOrigin,
    License,
    LicenseEndReason,
    LicenseKind,
    LicenseServer,
    LicenseStatus,
    WindowsVersion,
)

MINUTE = timedelta(minutes=1)
BATCH = 10_000
CSC_CONTACTS = [
    ("North America", "+1 888 555 0142", "Mon-Fri 06:00-18:00 Pacific"),
    ("United Kingdom", "+44 20 7946 0321", "Mon-Fri 08:00-18:00 GMT"),
    ("Ireland (EMEA)", "+353 1 555 0199", "Mon-Fri 08:00-18:00 GMT"),
    ("Germany", "+49 30 5550 1234", "Mo-Fr 08:00-18:00 MEZ"),
    ("Australia", "+61 2 5550 4321", "Mon-Fri 08:00-18:00 AEST"),
]
FILLER_ACTIONS = ["machine.updated", "auth.login", "report.exported", "key_pack.updated"]
ADMINS = ["ana.admin", "ben.admin"]
# The story events of a run, counted ahead so that the filler brings the total to the scale's.
STORY_EVENTS = 40

PACK_FIELDS = ("license_server_id", "key_pack_id", "product_version", "cal_type", "license_program",
               "agreement_number", "total_licenses", "installed_on", "origin", "description", "created_at")
MACHINE_FIELDS = ("hostname", "os_edition", "status", "retired_at", "hardware_id", "asset_tag", "location", "owner",
                  "created_at")
LICENSE_FIELDS = ("license_id", "machine_id", "key_pack_id", "license_server_id", "product_version", "kind", "status",
                  "issued_at", "expires_at", "ended_at", "end_reason", "hardware_id", "created_at")


@contextmanager
def clock_at(moment: datetime):
    """Run code as if it were ``moment``: the services, the audit trail and ``auto_now_add``
    fields all read the time from ``django.utils.timezone.now``."""
    real = timezone.now
    timezone.now = lambda: moment
    try:
        yield
    finally:
        timezone.now = real


def insert(model, fields: tuple[str, ...], rows: list[tuple]) -> list[int]:
    """Insert rows as given, ``created_at`` included; returns their ids in order."""
    ids = insert_rows(model, fields, rows)
    if connection.vendor != "postgresql" and "created_at" in fields:
        # bulk_create stamps auto_now_add fields with the present: give them back their moment.
        at = fields.index("created_at")
        model.objects.bulk_update([model(pk=pk, created_at=row[at]) for pk, row in zip(ids, rows, strict=True)],
                                  ["created_at"], batch_size=500)
    return ids


def pack_description(product: str, per_user: bool) -> str:
    family = "TS" if version_rank(product) <= version_rank(WindowsVersion.WINDOWS_SERVER_2008_R2) else "RDS"
    return f"{WindowsVersion(product).label} {family} {'Per User' if per_user else 'Per Device'} CALs"


class History:
    def __init__(self, world: World, *, seed: int, staff: dict):
        self.world = world
        self.seed = seed
        self.staff = staff

    # -- the rows
    def write_objects(self) -> None:
        w = self.world
        self.contacts = CscContact.objects.bulk_create(
            [CscContact(location=loc, phone_number=phone, hours=hours) for loc, phone, hours in CSC_CONTACTS])
        self.servers = []
        for spec, at in zip(SERVERS, w.server_at, strict=True):
            with clock_at(at):
                self.servers.append(LicenseServer.objects.create(
                    name=spec.name, windows_version=spec.version, server_id=f"{w.rng.getrandbits(64):016X}",
                    activation_status=ActivationStatus.ACTIVATED, location=spec.location,
                    builtin_cal_for_pro_clients=LicenseServer.default_builtin_cal(spec.version),
                ))
        ids = insert(KeyPack, PACK_FIELDS, [
            (self.servers[p.server].pk, p.key_pack_id, p.product,
             CalType.PER_USER if p.per_user else CalType.PER_DEVICE, p.program, p.agreement, p.total, p.at.date(),
             KeyPackOrigin.ORIGINAL,
             pack_description(p.product, p.per_user), p.at)
            for p in w.packs
        ])
        for pack, pk in zip(w.packs, ids, strict=True):
            pack.pk = pk
        ids = insert(ClientMachine, MACHINE_FIELDS, [
            (m.hostname, m.os_edition, MachineStatus.RETIRED if m.retired_at else MachineStatus.ACTIVE, m.retired_at,
             m.hardware_id, m.asset_tag, m.location, m.owner, m.at)
            for m in w.machines
        ])
        for machine, pk in zip(w.machines, ids, strict=True):
            machine.pk = pk
        ids = insert(License, LICENSE_FIELDS, [self._license_row(cal) for cal in w.cals])
        for cal, pk in zip(w.cals, ids, strict=True):
            cal.pk = pk

    def _license_row(self, cal) -> tuple:
        machine = self.world.machines[cal.machine]
        permanent = cal.pack is not None
        status = LicenseStatus.EXPIRED if cal.expired else LicenseStatus.ACTIVE
        return (cal.license_id, machine.pk, self.world.packs[cal.pack].pk if permanent else None,
                self.servers[cal.server].pk, cal.product, LicenseKind.PERMANENT if permanent else LicenseKind.TEMPORARY,
                status, cal.at, cal.expires_at, cal.expires_at if cal.expired else None,
                LicenseEndReason.EXPIRED_90_DAYS if cal.expired else "", machine.hardware_id, cal.at)

    # -- the history
    def replay(self, steps: list[tuple[datetime, object]], audit_events: int) -> None:
        """Write every event and run every step (``(moment, callable)``, in time order)."""
        w = self.world
        retired = sorted((m for m in w.machines if m.retired_at), key=lambda m: m.retired_at)
        expired = sorted((c for c in w.cals if c.expired), key=lambda c: c.expires_at)
        known = (len(self.contacts) + len(self.servers) + len(w.packs) + len(w.machines) + len(retired)
                 + len(w.cals) + len(expired) + STORY_EVENTS)
        streams = [
            ((w.start + (i + 1) * MINUTE, 0, "contact", c) for i, c in enumerate(self.contacts)),
            ((w.server_at[i], 1, "server", s) for i, s in enumerate(self.servers)),
            ((p.at, 2, "pack", p) for p in w.packs),
            ((m.at, 3, "machine", m) for m in w.machines),
            ((m.retired_at, 4, "retire", m) for m in retired),
            ((c.at, 5, "cal", c) for c in w.cals),
            ((c.expires_at, 6, "expire", c) for c in expired),
            ((when, 7, "step", step) for when, step in steps),
            self._filler_stream(audit_events - known),
        ]
        batch = AuditBatch(batch_size=BATCH)
        for when, _, kind, payload in heapq.merge(*streams, key=itemgetter(0, 1)):
            if kind == "step":
                batch.close()
                with clock_at(when):
                    payload()
                batch = AuditBatch(batch_size=BATCH)
            else:
                batch.add(occurred_at=when, **getattr(self, f"_{kind}")(payload))
        batch.close()

    def _contact(self, c):
        return dict(actor="ana.admin", action="csc_contact.created", object_type="csccontact", object_id=c.pk,
                    summary=f"CSC contact {c.location} added.",
                    data={"after": {"location": c.location, "phone_number": c.phone_number}})

    def _server(self, s):
        return dict(actor="ana.admin", action="license_server.created", object_type="licenseserver", object_id=s.pk,
                    summary=f"License server {s.name} added.",
                    data={"after": {"name": s.name, "windows_version": s.windows_version}},
                    refs={"license_server": [s.pk]})

    def _pack(self, p):
        server = self.servers[p.server]
        return dict(actor="ana.admin", action="key_pack.installed", object_type="keypack", object_id=p.pk,
                    summary=f"Key pack {p.key_pack_id} ({p.total} CALs) installed on {server.name}.",
                    data={"after": {"key_pack_id": p.key_pack_id, "total_licenses": p.total,
                                    "product_version": p.product,
                                    "cal_type": CalType.PER_USER if p.per_user else CalType.PER_DEVICE}},
                    refs={"key_pack": [p.pk], "license_server": [server.pk]})

    def _machine(self, m):
        return dict(actor="ana.admin", action="machine.created", object_type="clientmachine", object_id=m.pk,
                    summary=f"Machine {m.hostname} added.",
                    data={"after": {"hostname": m.hostname, "os_edition": m.os_edition, "status": "active"}},
                    refs={"machine": [m.pk]})

    def _retire(self, m):
        return dict(actor="ben.admin", action="machine.retired", object_type="clientmachine", object_id=m.pk,
                    summary=f"Machine {m.hostname} retired.",
                    data={"before": {"status": MachineStatus.ACTIVE}, "after": {"status": MachineStatus.RETIRED}},
                    refs={"machine": [m.pk]})

    def _cal(self, cal):
        w = self.world
        machine, server = w.machines[cal.machine], self.servers[cal.server]
        label = WindowsVersion(cal.product).label
        refs = {"machine": [machine.pk], "license": [cal.pk], "license_server": [server.pk]}
        if cal.pack is None:
            return dict(actor="ana.admin", action="license.temporary_issued", object_type="license", object_id=cal.pk,
                        summary=f"Temporary CAL #{cal.pk} ({label}) issued to {machine.hostname} on {server.name}, "
                        f"expires {cal.expires_at:%Y-%m-%d}.",
                        data={"after": {"kind": LicenseKind.TEMPORARY, "product_version": cal.product,
                                        "license_id": cal.license_id}}, refs=refs)
        pack = w.packs[cal.pack]
        return dict(actor="ana.admin", action="license.issued", object_type="license", object_id=cal.pk,
                    summary=f"Permanent CAL #{cal.pk} ({label}) issued to {machine.hostname} from key pack "
                    f"{pack.key_pack_id} on {server.name}.",
                    data={"after": {"kind": LicenseKind.PERMANENT, "product_version": cal.product,
                                    "license_id": cal.license_id}},
                    refs={**refs, "key_pack": [pack.pk]})

    def _expire(self, cal):
        machine = self.world.machines[cal.machine]
        return dict(actor=None, action="license.expired", object_type="license", object_id=cal.pk,
                    summary=f"Temporary CAL #{cal.pk} on {machine.hostname} expired after 90 days.",
                    data={"before": {"status": LicenseStatus.ACTIVE}, "after": {"status": LicenseStatus.EXPIRED}},
                    refs={"machine": [machine.pk], "license": [cal.pk]})

    def _filler_stream(self, count: int):
        """Day-to-day history (edits, sign-ins, exports) spread evenly up to today; an edit
        touches a machine or key pack that existed at the time."""
        if count <= 0:
            return
        w = self.world
        rng = random.Random(self.seed + 1)
        first = w.start + DAY
        span = (w.today - MINUTE - first) / count
        machine_times = [m.at for m in w.machines]
        pack_times = [p.at for p in w.packs]
        for i in range(count):
            when = (first + span * i).replace(microsecond=0)
            action = FILLER_ACTIONS[i % len(FILLER_ACTIONS)]
            target = None
            if action == "machine.updated":
                known = bisect_right(machine_times, when)
                target = w.machines[rng.randrange(known)] if known else None
            elif action == "key_pack.updated":
                known = bisect_right(pack_times, when)
                target = w.packs[rng.randrange(known)] if known else None
            if action in ("machine.updated", "key_pack.updated") and target is None:
                action = "auth.login"
            actor = "audrey.auditor" if action == "report.exported" else rng.choice(
                ADMINS + ["audrey.auditor"] if action == "auth.login" else ADMINS)
            yield when, 8, "filler", (action, actor, target)

    def _filler(self, payload):
        action, actor, target = payload
        if action == "machine.updated":
            return dict(actor=actor, action=action, object_type="clientmachine", object_id=target.pk,
                        summary=f"Machine {target.hostname} edited.",
                        data={"changes": {"owner": ["", target.owner]}}, refs={"machine": [target.pk]})
        if action == "key_pack.updated":
            return dict(actor=actor, action=action, object_type="keypack", object_id=target.pk,
                        summary=f"Key pack {target.key_pack_id} edited.",
                        data={"changes": {"agreement_number": ["", target.agreement]}},
                        refs={"key_pack": [target.pk], "license_server": [self.servers[target.server].pk]})
        if action == "auth.login":
            return dict(actor=actor, action=action, object_type="user", object_id=self.staff[actor].pk,
                        summary=f"{actor} logged in.", data={})
        return dict(actor=actor, action=action, object_type="report", object_id="licenses",
                    summary="Report licenses exported as csv.", data={"format": "csv", "filters": {}})

