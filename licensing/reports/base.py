"""What every report is made of: columns, how their cells are shown (in Python and in SQL),
and the ``Report`` that reads rows through its list's FilterSet.

Rows are read with ``values_list`` over a chunked iterator (a server-side cursor on
PostgreSQL), so memory stays flat however many rows there are. Every cell comes out as a
plain value: text, a number, or an ISO date/time string; ``licensing.reports.writers``
turns them into files.
"""

import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from itertools import islice

import django_filters
from django.core.exceptions import EmptyResultSet, ValidationError
from django.db.models import Case, F, Func, TextField, Value, When
from django.db.models.functions import Cast

from core.tables import (  # noqa: F401 - the cell kinds are read from here too
    CHOICE,
    DATETIME,
    DATETIME_PRECISE,
    FORMULA_TRIGGERS,
    HEX,
    JSON,
    NUMBER,
    TEXT,
    Column,
    neutralise,
)

CHUNK_SIZE = 2000

# Query parameters a list takes that are not filters; exports ignore them.
LIST_ONLY_PARAMS = frozenset({"cursor", "page_size", "format", "page", "ordering"})


# Code points of the characters that make a spreadsheet read a cell as a formula.
_TRIGGER_CODES = ", ".join(str(ord(c)) for c in FORMULA_TRIGGERS)
# Every trigger is below "A" (65; a test keeps it so): text that starts with a letter, most
# text, is let through after one comparison.
_NEUTRALISE_SQL = (
    f"CASE WHEN ascii({{x}}) > 64 THEN {{x}} WHEN ascii({{x}}) IN ({_TRIGGER_CODES}) THEN '''' || {{x}} "
    "ELSE NULLIF({x}, '') END"
)


class Neutralised(Func):
    """PostgreSQL: text with a leading quote when it starts like a formula (as
    ``neutralise``), and empty text as NULL (an empty CSV field). It repeats its
    argument, so it wraps column references only, never bound parameters."""

    template = _NEUTRALISE_SQL.format(x="%(expressions)s")
    output_field = TextField()


class JsonText(Func):
    """PostgreSQL: a JSON value as its text, cast once. Only a bare number can start
    like a formula (``-1``); objects, arrays and strings start with ``{``, ``[`` and ``"``."""

    template = (
        "CASE WHEN jsonb_typeof(%(expressions)s) = 'number' THEN "
        + _NEUTRALISE_SQL.format(x="(%(expressions)s)::text")
        + " ELSE (%(expressions)s)::text END"
    )
    output_field = TextField()


class IsoUtc(Func):
    """PostgreSQL: a timestamp as ISO 8601 in UTC, as ``iso_datetime`` writes it."""

    template = """to_char(%(expressions)s AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS%(fraction)s"+00:00"')"""
    output_field = TextField()


def sql_cell(column) -> object:
    """The column's cell computed by PostgreSQL, exactly as the Python formatters show it."""
    if column.kind == NUMBER:
        return F(column.field)
    if column.kind in (DATETIME, DATETIME_PRECISE):
        return IsoUtc(F(column.field), fraction=".US" if column.kind == DATETIME_PRECISE else "")
    if column.kind == JSON:
        return JsonText(F(column.field))
    if column.kind == CHOICE:
        return Case(
            *[When(**{column.field: code}, then=Value(neutralise(label) or None))
              for code, label in column.choices],
            default=Neutralised(Cast(F(column.field), TextField())), output_field=TextField(),
        )
    if column.kind == HEX:
        return F(column.field)
    return Neutralised(Cast(F(column.field), TextField()))


class InvalidFilters(ValidationError):
    """The report's FilterSet refused the filters; ``message_dict`` is keyed by filter name."""


