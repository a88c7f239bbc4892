"""Importing what a TS license server already holds, from its ``Export-Csv`` files.

One entry point, ``license_server_import``, serves ``manage.py import_license_server``
and the upload page. It reads the files (``licensing.importers``), plans every change
against the portal's rows in one pass with bulk look-ups, and then writes the plan in
the same transaction, with one audit event per created or updated object and a
summary event ``import.completed``.

- All or nothing: a file set with any error writes nothing, unless the administrator
  chose to skip the bad rows. A file that cannot be read at all is never skipped.
- A dry run plans, reports and writes nothing.
- Idempotent: key packs match on (server, KeyPackId), licenses on (server, LicenseId);
  what is already recorded is left alone, so a second import of one export is a no-op
  and writes no event.
- The rules of DOMAIN.md hold, with the sentences of ``licensing.services.licenses``;
  the database constraints stay the last line.
"""

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Count, Q
from django.db.models.functions import Lower
from django.utils import timezone

from core.audit import AuditBatch
from inventory.models import (
    OS_EDITIONS_WITH_BUILTIN_CAL,
    ClientMachine,
    MachineStatus,
    OsEdition,
    hostname_validator,
)
from licensing.importers import wmi
from licensing.importers.export_csv import (
    ERROR,
    SKIPPED,
    WARNING,
    ExportFile,
    IssuedLicenseRow,
    KeyPackRow,
    PerUserIssuanceRow,
    Problem,
    read_export_bytes,
)
from licensing.models import (
    CalType,
    KeyPack,
    KeyPackOrigin,
    License,
    LicenseEndReason,
    LicenseKind,
    LicenseServer,
    LicenseStatus,
    WindowsVersion,
)
from licensing.services.licenses import TEMPORARY_CAL_DAYS, license_snapshot

LOOKUP_CHUNK = 10000
WRITE_BATCH = 2000
REPORT_ACTION_LINES = 500


@dataclass
class ImportReport:
    server: str
    files: list[ExportFile] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    created: Counter = field(default_factory=Counter)
    updated: Counter = field(default_factory=Counter)
    unchanged: Counter = field(default_factory=Counter)
    planned_created: Counter = field(default_factory=Counter)
    planned_updated: Counter = field(default_factory=Counter)
    actions: list[str] = field(default_factory=list)
    dry_run: bool = False
    skip_bad_rows: bool = False
    committed: bool = False
    events_written: int = 0

    def _level(self, level):
        return [p for p in self.problems if p.level == level]

    @property
    def errors(self) -> list[Problem]:
        return self._level(ERROR)

    @property
    def skipped(self) -> list[Problem]:
        return self._level(SKIPPED)

    @property
    def warnings(self) -> list[Problem]:
        return self._level(WARNING)

    @property
    def changes(self) -> int:
        return sum(self.created.values()) + sum(self.updated.values())

    def note(self, line: str) -> None:
        if len(self.actions) < REPORT_ACTION_LINES:
            self.actions.append(line)

    @property
    def outcome(self) -> str:
        if self.committed:
            return "imported" if self.changes else "nothing to change"
        if self.dry_run:
            return "dry run: nothing was written"
        return "refused: nothing was imported"


# --- the plan ----------------------------------------------------------------------------


@dataclass
class _PackPlan:
    file: ExportFile
    row: KeyPackRow
    existing: KeyPack | None
    changes: dict = field(default_factory=dict)
    blocked: bool = False
    instance: KeyPack | None = None

    @property
    def total(self) -> int:
        return self.row.total_licenses


@dataclass(slots=True)
class _RecordedMachine:
    """The columns of a recorded client machine the plan needs (no model instances)."""

    pk: int
    hostname: str
    status: str
    os_edition: str


@dataclass(slots=True)
class _RecordedLicense:
    pk: int
    machine_id: int
    key_pack_id: int | None
    kind: str
    status: str
    end_reason: str
    hardware_id: str
    expires_at: datetime | None
    product_version: str


LICENSE_COLUMNS = (
    "pk", "machine_id", "key_pack_id", "kind", "status", "end_reason", "hardware_id",
    "expires_at", "product_version",
)


@dataclass
class _NewMachine:
    hostname: str
    hardware_id: str
    file: str
    line: int
    pk: int | None = None


@dataclass
class _NewLicense:
    file: str
    row: IssuedLicenseRow
    machine: object  # _RecordedMachine or _NewMachine
    kind: str
    product_version: str
    pack: object | None  # KeyPack or _PackPlan
    status: str = LicenseStatus.ACTIVE
    expires_at: datetime | None = None
    ended_at: datetime | None = None
    end_reason: str = ""


@dataclass
class _LicenseUpdate:
    license_pk: int
    changes: dict
    file: str
    line: int
    why: str


