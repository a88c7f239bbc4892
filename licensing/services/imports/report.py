"""The import's report: what the files hold, what would change or changed, and every problem."""

from collections import Counter, defaultdict
from dataclasses import dataclass, field

from licensing.importers.export_csv import (
    ERROR,
    SKIPPED,
    WARNING,
    ExportFile,
    Problem,
)
from licensing.models import (
    CalType,
    LicenseStatus,
    WindowsVersion,
)
from licensing.services.imports.plan import Planner
from licensing.services.imports.planned import NewMachine

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


def describe_plan(planner: Planner, report: ImportReport):
    needed = {
        n.machine.hostname.lower() for n in planner.new_licenses if isinstance(n.machine, NewMachine)
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


def counts_text(counter: Counter) -> str:
    return ", ".join(f"{n} {kind.replace('_', ' ')}s" for kind, n in sorted(counter.items()) if n) or "0"


def group_problems(problems) -> dict[str, list[Problem]]:
    grouped = defaultdict(list)
    for problem in problems:
        grouped[problem.level].append(problem)
    return grouped