@dataclass(frozen=True)
class Report:
    """One exportable report.

    ``base_queryset`` is ordered by ``key``, a unique column. ``since_until`` names
    the filters that bound the report in time, so the shell command's ``--since`` and
    ``--until`` mean the same on every report.
    """

    name: str
    title: str
    filterset_class: type[django_filters.FilterSet]
    columns: tuple[Column, ...]
    base_queryset: Callable | None = None
    key: str = "id"
    since_until: tuple[str, str] | None = None
    until_is_datetime: bool = False
    enrich: Callable | None = None
    # What the reports page says of it, and the filters it offers there.
    description: str = ""
    page_filters: tuple[str, ...] = ()

    @property
    def headers(self) -> list[str]:
        return [c.header for c in self.columns]

    @property
    def filter_names(self) -> list[str]:
        return list(self.filterset_class.base_filters)

    def clean_filters(self, params: Mapping) -> dict[str, str]:
        """The known filters given, as strings, without the list's paging parameters."""
        known = set(self.filter_names)
        cleaned = {}
        for key in params:
            if key in known:
                value = params.get(key) if hasattr(params, "getlist") else params[key]
                if value not in (None, ""):
                    cleaned[key] = value if isinstance(value, str) else json.dumps(value)
        return cleaned

    def filterset(self, filters: Mapping[str, str]):
        queryset = self.base_queryset() if self.base_queryset else None
        return self.filterset_class(data=dict(filters), queryset=queryset)

    def valid_filterset(self, filters: Mapping[str, str]):
        """The bound FilterSet, or ``ValidationError`` with its field errors."""
        filterset = self.filterset(filters)
        if not filterset.is_valid():
            raise InvalidFilters({name: list(errors) for name, errors in filterset.errors.items()})
        return filterset

    def validate(self, filters: Mapping[str, str]) -> None:
        self.valid_filterset(filters)

    def queryset(self, filters: Mapping[str, str]):
        return self.valid_filterset(filters).qs

    def count(self, filters: Mapping[str, str]) -> int:
        return self.queryset(filters).count()

    def can_copy(self, connection) -> bool:
        """Can PostgreSQL's COPY write this report's CSV by itself?"""
        return (connection.vendor == "postgresql" and self.base_queryset is not None
                and not any(c.field.startswith("@") for c in self.columns))

    def copy_select(self, queryset, cursor) -> str | None:
        """One SELECT, parameters bound, whose rows are the report's CSV cells for this
        (filtered) queryset, in its order, the formatting done by the database; None when
        Django can tell the filters match nothing (e.g. ``id IN ()`` from a search that found
        no host), which it cannot write as SQL."""
        cells = queryset.values_list(*[sql_cell(c) for c in self.columns])
        try:
            sql, params = cells.query.sql_with_params()
        except EmptyResultSet:
            return None
        return cursor.mogrify(sql, params).decode()

    def rows(self, filters: Mapping[str, str], *, chunk_size: int = CHUNK_SIZE) -> Iterator[tuple]:
        """The report's rows as tuples of plain cell values, in a stable order.

        Rows are read a chunk at a time; ``enrich`` (if any) gets each chunk and returns
        the value of the ``@`` columns by the row's first field, its id: one query per
        chunk, never one per row.
        """
        sources = [c.source for c in self.columns if not c.field.startswith("@")]
        raw = self.queryset(filters).values_list(*sources).iterator(chunk_size=chunk_size)
        cells = list(zip([c.format for c in self.columns], _positions(self.columns), strict=True))
        for batch in _batched(raw, chunk_size):
            extra = self.enrich(batch) if self.enrich else {}
            for record in batch:
                yield tuple(fmt(record[i] if i is not None else extra.get(record[0])) for fmt, i in cells)


def _positions(columns) -> list[int | None]:
    """Index of each column in the ``values_list`` tuple; None for enriched columns."""
    positions, index = [], 0
    for column in columns:
        if column.field.startswith("@"):
            positions.append(None)
        else:
            positions.append(index)
            index += 1
    return positions


def _batched(iterable: Iterable, size: int) -> Iterator[list]:
    iterator = iter(iterable)
    while batch := list(islice(iterator, size)):
        yield batch


def since_until_filters(report: Report, *, since: date | datetime | None,
                        until: date | datetime | None) -> dict[str, str]:
    """``--since``/``--until`` as the report's own time filters. A day includes all of it;
    a moment is taken as given where the report filters by time, and as its day elsewhere."""
    if (since or until) and report.since_until is None:
        raise ValidationError(f"The {report.name} report has no time filter.")
    filters = {}
    for name, value, end_of_day in ((report.since_until and report.since_until[0], since, False),
                                    (report.since_until and report.since_until[1], until, True)):
        if value is None:
            continue
        if not report.until_is_datetime:
            value = value.date() if isinstance(value, datetime) else value
        elif not isinstance(value, datetime):
            value = datetime.combine(value, time.max if end_of_day else time.min, tzinfo=UTC)
        filters[name] = value.isoformat()
    return filters


def parse_moment(value: str) -> date | datetime:
    """A day (YYYY-MM-DD) or an ISO 8601 moment (naive moments are UTC)."""
    try:
        return date.fromisoformat(value)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(value)
    except ValueError as exc:
        raise ValidationError(f"{value!r} is neither a date (YYYY-MM-DD) nor an ISO 8601 date and time.") from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
