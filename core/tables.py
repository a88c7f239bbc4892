"""Lists declared once: the columns a page shows and sorts by, and a report exports.

A ``Table`` names each column once, by key, with the order the page shows them in and the
order its report exports them in. ``KeysetListView`` reads the page's columns and sort keys
from it; a report reads its columns from it. Cells are shown as plain values (text, a number,
an ISO date and time): ``FORMATTERS`` in Python, and the same in SQL for PostgreSQL's COPY.
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from django.db.models import TextField
from django.db.models.functions import Cast


def iso_datetime(value: datetime | None) -> str:
    return value.astimezone(UTC).isoformat(timespec="seconds") if value else ""


def iso_datetime_precise(value: datetime | None) -> str:
    return value.astimezone(UTC).isoformat(timespec="microseconds") if value else ""


def text(value) -> str:
    return "" if value is None else str(value)


def number(value):
    return "" if value is None else value


# Leading characters that make a spreadsheet evaluate a cell (OWASP CSV injection).
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


def neutralise(value):
    """A text cell that starts like a formula gets a leading quote; other values pass."""
    if isinstance(value, str) and value.startswith(FORMULA_TRIGGERS):
        return "'" + value
    return value


# Cell kinds: how a value is shown, in Python (``FORMATTERS``) and in SQL (reports' ``sql_cell``).
# HEX is text in the alphabet 0-9a-f (hash digests): it never starts like a formula.
TEXT, NUMBER, DATETIME, DATETIME_PRECISE, CHOICE, JSON, HEX = (
    "text", "number", "datetime", "datetime_precise", "choice", "json", "hex")
FORMATTERS = {
    TEXT: text, NUMBER: number, DATETIME: iso_datetime, DATETIME_PRECISE: iso_datetime_precise, JSON: text,
    HEX: text,
}


@dataclass(frozen=True)
class Column:
    """One column of a list, declared once for its page and its report: its label on the
    page, the ORM path it reads (or ``@name`` for a value a report's ``enrich`` supplies),
    how its cells are shown, an XLSX width, the key that sorts the page by it (``?sort=``),
    and the report's header where it differs from the page's. ``choices`` turn stored
    codes into their labels."""

    label: str
    field: str
    kind: str = TEXT
    width: int = 14
    choices: tuple = ()
    sort: str | None = None
    report_label: str = ""

    @property
    def header(self) -> str:
        """The report's header."""
        return self.report_label or self.label

    @property
    def format(self) -> Callable:
        if self.kind == CHOICE:
            labels = dict(self.choices)
            return lambda value: labels.get(value, value or "")
        return FORMATTERS[self.kind]

    @property
    def source(self):
        """What ``values_list`` reads: JSON as the database's own text of it."""
        return Cast(self.field, TextField()) if self.kind == JSON else self.field


@dataclass(frozen=True)
class Table:
    """A list's columns by key, in the page's order and (if it has one) its report's."""

    columns: dict[str, Column]
    page: tuple[str, ...]
    default_sort: str
    report: tuple[str, ...] = ()

    def __getitem__(self, key: str) -> Column:
        return self.columns[key]

    @property
    def page_columns(self) -> tuple[tuple[str, str | None], ...]:
        """(label, sort key or None) for each column the page shows."""
        return tuple((self.columns[key].label, self.columns[key].sort) for key in self.page)

    @property
    def sort_fields(self) -> dict[str, str]:
        """Sort key -> the ORM path (non-null) that orders the page by it."""
        return {column.sort: column.field for column in self.columns.values() if column.sort}

    @property
    def report_columns(self) -> tuple[Column, ...]:
        return tuple(self.columns[key] for key in self.report)


# --- the audit trail ----------------------------------------------------------------------

AUDIT_EVENTS = Table(
    columns={
        "sequence": Column("#", "sequence", NUMBER, 10, sort="sequence", report_label="Sequence"),
        "occurred_at": Column("When", "occurred_at", DATETIME_PRECISE, 32, sort="occurred_at",
                              report_label="Occurred at"),
        "actor": Column("Actor", "actor", TEXT, 16),
        "action": Column("Action", "action", TEXT, 28),
        "object_type": Column("Object", "object_type", TEXT, 16, report_label="Object type"),
        "object_id": Column("Object id", "object_id", TEXT, 10),
        "summary": Column("Summary", "summary", TEXT, 80),
        "data": Column("Details", "data", JSON, 60),
        "prev_hash": Column("Previous hash", "prev_hash", HEX, 66),
        "hash": Column("Hash", "hash", HEX, 66),
    },
    page=("sequence", "occurred_at", "actor", "action", "object_type", "summary"),
    report=("sequence", "occurred_at", "actor", "action", "object_type", "object_id", "summary", "data",
            "prev_hash", "hash"),
    default_sort="-sequence",
)