class _Planner:
    def __init__(self, *, server, exports, report, installed_on, now):
        self.server = server
        self.exports = exports
        self.report = report
        self.installed_on = installed_on
        self.now = now
        self.packs: dict[int, _PackPlan] = {}
        self.pseudo: dict[int, tuple[str, str]] = {}  # KeyPackId -> (kind, product_version)
        self.new_machines: dict[str, _NewMachine] = {}
        self.new_licenses: list[_NewLicense] = []
        self.license_updates: dict[int, _LicenseUpdate] = {}

    def problem(self, level, file, line, column, message, code=""):
        self.report.problems.append(Problem(level, file, line, column, message, code))

    # key packs

    def plan_key_packs(self):
        self.existing_packs = {
            p.key_pack_id: p
            for p in KeyPack.objects.select_for_update()
            .filter(license_server=self.server)
            .order_by("pk")
        }
        self.db_issued = Counter({
            row["key_pack_id"]: row["n"]
            for row in License.objects.filter(key_pack__license_server=self.server).issued()
            .values("key_pack_id").annotate(n=Count("pk"))
        })
        seen: dict[int, tuple[str, int]] = {}
        for export in self.exports:
            if export.wmi_class != wmi.KEY_PACK_CLASS:
                continue
            for row in export.rows:
                where = seen.get(row.key_pack_id)
                if where is not None:
                    self.problem(
                        ERROR, export.name, row.line, "KeyPackId",
                        f"KeyPackId {row.key_pack_id} appears twice (first in {where[0]}, line "
                        f"{where[1]}).", "duplicate_row",
                    )
                    continue
                seen[row.key_pack_id] = (export.name, row.line)
                if row.pseudo:
                    self.pseudo[row.key_pack_id] = (row.pseudo, row.product_version)
                    what = ("the built-in pack; the portal tracks no built-in CALs"
                            if row.pseudo == "built-in"
                            else "the temporary licenses pseudo-pack; its temporary CALs come "
                            "from the issued-license export")
                    self.problem(
                        SKIPPED, export.name, row.line, "KeyPackType",
                        f"Key pack {row.key_pack_id} skipped: it is {what}.", "pseudo_pack",
                    )
                    continue
                self._plan_pack(export, row)

    def _plan_pack(self, export, row):
        existing = self.existing_packs.get(row.key_pack_id)
        plan = _PackPlan(file=export, row=row, existing=existing)
        self.packs[row.key_pack_id] = plan
        if existing is None:
            return
        label = WindowsVersion(existing.product_version).label
        if (existing.product_version, existing.cal_type) != (row.product_version, row.cal_type):
            plan.blocked = True
            self.problem(
                ERROR, export.name, row.line, "ProductVersion",
                f"Key pack {row.key_pack_id} on {self.server.name} is recorded as {label} "
                f"{CalType(existing.cal_type).label.lower()}; the export says "
                f"{WindowsVersion(row.product_version).label} "
                f"{CalType(row.cal_type).label.lower()}.", "key_pack_mismatch",
            )
            return
        if existing.total_licenses != row.total_licenses:
            plan.changes["total_licenses"] = [existing.total_licenses, row.total_licenses]
        if existing.expires_on != row.expires_on:
            plan.changes["expires_on"] = [existing.expires_on, row.expires_on]

    def pack_for(self, key_pack_id):
        """The planned pack or the recorded one, or None."""
        plan = self.packs.get(key_pack_id)
        if plan is not None:
            return plan
        return self.existing_packs.get(key_pack_id)

    # machines and licenses

    def lock_machines(self):
        """Lock the recorded machines the export names, by primary key: machines come
        before key packs in the fixed lock order, and the licenses written later hold
        keys to them."""
        names = sorted({
            row.computer.lower()
            for export in self.exports if export.wmi_class == wmi.ISSUED_LICENSE_CLASS
            for row in export.rows
        })
        pks = []
        for start in range(0, len(names), LOOKUP_CHUNK):
            pks.extend(
                ClientMachine.objects.annotate(lower_hostname=Lower("hostname"))
                .filter(lower_hostname__in=names[start:start + LOOKUP_CHUNK])
                .order_by()
                .values_list("pk", flat=True)
            )
        pks.sort()
        self.machines: dict[str, _RecordedMachine] = {}
        for start in range(0, len(pks), LOOKUP_CHUNK):
            for values in (
                ClientMachine.objects.select_for_update()
                .filter(pk__in=pks[start:start + LOOKUP_CHUNK])
                .order_by("pk")
                .values_list("pk", "hostname", "status", "os_edition")
            ):
                machine = _RecordedMachine(*values)
                self.machines[machine.hostname.lower()] = machine

    def load_license_state(self, rows):
        """Bulk look-ups: the server's licenses by LicenseId and what the export's
        machines already hold (rules 4 and 5)."""
        self.existing_licenses: dict[int, _RecordedLicense] = {}
        if rows:
            for license_id, *values in License.objects.filter(
                license_server=self.server, license_id__isnull=False
            ).order_by().values_list("license_id", *LICENSE_COLUMNS):
                self.existing_licenses[license_id] = _RecordedLicense(*values)
        machine_pks = sorted(m.pk for m in self.machines.values())
        # (machine pk, product) -> what holds it: an active permanent CAL, a temporary CAL
        self.held_permanent: dict[tuple, str] = {}
        self.temporaries: dict[tuple, object] = {}
        for start in range(0, len(machine_pks), LOOKUP_CHUNK):
            chunk = machine_pks[start:start + LOOKUP_CHUNK]
            for values in License.objects.filter(
                Q(kind=LicenseKind.PERMANENT, status=LicenseStatus.ACTIVE)
                | Q(kind=LicenseKind.TEMPORARY),
                machine_id__in=chunk,
            ).order_by().values_list(*LICENSE_COLUMNS):
                lic = _RecordedLicense(*values)
                key = (lic.machine_id, lic.product_version)
                if lic.kind == LicenseKind.PERMANENT:
                    self.held_permanent[key] = f"#{lic.pk}"
                else:
                    self.temporaries[key] = lic
        self.pack_issued = Counter(self.db_issued)  # by KeyPack pk, moves as the plan grows

    def machine_key(self, machine):
        return machine.pk if isinstance(machine, _RecordedMachine) else ("new", machine.hostname.lower())

    def machine_for(self, file, row):
        key = row.computer.lower()
        machine = self.machines.get(key)
        if machine is not None:
            return machine
        new = self.new_machines.get(key)
        if new is None:
            new = _NewMachine(hostname=row.computer, hardware_id=row.hardware_id, file=file,
                              line=row.line)
            self.new_machines[key] = new
        return new

    def plan_licenses(self):
        rows = [
            (export.name, row)
            for export in self.exports
            if export.wmi_class == wmi.ISSUED_LICENSE_CLASS
            for row in export.rows
        ]
        self.load_license_state(rows)
        seen: dict[int, tuple[str, int]] = {}
        unique_rows = []
        for file, row in rows:
            where = seen.get(row.license_id)
            if where is not None:
                self.problem(
                    ERROR, file, row.line, "LicenseId",
                    f"LicenseId {row.license_id} appears twice (first in {where[0]}, line "
                    f"{where[1]}).", "duplicate_row",
                )
                continue
            seen[row.license_id] = (file, row.line)
            try:
                hostname_validator(row.computer)
            except ValidationError:
                self.problem(
                    ERROR, file, row.line, "sIssuedToComputer",
                    f"'{row.computer}' is not a valid host name.", "bad_value",
                )
                continue
            unique_rows.append((file, row))
        self.active_rows_per_pack = Counter(
            r.key_pack_id for _, r in unique_rows if r.status == wmi.LICENSE_STATUS_ACTIVE
        )
        # Ended licenses first (their seats come back), then permanent, then temporary CALs,
        # so a temporary CAL sees every permanent one of its machine.
        passes = (
            [(f, r) for f, r in unique_rows
             if r.status not in (wmi.LICENSE_STATUS_ACTIVE, wmi.LICENSE_STATUS_TEMPORARY)],
            [(f, r) for f, r in unique_rows if r.status == wmi.LICENSE_STATUS_ACTIVE],
            [(f, r) for f, r in unique_rows if r.status == wmi.LICENSE_STATUS_TEMPORARY],
        )
        for file, row in passes[0]:
            self._plan_other(file, row)
        for file, row in passes[1]:
            self._plan_permanent(file, row)
        for file, row in passes[2]:
            self._plan_temporary(file, row)
        if rows:
            missing = sorted(
                license_id for license_id, lic in self.existing_licenses.items()
                if license_id not in seen and lic.status == LicenseStatus.ACTIVE
            )
            if missing:
                shown = ", ".join(str(n) for n in missing[:10]) + (", ..." if len(missing) > 10 else "")
                self.problem(
                    WARNING, rows[0][0], None, "LicenseId",
                    f"{len(missing)} active licenses recorded for {self.server.name} are not in "
                    f"this export (LicenseId {shown}); they are left as recorded.",
                    "not_in_export",
                )

    def _status_label(self, row):
        return f"LicenseStatus {row.status} ({wmi.LICENSE_STATUS_LABELS.get(row.status, 'not documented')})"

    def _plan_other(self, file, row):
        existing = self.existing_licenses.get(row.license_id)
        if row.status == wmi.LICENSE_STATUS_REVOKED and existing is not None:
            if existing.status == LicenseStatus.ACTIVE:
                self.license_updates[existing.pk] = _LicenseUpdate(
                    license_pk=existing.pk,
                    changes={
                        "status": [existing.status, LicenseStatus.EXPIRED],
                        "end_reason": [existing.end_reason, LicenseEndReason.IMPORTED],
                    },
                    file=file, line=row.line,
                    why=f"LicenseId {row.license_id} was revoked on the license server",
                )
                if existing.kind == LicenseKind.PERMANENT:
                    self.pack_issued[existing.key_pack_id] -= 1
                    self.held_permanent.pop((existing.machine_id, existing.product_version), None)
            else:
                self.report.unchanged["license"] += 1
            return
        note = "not imported" if existing is None else "left as recorded"
        self.problem(
            SKIPPED, file, row.line, "LicenseStatus",
            f"LicenseId {row.license_id} on {row.computer} has {self._status_label(row)}; "
            f"{note}, only active and temporary licenses are imported.", "not_active",
        )

    def _check_existing(self, file, row, existing, kind, key_pack_pk):
        """A license the portal already holds: report a mismatch, or plan its updates."""
        machine = self.machines.get(row.computer.lower())
        if machine is None or existing.machine_id != machine.pk or existing.kind != kind or (
            kind == LicenseKind.PERMANENT and existing.key_pack_id != key_pack_pk
        ):
            self.problem(
                ERROR, file, row.line, "LicenseId",
                f"LicenseId {row.license_id} on {self.server.name} is recorded as "
                f"{existing.kind} CAL #{existing.pk} of another machine or key pack; the "
                f"export says {row.computer}, KeyPackId {row.key_pack_id}.", "license_mismatch",
            )
            return
        if existing.status != LicenseStatus.ACTIVE and kind == LicenseKind.TEMPORARY:
            # The server lists expired temporary CALs until it purges them.
            self.report.unchanged["license"] += 1
            return
        if existing.status != LicenseStatus.ACTIVE:
            self.problem(
                WARNING, file, row.line, "LicenseStatus",
                f"LicenseId {row.license_id} on {row.computer} is {existing.status} in the "
                "portal; the license server still lists it, and it is left as recorded.",
                "ended_in_portal",
            )
            return
        changes = {}
        if row.hardware_id and existing.hardware_id != row.hardware_id:
            changes["hardware_id"] = [existing.hardware_id, row.hardware_id]
        if kind == LicenseKind.TEMPORARY and row.expires_at and existing.expires_at != row.expires_at:
            changes["expires_at"] = [existing.expires_at, row.expires_at]
        if changes:
            self.license_updates[existing.pk] = _LicenseUpdate(
                license_pk=existing.pk, changes=changes, file=file, line=row.line,
                why=f"LicenseId {row.license_id} changed on the license server",
            )
        else:
            self.report.unchanged["license"] += 1

    def _machine_can_receive(self, file, row, machine, product):
        """Rules 3, 4 and 6, with the sentences of ``check_machine_can_receive``."""
        if isinstance(machine, _RecordedMachine):
            if machine.status == MachineStatus.RETIRED:
                self.problem(
                    ERROR, file, row.line, "sIssuedToComputer",
                    f"Machine {machine.hostname} is retired; nothing is issued or transferred "
                    "to it.", "machine_retired",
                )
                return False
            if machine.os_edition in OS_EDITIONS_WITH_BUILTIN_CAL and (
                self.server.builtin_cal_for_pro_clients
            ):
                self.problem(
                    ERROR, file, row.line, "sIssuedToComputer",
                    f"Machine {machine.hostname} runs {OsEdition(machine.os_edition).label}, which "
                    f"includes its TS CAL on license server {self.server.name}; it receives no "
                    "CAL.", "os_includes_cal",
                )
                return False
        return True

    def _plan_permanent(self, file, row):
        if row.key_pack_id in self.pseudo:
            kind, _ = self.pseudo[row.key_pack_id]
            if kind == "built-in":
                self.problem(
                    SKIPPED, file, row.line, "KeyPackId",
                    f"LicenseId {row.license_id} on {row.computer} is a built-in CAL (key pack "
                    f"{row.key_pack_id}); the portal tracks no built-in CALs.", "builtin_cal",
                )
            else:
                self.problem(
                    ERROR, file, row.line, "LicenseStatus",
                    f"LicenseId {row.license_id} is active but comes from the temporary "
                    f"licenses pseudo-pack {row.key_pack_id}.", "bad_value",
                )
            return
        pack = self.pack_for(row.key_pack_id)
        if pack is None:
            self.problem(
                ERROR, file, row.line, "KeyPackId",
                f"Key pack {row.key_pack_id} is neither in the key pack export nor recorded on "
                f"{self.server.name}.", "unknown_key_pack",
            )
            return
        if isinstance(pack, _PackPlan) and pack.blocked:
            self.problem(
                ERROR, file, row.line, "KeyPackId",
                f"Key pack {row.key_pack_id} has an error in {pack.file.name}, line "
                f"{pack.row.line}; its licenses are not imported.", "key_pack_blocked",
            )
            return
        product, cal, total = (
            (pack.row.product_version, pack.row.cal_type, pack.row.total_licenses)
            if isinstance(pack, _PackPlan)
            else (pack.product_version, pack.cal_type, pack.total_licenses)
        )
        recorded = pack.existing if isinstance(pack, _PackPlan) else pack
        existing = self.existing_licenses.get(row.license_id)
        if existing is not None:
            self._check_existing(file, row, existing, LicenseKind.PERMANENT,
                                 recorded.pk if recorded else None)
            return
        machine = self.machine_for(file, row)
        if not self._machine_can_receive(file, row, machine, product):
            return
        if cal == CalType.PER_USER:
            self.problem(
                ERROR, file, row.line, "KeyPackId",
                f"Key pack {row.key_pack_id} on {self.server.name} is per user; per-user packs "
                "are inventory only and never issue to a machine.", "per_user_key_pack",
            )
            return
        key = (self.machine_key(machine), product)
        held = self.held_permanent.get(key)
        if held is not None:
            self.problem(
                ERROR, file, row.line, "sIssuedToComputer",
                f"Machine {row.computer} already holds active permanent CAL {held} for "
                f"{WindowsVersion(product).label}.", "machine_already_licensed",
            )
            return
        pack_key = recorded.pk if recorded else ("new", row.key_pack_id)
        issued = self.pack_issued[pack_key]
        if issued >= total:
            self.problem(
                ERROR, file, row.line, "KeyPackId",
                f"Key pack {row.key_pack_id} on {self.server.name} has no licenses available "
                f"({issued} of {total} issued).", "no_licenses_available",
            )
            return
        self.pack_issued[pack_key] = issued + 1
        self.held_permanent[key] = f"LicenseId {row.license_id} ({file}, line {row.line})"
        self.new_licenses.append(_NewLicense(
            file=file, row=row, machine=machine, kind=LicenseKind.PERMANENT,
            product_version=product, pack=pack,
        ))
        # Rule 4: a machine running on a temporary CAL stops when it receives a permanent one.
        temporary = self.temporaries.get(key)
        if isinstance(temporary, _RecordedLicense) and temporary.status == LicenseStatus.ACTIVE:
            self.license_updates[temporary.pk] = _LicenseUpdate(
                license_pk=temporary.pk,
                changes={
                    "status": [temporary.status, LicenseStatus.EXPIRED],
                    "end_reason": [temporary.end_reason, LicenseEndReason.REPLACED_BY_PERMANENT],
                },
                file=file, line=row.line,
                why=f"{row.computer} receives permanent LicenseId {row.license_id}",
            )

    def _plan_temporary(self, file, row):
        pack = self.pack_for(row.key_pack_id)
        if row.key_pack_id in self.pseudo:
            product = self.pseudo[row.key_pack_id][1]
            if product is None:  # a built-in pack whose version could not be read
                self.problem(
                    ERROR, file, row.line, "KeyPackId",
                    f"Temporary LicenseId {row.license_id}: key pack {row.key_pack_id} is the "
                    "built-in pack, whose product version is unknown.", "unknown_key_pack",
                )
                return
        elif isinstance(pack, _PackPlan):
            product = pack.row.product_version
        elif pack is not None:
            product = pack.product_version
        else:
            self.problem(
                ERROR, file, row.line, "KeyPackId",
                f"Temporary LicenseId {row.license_id}: key pack {row.key_pack_id} is neither in "
                f"the key pack export nor recorded on {self.server.name}, so its product "
                "version is unknown.", "unknown_key_pack",
            )
            return
        existing = self.existing_licenses.get(row.license_id)
        if existing is not None:
            self._check_existing(file, row, existing, LicenseKind.TEMPORARY, None)
            return
        machine = self.machine_for(file, row)
        if not self._machine_can_receive(file, row, machine, product):
            return
        key = (self.machine_key(machine), product)
        used = self.temporaries.get(key)
        if used is not None:
            label = f"#{used.pk}" if isinstance(used, _RecordedLicense) else used
            self.problem(
                ERROR, file, row.line, "sIssuedToComputer",
                f"Machine {row.computer} already had temporary CAL {label} for "
                f"{WindowsVersion(product).label}; a machine gets one only once.",
                "temporary_already_used",
            )
            return
        self.temporaries[key] = f"LicenseId {row.license_id} ({file}, line {row.line})"
        expires_at = row.expires_at or row.issued_at + timedelta(days=TEMPORARY_CAL_DAYS)
        new = _NewLicense(
            file=file, row=row, machine=machine, kind=LicenseKind.TEMPORARY,
            product_version=product, pack=None, expires_at=expires_at,
        )
        if key in self.held_permanent:
            new.status, new.ended_at = LicenseStatus.EXPIRED, self.now
            new.end_reason = LicenseEndReason.REPLACED_BY_PERMANENT
        elif expires_at <= self.now:
            new.status, new.ended_at = LicenseStatus.EXPIRED, expires_at
            new.end_reason = LicenseEndReason.EXPIRED_90_DAYS
        self.new_licenses.append(new)

    def check_packs(self, have_license_file: bool):
        for key_pack_id, plan in self.packs.items():
            if plan.blocked:
                continue
            pack_key = plan.existing.pk if plan.existing else ("new", key_pack_id)
            issued = self.pack_issued[pack_key]
            if issued > plan.total:
                plan.blocked = True
                self.problem(
                    ERROR, plan.file.name, plan.row.line, "TotalLicenses",
                    f"Key pack {key_pack_id} on {self.server.name} has issued {issued} licenses; "
                    f"its total cannot go down to {plan.total}.", "below_issued",
                )
            rows = self.active_rows_per_pack[key_pack_id]
            if have_license_file and plan.row.issued_licenses is not None and (
                plan.row.issued_licenses != rows
            ):
                self.problem(
                    WARNING, plan.file.name, plan.row.line, "IssuedLicenses",
                    f"Key pack {key_pack_id}: IssuedLicenses is {plan.row.issued_licenses} but "
                    f"the issued-license export lists {rows} active licenses from it.",
                    "issued_count_mismatch",
                )
            if have_license_file and rows > plan.total:
                self.problem(
                    ERROR, plan.file.name, plan.row.line, "TotalLicenses",
                    f"Key pack {key_pack_id} on {self.server.name} would be oversold: the export "
                    f"lists {rows} active licenses from it, but TotalLicenses is {plan.total}.",
                    "no_licenses_available",
                )
        bad_lines = {(p.file, p.line) for p in self.report.problems if p.level == ERROR}
        if bad_lines:
            # With --skip-bad-rows, licenses of a key pack whose row is skipped are skipped too.
            blocked = {
                kp for kp, plan in self.packs.items()
                if plan.blocked or (plan.file.name, plan.row.line) in bad_lines
            }
            kept = []
            for new in self.new_licenses:
                if new.kind == LicenseKind.PERMANENT and new.row.key_pack_id in blocked and (
                    (new.file, new.row.line) not in bad_lines
                ):
                    self.problem(
                        ERROR, new.file, new.row.line, "KeyPackId",
                        f"Key pack {new.row.key_pack_id} has an error; its licenses are not "
                        "imported.", "key_pack_blocked",
                    )
                    continue
                kept.append(new)
            self.new_licenses = kept
            for kp in blocked:
                self.packs[kp].blocked = True


