"""Planning an import: every change to the portal's rows, and every refusal, decided in
memory with bulk look-ups and the same rules as the services (``licensing.rules``)."""

from collections import Counter
from datetime import timedelta

from django.core.exceptions import ValidationError
from django.db.models import Count, Q
from django.db.models.functions import Lower

from core.errors import DomainCode
from inventory.models import (
    ClientMachine,
    MachineStatus,
    hostname_validator,
)
from licensing import rules
from licensing.importers import wmi
from licensing.importers.export_csv import (
    ERROR,
    SKIPPED,
    WARNING,
    Problem,
)
from licensing.models import (
    CalType,
    KeyPack,
    License,
    LicenseEndReason,
    LicenseKind,
    LicenseStatus,
    WindowsVersion,
)

# The column a rule's refusal is reported against.
from licensing.services.imports.planned import (
    LICENSE_COLUMNS,
    LicenseUpdate,
    NewLicense,
    NewMachine,
    PackPlan,
    RecordedLicense,
    RecordedMachine,
)
from licensing.services.licenses import TEMPORARY_CAL_DAYS

REFUSAL_COLUMNS = {
    DomainCode.MACHINE_RETIRED: "sIssuedToComputer",
    DomainCode.OS_INCLUDES_CAL: "sIssuedToComputer",
    DomainCode.MACHINE_ALREADY_LICENSED: "sIssuedToComputer",
    DomainCode.TEMPORARY_ALREADY_USED: "sIssuedToComputer",
    DomainCode.PER_USER_KEY_PACK: "KeyPackId",
    DomainCode.NO_LICENSES_AVAILABLE: "KeyPackId",
}


LOOKUP_CHUNK = 10000


