"""The import's report: what the files hold, what changed (or would), and every problem.

Problems are counted in full; only the first ``PROBLEMS_KEPT`` of each level are kept, so a
file with a million bad rows still makes a report of bounded size.
"""

from collections import Counter
from dataclasses import dataclass, field

from licensing.importers.export_csv import ERROR, SKIPPED, WARNING, ExportFile, Problem

PROBLEMS_KEPT = 1000
ACTIONS_KEPT = 500


@dataclass
class ImportReport:
    server: str
    dry_run: bool = False
    files: list[ExportFile] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    problem_counts: Counter = field(default_factory=Counter)  # by level
    skipped_codes: Counter = field(default_factory=Counter)
    created: Counter = field(default_factory=Counter)  # by kind of object
    updated: Counter = field(default_factory=Counter)
    ended: Counter = field(default_factory=Counter)
    unchanged: Counter = field(default_factory=Counter)
    drift: Counter = field(default_factory=Counter)  # new, seen again, resolved
    actions: list[str] = field(default_factory=list)
    committed: bool = False
    events_written: int = 0
    snapshot_id: int | None = None

    def add(self, problem: Problem) -> None:
        self.problem_counts[problem.level] += 1
        if problem.level == SKIPPED:
            self.skipped_codes[problem.code] += 1
        if self.problem_counts[problem.level] <= PROBLEMS_KEPT:
            self.problems.append(problem)

    def extend(self, problems) -> None:
        for problem in problems:
            self.add(problem)

    def _level(self, level) -> list[Problem]:
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
    def error_count(self) -> int:
        return self.problem_counts[ERROR]

    @property
    def refused(self) -> bool:
        return self.error_count > 0 or any(not f.readable for f in self.files)

    @property
    def changes(self) -> int:
        return sum(self.created.values()) + sum(self.updated.values()) + sum(self.ended.values())

    def note(self, line: str) -> None:
        if len(self.actions) < ACTIONS_KEPT:
            self.actions.append(line)

    @property
    def outcome(self) -> str:
        if self.committed:
            return "imported" if self.changes else "nothing to change"
        if self.refused:
            return "refused: nothing was imported"
        return "dry run: nothing was written"

    def sort(self) -> None:
        self.problems.sort(key=lambda p: (p.file, p.line or 0, p.level))

    def summary(self) -> dict:
        """The job's ``summary``: counts per kind, and what the files held."""
        return {
            "outcome": self.outcome,
            "files": [file_summary(f) for f in self.files],
            "created": dict(self.created), "updated": dict(self.updated), "ended": dict(self.ended),
            "unchanged": dict(self.unchanged), "skipped": dict(self.skipped_codes),
            "errors": self.error_count, "warnings": self.problem_counts[WARNING],
            "drift": dict(self.drift), "actions": self.actions,
            "warning_list": [problem_json(p) for p in self.warnings],
        }

    def problems_json(self) -> list[dict]:
        """The job's ``problems``: the errors, each with file, line, column, code and detail."""
        return [problem_json(p) for p in self.errors]


def problem_json(problem: Problem) -> dict:
    return {"file": problem.file, "line": problem.line, "column": problem.column, "code": problem.code,
            "detail": problem.message}


def file_summary(export: ExportFile) -> dict:
    return {"name": export.name, "sha256": export.sha256, "rows": export.row_count, "class": export.wmi_class,
            "style": export.style, "encoding": export.encoding, "bytes": export.size}


def counts_text(counter: Counter) -> str:
    return ", ".join(f"{n} {kind.replace('_', ' ')}s" for kind, n in sorted(counter.items()) if n) or "0"