# --- writing -----------------------------------------------------------------------------


class _AuditBatch(AuditBatch):
    """The chain writer for many events, with the importing administrator as every actor."""

    def __init__(self, actor):
        super().__init__(batch_size=WRITE_BATCH)
        self.actor = actor

    def add(self, **event):
        return super().add(actor=self.actor, **event)


def _source(file, line):
    return {"file": file, "line": line}


def _apply(planner: _Planner, report: ImportReport, actor, installed_on: date) -> _AuditBatch:
    """Write the plan. New machines and key packs are inserted before the audit chain head
    is locked: a concurrent service inserting the same host name or KeyPackId takes the
    head after its insert, so holding the head here could close a cycle."""
    server = planner.server
    now = planner.now
    # Machines first, then key packs, then licenses (the fixed lock order).
    needed = {
        new.machine.hostname.lower()
        for new in planner.new_licenses
        if isinstance(new.machine, _NewMachine)
    }
    new_machines = [m for key, m in planner.new_machines.items() if key in needed]
    for start in range(0, len(new_machines), WRITE_BATCH):
        batch = new_machines[start:start + WRITE_BATCH]
        instances = ClientMachine.objects.bulk_create([
            ClientMachine(hostname=m.hostname, os_edition=OsEdition.OTHER, hardware_id=m.hardware_id)
            for m in batch
        ])
        for plan, machine in zip(batch, instances, strict=True):
            plan.pk = machine.pk
    report.created["machine"] += len(new_machines)

    pack_events = []
    for key_pack_id, plan in planner.packs.items():
        if plan.blocked:
            continue
        row = plan.row
        if plan.existing is None:
            pack = KeyPack.objects.create(
                license_server=server, key_pack_id=key_pack_id,
                product_version=row.product_version, cal_type=row.cal_type,
                license_program=row.license_program, total_licenses=row.total_licenses,
                installed_on=installed_on, expires_on=row.expires_on,
                description=row.description, origin=KeyPackOrigin.ORIGINAL,
            )
            plan.instance = pack
            report.created["key_pack"] += 1
            pack_events.append(dict(
                action="import.key_pack_created", obj=pack,
                summary=f"Key pack {key_pack_id} ({row.total_licenses} "
                f"{pack.get_cal_type_display()} CALs, {pack.get_product_version_display()}) "
                f"imported from {server.name}.",
                data={"after": {
                    "id": pack.pk, "key_pack_id": key_pack_id,
                    "product_version": pack.product_version, "cal_type": pack.cal_type,
                    "license_program": pack.license_program,
                    "total_licenses": pack.total_licenses, "installed_on": installed_on,
                    "expires_on": pack.expires_on, "key_pack_type": row.key_pack_type,
                }, "source": _source(plan.file.name, row.line)},
                refs={"key_pack": [pack.pk], "license_server": [server.pk]},
            ))
        elif plan.changes:
            pack = plan.existing
            for name, (_, after) in plan.changes.items():
                setattr(pack, name, after)
            pack.save(update_fields=list(plan.changes))
            plan.instance = pack
            report.updated["key_pack"] += 1
            pack_events.append(dict(
                action="import.key_pack_updated", obj=pack,
                summary=f"Key pack {key_pack_id} on {server.name} updated by the import.",
                data={"changes": plan.changes, "source": _source(plan.file.name, row.line)},
                refs={"key_pack": [pack.pk], "license_server": [server.pk]},
            ))
        else:
            plan.instance = plan.existing
            report.unchanged["key_pack"] += 1

    # Licenses are locked before the audit head: a service holding a license row takes the
    # head last too.
    locked = {
        lic.pk: lic
        for lic in License.objects.select_for_update()
        .filter(pk__in=sorted(planner.license_updates))
        .order_by("pk")
    } if planner.license_updates else {}
    audit = _AuditBatch(actor)
    for plan in new_machines:
        audit.add(
            action="import.machine_created", object_type="clientmachine", object_id=plan.pk,
            summary=f"Machine {plan.hostname} added by the import from {server.name} "
            "(OS edition unknown: other).",
            data={"after": {"id": plan.pk, "hostname": plan.hostname,
                            "os_edition": OsEdition.OTHER, "hardware_id": plan.hardware_id},
                  "source": _source(plan.file, plan.line)},
            refs={"machine": [plan.pk], "license_server": [server.pk]},
        )
    for event in pack_events:
        audit.add(**event)

    if planner.license_updates:
        changed = []
        for pk, update in sorted(planner.license_updates.items()):
            lic = locked[pk]
            if "status" in update.changes and lic.status != LicenseStatus.ACTIVE:
                continue  # ended meanwhile: nothing left to end
            for name, (_, after) in update.changes.items():
                setattr(lic, name, after)
            if "status" in update.changes:
                lic.ended_at = now
                update.changes["ended_at"] = [None, now]
            changed.append((lic, update))
        fields = sorted({name for _, u in changed for name in u.changes})
        for start in range(0, len(changed), WRITE_BATCH):
            License.objects.bulk_update([lic for lic, _ in changed[start:start + WRITE_BATCH]], fields)
        for lic, update in changed:
            audit.add(
                action="import.license_updated", obj=lic,
                summary=f"CAL #{lic.pk} (LicenseId {lic.license_id}) updated by the import from "
                f"{server.name}: {update.why}.",
                data={"changes": update.changes, "source": _source(update.file, update.line)},
                refs={"license": [lic.pk], "machine": [lic.machine_id],
                      "key_pack": [lic.key_pack_id], "license_server": [server.pk]},
            )
        report.updated["license"] += len(changed)

    for start in range(0, len(planner.new_licenses), WRITE_BATCH):
        batch = planner.new_licenses[start:start + WRITE_BATCH]
        instances, hostnames = [], []
        for new in batch:
            machine = new.machine
            hostnames.append(machine.hostname)
            pack = new.pack.instance if isinstance(new.pack, _PackPlan) else new.pack
            instances.append(License(
                license_id=new.row.license_id, machine_id=machine.pk, key_pack=pack,
                license_server=server, product_version=new.product_version, kind=new.kind,
                status=new.status, issued_at=new.row.issued_at, expires_at=new.expires_at,
                ended_at=new.ended_at, end_reason=new.end_reason,
                hardware_id=new.row.hardware_id,
            ))
        License.objects.bulk_create(instances)
        for new, lic, hostname in zip(batch, instances, hostnames, strict=True):
            what = "Permanent" if lic.kind == LicenseKind.PERMANENT else "Temporary"
            source = (f"from key pack {new.row.key_pack_id} " if lic.kind == LicenseKind.PERMANENT
                      else "")
            ended = "" if lic.status == LicenseStatus.ACTIVE else f", already {lic.status}"
            audit.add(
                action="import.license_created", obj=lic,
                summary=f"{what} CAL #{lic.pk} (LicenseId {lic.license_id}, "
                f"{lic.get_product_version_display()}) on {hostname} imported "
                f"{source}from {server.name}{ended}.",
                data={"after": license_snapshot(lic),
                      "source": _source(new.file, new.row.line) | {"license_status": new.row.status}},
                refs={"license": [lic.pk], "machine": [lic.machine_id],
                      "key_pack": [lic.key_pack_id], "license_server": [server.pk]},
            )
    report.created["license"] += len(planner.new_licenses)
    return audit