class Planner:
    def __init__(self, *, server, exports, report, installed_on, now):
        self.server = server
        self.exports = exports
        self.report = report
        self.installed_on = installed_on
        self.now = now
        self.packs: dict[int, PackPlan] = {}
        self.pseudo: dict[int, tuple[str, str]] = {}  # KeyPackId -> (kind, product_version)
        self.new_machines: dict[str, NewMachine] = {}
        self.new_licenses: list[NewLicense] = []
        self.license_updates: dict[int, LicenseUpdate] = {}

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
        plan = PackPlan(file=export, row=row, existing=existing)
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
        self.machines: dict[str, RecordedMachine] = {}
        for start in range(0, len(pks), LOOKUP_CHUNK):
            for values in (
                ClientMachine.objects.select_for_update()
                .filter(pk__in=pks[start:start + LOOKUP_CHUNK])
                .order_by("pk")
                .values_list("pk", "hostname", "status", "os_edition")
            ):
                machine = RecordedMachine(*values)
                self.machines[machine.hostname.lower()] = machine

    def load_license_state(self, rows):
        """Bulk look-ups: the server's licenses by LicenseId and what the export's
        machines already hold (rules 4 and 5)."""
        self.existing_licenses: dict[int, RecordedLicense] = {}
        if rows:
            for license_id, *values in License.objects.filter(
                license_server=self.server, license_id__isnull=False
            ).order_by().values_list("license_id", *LICENSE_COLUMNS):
                self.existing_licenses[license_id] = RecordedLicense(*values)
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
                lic = RecordedLicense(*values)
                key = (lic.machine_id, lic.product_version)
                if lic.kind == LicenseKind.PERMANENT:
                    self.held_permanent[key] = f"#{lic.pk}"
                else:
                    self.temporaries[key] = lic
        self.pack_issued = Counter(self.db_issued)  # by KeyPack pk, moves as the plan grows

    def machine_key(self, machine):
        return machine.pk if isinstance(machine, RecordedMachine) else ("new", machine.hostname.lower())

    def machine_for(self, file, row):
        key = row.computer.lower()
        machine = self.machines.get(key)
        if machine is not None:
            return machine
        new = self.new_machines.get(key)
        if new is None:
            new = NewMachine(hostname=row.computer, hardware_id=row.hardware_id, file=file,
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
                self.license_updates[existing.pk] = LicenseUpdate(
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
            self.license_updates[existing.pk] = LicenseUpdate(
                license_pk=existing.pk, changes=changes, file=file, line=row.line,
                why=f"LicenseId {row.license_id} changed on the license server",
            )
        else:
            self.report.unchanged["license"] += 1

    def refuse(self, file, row, refusal: rules.Refusal | None) -> bool:
        """Report a rule's refusal against the row; True when there was one."""
        if refusal is None:
            return False
        self.problem(ERROR, file, row.line, REFUSAL_COLUMNS[refusal.code], refusal.detail, refusal.code)
        return True

    def _machine_refusal(self, machine, product):
        """Rules 3 and 6 for a recorded machine (a new one is active, OS edition other)."""
        if not isinstance(machine, RecordedMachine):
            return None
        return rules.machine_receive_refusal(
            hostname=machine.hostname, retired=machine.status == MachineStatus.RETIRED,
            os_edition=machine.os_edition, server_name=self.server.name,
            builtin_cal=self.server.builtin_cal_for_pro_clients, product_version=product, held=None,
        )

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
        if isinstance(pack, PackPlan) and pack.blocked:
            self.problem(
                ERROR, file, row.line, "KeyPackId",
                f"Key pack {row.key_pack_id} has an error in {pack.file.name}, line "
                f"{pack.row.line}; its licenses are not imported.", "key_pack_blocked",
            )
            return
        product, cal, total = (
            (pack.row.product_version, pack.row.cal_type, pack.row.total_licenses)
            if isinstance(pack, PackPlan)
            else (pack.product_version, pack.cal_type, pack.total_licenses)
        )
        recorded = pack.existing if isinstance(pack, PackPlan) else pack
        existing = self.existing_licenses.get(row.license_id)
        if existing is not None:
            self._check_existing(file, row, existing, LicenseKind.PERMANENT,
                                 recorded.pk if recorded else None)
            return
        machine = self.machine_for(file, row)
        key = (self.machine_key(machine), product)
        held = self.held_permanent.get(key)
        pack_key = recorded.pk if recorded else ("new", row.key_pack_id)
        issued = self.pack_issued[pack_key]
        # The service's order: the machine (rules 6, 3, 4), then the key pack (rules 2, 1).
        if self.refuse(file, row, self._machine_refusal(machine, product)
                       or rules.already_licensed_refusal(
                           hostname=row.computer, product_version=product,
                           held=f"active permanent CAL {held}" if held else None)
                       or rules.key_pack_issue_refusal(
                           key_pack_id=row.key_pack_id, server_name=self.server.name, cal_type=cal,
                           issued=issued, total=total)):
            return
        self.pack_issued[pack_key] = issued + 1
        self.held_permanent[key] = f"LicenseId {row.license_id} ({file}, line {row.line})"
        self.new_licenses.append(NewLicense(
            file=file, row=row, machine=machine, kind=LicenseKind.PERMANENT,
            product_version=product, pack=pack,
        ))
        # Rule 4: a machine running on a temporary CAL stops when it receives a permanent one.
        temporary = self.temporaries.get(key)
        if isinstance(temporary, RecordedLicense) and temporary.status == LicenseStatus.ACTIVE:
            self.license_updates[temporary.pk] = LicenseUpdate(
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
        elif isinstance(pack, PackPlan):
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
        key = (self.machine_key(machine), product)
        used = self.temporaries.get(key)
        label = f"#{used.pk}" if isinstance(used, RecordedLicense) else used
        if self.refuse(file, row, self._machine_refusal(machine, product) or rules.temporary_refusal(
                hostname=row.computer, product_version=product,
                used=f"temporary CAL {label}" if used is not None else None)):
            return
        self.temporaries[key] = f"LicenseId {row.license_id} ({file}, line {row.line})"
        expires_at = row.expires_at or row.issued_at + timedelta(days=TEMPORARY_CAL_DAYS)
        new = NewLicense(
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
            refusal = rules.below_issued_refusal(
                key_pack_id=key_pack_id, server_name=self.server.name, issued=issued, total=plan.total)
            if refusal is not None:
                plan.blocked = True
                self.problem(ERROR, plan.file.name, plan.row.line, "TotalLicenses", refusal.detail, refusal.code)
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
                    DomainCode.NO_LICENSES_AVAILABLE,
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
