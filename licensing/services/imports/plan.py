"""The plan step: what each row of an import means for the portal's records.

Key packs are planned all at once (a server has tens of them). Issued licenses are planned
a chunk of staged rows at a time, with bulk look-ups of what the portal records for them;
each chunk is written before the next is read (``apply``), so later chunks see earlier
ones. The rules are the services' own functions (``licensing.rules``); a refusal is a
problem against the row's file, line and column.
"""

from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta

from django.db.models import Count, Q
from django.db.models.functions import Lower

from core.errors import DomainCode
from inventory.models import ClientMachine, MachineStatus
from licensing import rules
from licensing.importers import wmi
from licensing.importers.export_csv import ERROR, SKIPPED, WARNING, Problem
from licensing.models import (
    CalType,
    ImportRow,
    KeyPack,
    License,
    LicenseEndReason,
    LicenseKind,
    LicenseStatus,
    WindowsVersion,
)
from licensing.services.imports.planned import (
    LICENSE_COLUMNS,
    LicenseUpdate,
    NewLicense,
    NewPerUser,
    PackPlan,
    RecordedLicense,
    RecordedMachine,
)
from licensing.services.licenses import TEMPORARY_CAL_DAYS

# The column a rule's refusal is reported against.
REFUSAL_COLUMNS = {
    DomainCode.MACHINE_RETIRED: "sIssuedToComputer",
    DomainCode.OS_INCLUDES_CAL: "sIssuedToComputer",
    DomainCode.MACHINE_ALREADY_LICENSED: "sIssuedToComputer",
    DomainCode.TEMPORARY_ALREADY_USED: "sIssuedToComputer",
    DomainCode.PER_USER_KEY_PACK: "KeyPackId",
    DomainCode.NO_LICENSES_AVAILABLE: "KeyPackId",
}


@dataclass
class ChunkPlan:
    """What one chunk of rows creates and changes."""

    new_licenses: list[NewLicense] = field(default_factory=list)
    updates: dict[int, LicenseUpdate] = field(default_factory=dict)
    new_per_user: list[NewPerUser] = field(default_factory=list)
    seen_per_user: list[int] = field(default_factory=list)  # PerUserIssuance pks listed again