def _describe_plan(planner: _Planner, report: ImportReport):
    needed = {
        n.machine.hostname.lower() for n in planner.new_licenses if isinstance(n.machine, _NewMachine)
    }
    for key, machine in planner.new_machines.items():
        if key in needed:
            report.planned_created["machine"] += 1
            report.note(f"create machine {machine.hostname} (OS edition other)")
    for key_pack_id, plan in planner.packs.items():
        if plan.blocked:
            continue
        row = plan.row
        if plan.existing is None:
            report.planned_created["key_pack"] += 1
            report.note(
                f"create key pack {key_pack_id}: {row.total_licenses} "
                f"{CalType(row.cal_type).label.lower()} CALs, "
                f"{WindowsVersion(row.product_version).label}, {row.license_program}"
            )
        elif plan.changes:
            report.planned_updated["key_pack"] += 1
            changes = ", ".join(f"{k} {a} -> {b}" for k, (a, b) in plan.changes.items())
            report.note(f"update key pack {key_pack_id}: {changes}")
    report.planned_updated["license"] += len(planner.license_updates)
    report.planned_created["license"] += len(planner.new_licenses)
    for update in planner.license_updates.values():
        report.note(f"update CAL #{update.license_pk}: {update.why}")
    for new in planner.new_licenses:
        report.note(
            f"create {new.kind} CAL LicenseId {new.row.license_id} for {new.row.computer} "
            f"({WindowsVersion(new.product_version).label})"
            + ("" if new.status == LicenseStatus.ACTIVE else f", {new.status}")
        )


def license_server_import(
    *,
    server_name: str,
    files: list[tuple[str, bytes]],
    actor,
    date_order: str = "mdy",
    skip_bad_rows: bool = False,
    dry_run: bool = False,
    installed_on: date | None = None,
) -> ImportReport:
    """Import key packs and issued licenses of one license server from its export files.

    Raises ValidationError for bad options or an unknown server; everything about the
    files' content is in the returned report.
    """
    if date_order not in wmi.DATE_ORDERS:
        raise ValidationError({"date_order": f"Choose one of {', '.join(wmi.DATE_ORDERS)}."})
    if not files:
        raise ValidationError({"files": "Give at least one export file."})
    report = ImportReport(server=server_name, dry_run=dry_run, skip_bad_rows=skip_bad_rows)
    for name, data in files:
        export = read_export_bytes(name, data, date_order=date_order)
        _set_aside_per_user_issuances(export)
        report.files.append(export)
    now = timezone.now()
    installed_on = installed_on or timezone.localdate()
    with transaction.atomic():
        # The server row is not locked: issuing locks it together with its key pack. Two
        # imports of one server meet at its key pack rows, or at the unique constraints.
        server = LicenseServer.objects.filter(name__iexact=server_name).first()
        if server is None:
            raise ValidationError(
                {"server": f"There is no license server named {server_name!r}; add it first."}
            )
        report.server = server.name
        for export in report.files:
            report.problems.extend(export.problems)
        planner = _Planner(server=server, exports=[f for f in report.files if f.readable],
                           report=report, installed_on=installed_on, now=now)
        planner.lock_machines()
        planner.plan_key_packs()
        planner.plan_licenses()
        planner.check_packs(
            have_license_file=any(f.wmi_class == wmi.ISSUED_LICENSE_CLASS for f in report.files)
        )
        report.problems.sort(key=lambda p: (p.file, p.line or 0, p.level))
        _describe_plan(planner, report)
        unreadable = any(not f.readable for f in report.files)
        if unreadable or (report.errors and not skip_bad_rows) or dry_run:
            return report
        try:
            with transaction.atomic():
                audit = _apply(planner, report, actor, installed_on)
                if report.changes:
                    audit.add(
                        action="import.completed", obj=server,
                        summary=f"Import from {server.name}: {_counts(report.created)} created, "
                        f"{_counts(report.updated)} updated, {len(report.errors)} bad rows "
                        f"skipped, {len(report.skipped)} rows not imported.",
                        data={
                            "files": [
                                {"name": f.name, "sha256": f.sha256, "class": f.wmi_class,
                                 "style": f.style, "encoding": f.encoding, "rows": len(f.rows)}
                                for f in report.files
                            ],
                            "created": dict(report.created), "updated": dict(report.updated),
                            "bad_rows_skipped": len(report.errors),
                            "rows_not_imported": len(report.skipped),
                            "options": {"date_order": date_order, "skip_bad_rows": skip_bad_rows,
                                        "installed_on": installed_on},
                        },
                        refs={"license_server": [server.pk]},
                    )
                audit.close()
                report.events_written = audit.count
        except IntegrityError as exc:
            report.created.clear()
            report.updated.clear()
            report.problems.append(Problem(
                ERROR, "", None, "",
                f"The database refused the import ({exc}); nothing was imported.", "integrity",
            ))
            return report
        report.committed = True
    return report


def _set_aside_per_user_issuances(export: ExportFile) -> None:
    """Per-user CALs are not imported yet: each is a skipped row, never a reason to refuse."""
    if not any(isinstance(row, PerUserIssuanceRow) for row in export.rows):
        return
    kept = []
    for row in export.rows:
        if isinstance(row, PerUserIssuanceRow):
            export.problems.append(Problem(
                SKIPPED, export.name, row.line, "sIssuedToUser",
                f"LicenseId {row.license_id} is a per-user CAL issued to {row.user}; per-user "
                "issuances are not imported.", "per_user_issuance",
            ))
        else:
            kept.append(row)
    export.rows = kept


def _counts(counter: Counter) -> str:
    return ", ".join(f"{n} {kind.replace('_', ' ')}s" for kind, n in sorted(counter.items()) if n) or "0"


def group_problems(problems) -> dict[str, list[Problem]]:
    grouped = defaultdict(list)
    for problem in problems:
        grouped[problem.level].append(problem)
    return grouped