class Planner:
    def __init__(self, *, server, report, staged, file_names, now):
        self.server = server
        self.report = report
        self.staged = staged
        self.file_names = file_names  # staged file index -> name
        self.now = now
        self.packs: dict[int, PackPlan] = {}
        self.pseudo: dict[int, tuple[str, str | None]] = {}  # KeyPackId -> (kind, product_version)
        self.pack_issued = Counter()  # by KeyPack pk: issued now, moving as the plan writes

    def problem(self, level, file, line, column, message, code=""):
        self.report.add(Problem(level, file, line, column, message, code))

    def refuse(self, file, row, refusal: rules.Refusal | None) -> bool:
        """Report a rule's refusal against the row; True when there was one."""
        if refusal is None:
            return False
        self.problem(ERROR, file, row.line, REFUSAL_COLUMNS[refusal.code], refusal.detail, refusal.code)
        return True

    # --- key packs ---------------------------------------------------------------------

    def plan_key_packs(self, existing: dict[int, KeyPack]) -> None:
        """``existing``: the server's recorded packs by KeyPackId, locked by the caller."""
        self.existing_packs = existing
        self.pack_issued = Counter({
            row["key_pack_id"]: row["n"]
            for row in License.objects.filter(key_pack__license_server=self.server).issued()
            .values("key_pack_id").annotate(n=Count("pk"))
        })
        seen: dict[int, tuple[str, int]] = {}
        for export, row in self.staged.key_pack_rows:
            where = seen.get(row.key_pack_id)
            if where is not None:
                self.problem(
                    ERROR, export.name, row.line, "KeyPackId",
                    f"KeyPackId {row.key_pack_id} appears twice (first in {where[0]}, line {where[1]}).",
                    "duplicate_row",
                )
                continue
            seen[row.key_pack_id] = (export.name, row.line)
            if row.pseudo:
                self.pseudo[row.key_pack_id] = (row.pseudo, row.product_version)
                what = ("the built-in pack; the portal tracks no built-in CALs" if row.pseudo == "built-in"
                        else "the temporary licenses pseudo-pack; its temporary CALs come from the "
                        "issued-license export")
                self.problem(SKIPPED, export.name, row.line, "KeyPackType",
                             f"Key pack {row.key_pack_id} skipped: it is {what}.", "pseudo_pack")
                continue
            self._plan_pack(export, row)

    def _plan_pack(self, export, row):
        existing = self.existing_packs.get(row.key_pack_id)
        plan = PackPlan(file=export, row=row, existing=existing)
        self.packs[row.key_pack_id] = plan
        refusal = rules.version_refusal(server_name=self.server.name, server_version=self.server.windows_version,
                                        product_version=row.product_version)
        if refusal is not None:
            plan.blocked = True
            self.problem(ERROR, export.name, row.line, "ProductVersion",
                         f"Key pack {row.key_pack_id}: {refusal.detail}", refusal.code)
            return
        if existing is None:
            return
        if (existing.product_version, existing.cal_type) != (row.product_version, row.cal_type):
            plan.blocked = True
            self.problem(
                ERROR, export.name, row.line, "ProductVersion",
                f"Key pack {row.key_pack_id} on {self.server.name} is recorded as "
                f"{WindowsVersion(existing.product_version).label} {CalType(existing.cal_type).label.lower()}; "
                f"the export says {WindowsVersion(row.product_version).label} "
                f"{CalType(row.cal_type).label.lower()}.", "key_pack_mismatch",
            )
            return
        # The portal's total is the purchase record: a different TotalLicenses on the server is
        # drift (pack_count_mismatch), not an update.
        if existing.expires_on != row.expires_on:
            plan.changes["expires_on"] = [existing.expires_on, row.expires_on]

    def pack_for(self, key_pack_id):
        """The planned pack or the recorded one, or None."""
        plan = self.packs.get(key_pack_id)
        return plan if plan is not None else self.existing_packs.get(key_pack_id)

    def pack_record(self, key_pack_id) -> KeyPack | None:
        """The pack's row once the key packs are written."""
        pack = self.pack_for(key_pack_id)
        return pack.instance if isinstance(pack, PackPlan) else pack

    def licensing_pack_ids(self, stage: int) -> list[int]:
        """KeyPackIds whose rows of ``stage`` may become licenses: real packs, and for
        temporary CALs the pseudo-packs too."""
        real = [kp for kp, plan in self.packs.items() if not plan.blocked] + [
            kp for kp in self.existing_packs if kp not in self.packs]
        return real + (list(self.pseudo) if stage == ImportRow.TEMPORARY else [])

    # --- rows that cannot be planned alone -------------------------------------------

    def ignore_duplicate_license_ids(self, job) -> None:
        """A LicenseId listed twice is a problem on every line but the first."""
        duplicated = (ImportRow.objects.filter(job=job).values("license_id").annotate(n=Count("id"))
                      .filter(n__gt=1).values("license_id"))
        first: dict[int, tuple] = {}
        ignored = []
        for row in ImportRow.objects.filter(job=job, license_id__in=duplicated).order_by("license_id", "id"):
            where = first.setdefault(row.license_id, (self.file_names[row.file], row.line))
            if where == (self.file_names[row.file], row.line):
                continue
            self.problem(ERROR, self.file_names[row.file], row.line, "LicenseId",
                         f"LicenseId {row.license_id} appears twice (first in {where[0]}, line {where[1]}).",
                         "duplicate_row")
            ignored.append(row.pk)
        ImportRow.objects.filter(pk__in=ignored).update(stage=ImportRow.IGNORED)

    # --- licenses, a chunk at a time -------------------------------------------------

    def plan_chunk(self, rows: list[ImportRow]) -> ChunkPlan:
        self.chunk = ChunkPlan()
        self._load(rows)
        for row in rows:
            file = self.file_names[row.file]
            if row.stage == ImportRow.ENDED:
                self._plan_ended(file, row)
            elif row.stage == ImportRow.PERMANENT:
                self._plan_permanent(file, row)
            elif row.stage == ImportRow.TEMPORARY:
                self._plan_temporary(file, row)
            elif row.stage == ImportRow.PER_USER:
                self._plan_per_user(file, row)
        return self.chunk

    def _load(self, rows):
        """Bulk look-ups for a chunk: its licenses by LicenseId, its machines, and what
        those machines hold (rules 4 and 5). Earlier chunks are already written."""
        self.existing = {
            lic.license_id: lic
            for lic in (RecordedLicense(*values) for values in License.objects.filter(
                license_server=self.server, license_id__in=[r.license_id for r in rows]
            ).order_by().values_list(*LICENSE_COLUMNS))
        }
        keys = {r.computer_key for r in rows if r.computer_key}
        self.machines = {
            hostname.lower(): RecordedMachine(pk, hostname, status, os_edition)
            for pk, hostname, status, os_edition in ClientMachine.objects.alias(lower_hostname=Lower("hostname"))
            .filter(lower_hostname__in=keys).values_list("pk", "hostname", "status", "os_edition")
        }
        self.held_permanent: dict[tuple, RecordedLicense] = {}
        self.temporaries: dict[tuple, object] = {}
        for values in License.objects.filter(
            Q(kind=LicenseKind.PERMANENT, status=LicenseStatus.ACTIVE) | Q(kind=LicenseKind.TEMPORARY),
            machine_id__in=[m.pk for m in self.machines.values()],
        ).order_by().values_list(*LICENSE_COLUMNS):
            lic = RecordedLicense(*values)
            key = (lic.machine_id, lic.product_version)
            if lic.kind == LicenseKind.PERMANENT:
                self.held_permanent[key] = lic
            else:
                self.temporaries[key] = lic

    def _status_label(self, row):
        return f"LicenseStatus {row.status} ({wmi.LICENSE_STATUS_LABELS.get(row.status, 'not documented')})"

    def _end(self, existing: RecordedLicense, *, file, row, reason, why, status=LicenseStatus.EXPIRED):
        """Plan the end of an active CAL (``License.end`` writes it)."""
        self.chunk.updates[existing.pk] = LicenseUpdate(
            license_pk=existing.pk,
            changes={"status": [existing.status, status], "end_reason": [existing.end_reason, reason]},
            file=file, line=row.line, why=why,
        )
        existing.status = status
        if existing.kind == LicenseKind.PERMANENT:
            self.pack_issued[existing.key_pack_id] -= 1

    def _plan_ended(self, file, row):
        existing = self.existing.get(row.license_id)
        if row.status == wmi.LICENSE_STATUS_REVOKED and existing is not None:
            if existing.status == LicenseStatus.ACTIVE and existing.kind == LicenseKind.PERMANENT:
                # Rule 12, seen on the server: no quota check, the server enforced it.
                self._end(existing, file=file, row=row, reason=LicenseEndReason.REVOKED,
                          status=LicenseStatus.REVOKED,
                          why=f"LicenseId {row.license_id} was revoked on the license server")
            elif existing.status == LicenseStatus.ACTIVE:
                self._end(existing, file=file, row=row, reason=LicenseEndReason.IMPORTED,
                          why=f"LicenseId {row.license_id} was revoked on the license server")
            else:
                self.report.unchanged["license"] += 1
            return
        note = "not imported" if existing is None else "left as recorded"
        self.problem(
            SKIPPED, file, row.line, "LicenseStatus",
            f"LicenseId {row.license_id} on {row.computer} has {self._status_label(row)}; {note}, only active "
            "and temporary licenses are imported.", "not_active",
        )

    def _check_existing(self, file, row, existing, kind, key_pack_pk):
        """A license the portal already holds: report a mismatch, or plan its updates."""
        machine = self.machines.get(row.computer_key)
        if machine is None or existing.machine_id != machine.pk or existing.kind != kind or (
            kind == LicenseKind.PERMANENT and existing.key_pack_id != key_pack_pk
        ):
            self.problem(
                ERROR, file, row.line, "LicenseId",
                f"LicenseId {row.license_id} on {self.server.name} is recorded as {existing.kind} CAL "
                f"#{existing.pk} of another machine or key pack; the export says {row.computer}, KeyPackId "
                f"{row.key_pack_id}.", "license_mismatch",
            )
            return
        if existing.status != LicenseStatus.ACTIVE and kind == LicenseKind.TEMPORARY:
            # The server lists expired temporary CALs until it purges them.
            self.report.unchanged["license"] += 1
            return
        if existing.status != LicenseStatus.ACTIVE:
            self.problem(
                WARNING, file, row.line, "LicenseStatus",
                f"LicenseId {row.license_id} on {row.computer} is {existing.status} in the portal; the license "
                "server still lists it, and it is left as recorded.", "ended_in_portal",
            )
            return
        changes = {}
        if row.hardware_id and existing.hardware_id != row.hardware_id:
            changes["hardware_id"] = [existing.hardware_id, row.hardware_id]
        if kind == LicenseKind.TEMPORARY and row.expires_at and existing.expires_at != row.expires_at:
            changes["expires_at"] = [existing.expires_at, row.expires_at]
        if changes:
            self.chunk.updates[existing.pk] = LicenseUpdate(
                license_pk=existing.pk, changes=changes, file=file, line=row.line,
                why=f"LicenseId {row.license_id} changed on the license server",
            )
        else:
            self.report.unchanged["license"] += 1

    def _machine_refusal(self, machine, product):
        """Rules 3 and 6 for the machine (one the import made is active, OS edition other)."""
        return rules.machine_receive_refusal(
            hostname=machine.hostname, retired=machine.status == MachineStatus.RETIRED,
            os_edition=machine.os_edition, server_name=self.server.name,
            builtin_cal=self.server.builtin_cal_for_pro_clients, product_version=product, held=None,
        )

    def _plan_permanent(self, file, row):
        if row.key_pack_id in self.pseudo:
            kind, _ = self.pseudo[row.key_pack_id]
            if kind == "built-in":
                self.problem(SKIPPED, file, row.line, "KeyPackId",
                             f"LicenseId {row.license_id} on {row.computer} is a built-in CAL (key pack "
                             f"{row.key_pack_id}); the portal tracks no built-in CALs.", "builtin_cal")
            else:
                self.problem(ERROR, file, row.line, "LicenseStatus",
                             f"LicenseId {row.license_id} is active but comes from the temporary licenses "
                             f"pseudo-pack {row.key_pack_id}.", "bad_value")
            return
        pack = self.pack_for(row.key_pack_id)
        if pack is None:
            self.problem(ERROR, file, row.line, "KeyPackId",
                         f"Key pack {row.key_pack_id} is neither in the key pack export nor recorded on "
                         f"{self.server.name}.", "unknown_key_pack")
            return
        if isinstance(pack, PackPlan) and pack.blocked:
            self.problem(ERROR, file, row.line, "KeyPackId",
                         f"Key pack {row.key_pack_id} has an error in {pack.file.name}, line {pack.row.line}; its "
                         "licenses are not imported.", "key_pack_blocked")
            return
        record = self.pack_record(row.key_pack_id)
        existing = self.existing.get(row.license_id)
        if existing is not None:
            self._check_existing(file, row, existing, LicenseKind.PERMANENT, record.pk)
            return
        machine = self.machines[row.computer_key]
        product = record.product_version
        key = (machine.pk, product)
        held = self.held_permanent.get(key)
        if held is not None and held.license_id is None and held.key_pack_id == record.pk:
            # The CAL the portal issued, now listed by the server: it gets its LicenseId.
            self.chunk.updates[held.pk] = LicenseUpdate(
                license_pk=held.pk, changes={"license_id": [None, row.license_id]}, file=file, line=row.line,
                why=f"the license server lists it as LicenseId {row.license_id}",
            )
            held.license_id = row.license_id
            return
        if held is not None:
            # The server issued a second CAL to the host (a re-imaged PC, say): reconciliation
            # reports it as duplicate issuance; the portal keeps the one it holds.
            self.problem(SKIPPED, file, row.line, "sIssuedToComputer",
                         f"LicenseId {row.license_id}: {row.computer} already holds active permanent CAL "
                         f"#{held.pk} for {WindowsVersion(product).label}; the second CAL is reported as "
                         "duplicate issuance.", "duplicate_issuance")
            return
        issued = self.pack_issued[record.pk]
        # The service's order: the machine (rules 6, 3), then the key pack (rules 2, 1).
        if self.refuse(file, row, self._machine_refusal(machine, product) or rules.key_pack_issue_refusal(
                key_pack_id=row.key_pack_id, server_name=self.server.name, cal_type=record.cal_type,
                issued=issued, total=record.total_licenses)):
            return
        self.pack_issued[record.pk] = issued + 1
        new = NewLicense(file=file, row=row, machine=machine, kind=LicenseKind.PERMANENT, product_version=product,
                         pack=record)
        self.chunk.new_licenses.append(new)
        self.held_permanent[key] = RecordedLicense(None, machine.pk, record.pk, LicenseKind.PERMANENT,
                                                   LicenseStatus.ACTIVE, "", row.hardware_id, None, product,
                                                   row.license_id)
        # Rule 4: a machine running on a temporary CAL stops when it receives a permanent one.
        temporary = self.temporaries.get(key)
        if isinstance(temporary, RecordedLicense) and temporary.pk and temporary.status == LicenseStatus.ACTIVE:
            self._end(temporary, file=file, row=row, reason=LicenseEndReason.REPLACED_BY_PERMANENT,
                      why=f"{row.computer} receives permanent LicenseId {row.license_id}")

    def _plan_temporary(self, file, row):
        pack = self.pack_for(row.key_pack_id)
        if row.key_pack_id in self.pseudo:
            product = self.pseudo[row.key_pack_id][1]
            if product is None:  # a built-in pack whose version could not be read
                self.problem(ERROR, file, row.line, "KeyPackId",
                             f"Temporary LicenseId {row.license_id}: key pack {row.key_pack_id} is the built-in "
                             "pack, whose product version is unknown.", "unknown_key_pack")
                return
        elif pack is not None:
            product = self.pack_record(row.key_pack_id).product_version
        else:
            self.problem(ERROR, file, row.line, "KeyPackId",
                         f"Temporary LicenseId {row.license_id}: key pack {row.key_pack_id} is neither in the key "
                         f"pack export nor recorded on {self.server.name}, so its product version is unknown.",
                         "unknown_key_pack")
            return
        existing = self.existing.get(row.license_id)
        if existing is not None:
            self._check_existing(file, row, existing, LicenseKind.TEMPORARY, None)
            return
        machine = self.machines[row.computer_key]
        key = (machine.pk, product)
        used = self.temporaries.get(key)
        label = f"#{used.pk}" if isinstance(used, RecordedLicense) else used
        if self.refuse(file, row, self._machine_refusal(machine, product) or rules.temporary_refusal(
                hostname=row.computer, product_version=product,
                used=f"temporary CAL {label}" if used is not None else None)):
            return
        self.temporaries[key] = f"LicenseId {row.license_id} ({file}, line {row.line})"
        expires_at = row.expires_at or row.issued_at + timedelta(days=TEMPORARY_CAL_DAYS)
        new = NewLicense(file=file, row=row, machine=machine, kind=LicenseKind.TEMPORARY, product_version=product,
                         pack=None, expires_at=expires_at)
        if key in self.held_permanent:
            new.status, new.ended_at = LicenseStatus.EXPIRED, self.now
            new.end_reason = LicenseEndReason.REPLACED_BY_PERMANENT
        elif expires_at <= self.now:
            new.status, new.ended_at = LicenseStatus.EXPIRED, expires_at
            new.end_reason = LicenseEndReason.EXPIRED_90_DAYS
        self.chunk.new_licenses.append(new)

    def _plan_per_user(self, file, row):
        """A per-user CAL: inventory only (rule 2), recorded as a per-user issuance."""
        record = self.pack_record(row.key_pack_id)
        if record is None:
            self.problem(SKIPPED, file, row.line, "KeyPackId",
                         f"Per-user LicenseId {row.license_id} of {row.user}: key pack {row.key_pack_id} is neither "
                         f"in the key pack export nor recorded on {self.server.name}.", "unknown_key_pack")
            return
        self.chunk.new_per_user.append(NewPerUser(file=file, row=row, pack=record))

    # --- what only the whole file tells ---------------------------------------------

    def check_packs(self, job, *, lists_licenses: bool) -> None:
        """Totals against what is issued, and against what the export lists."""
        active_rows = Counter(dict(
            ImportRow.objects.filter(job=job, stage=ImportRow.PERMANENT).values_list("key_pack_id")
            .annotate(n=Count("id")).values_list("key_pack_id", "n")
        )) if lists_licenses else Counter()
        for key_pack_id, plan in self.packs.items():
            if plan.blocked:
                continue
            rows = active_rows[key_pack_id]
            if lists_licenses and plan.row.issued_licenses is not None and plan.row.issued_licenses != rows:
                self.problem(
                    WARNING, plan.file.name, plan.row.line, "IssuedLicenses",
                    f"Key pack {key_pack_id}: IssuedLicenses is {plan.row.issued_licenses} but the issued-license "
                    f"export lists {rows} active licenses from it.", "issued_count_mismatch",
                )
            total = plan.instance.total_licenses if plan.instance else plan.total
            if lists_licenses and rows > total:
                self.problem(
                    ERROR, plan.file.name, plan.row.line, "TotalLicenses",
                    f"Key pack {key_pack_id} on {self.server.name} would be oversold: the export lists {rows} "
                    f"active licenses from it, but it holds {total}.",
                    DomainCode.NO_LICENSES_AVAILABLE,
                )
