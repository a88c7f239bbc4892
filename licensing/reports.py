"""The reports people export (DOMAIN.md "Reports people need").

A report names its columns (human headers), the list FilterSet that filters it,
and how to read its rows. Rows are read with ``values_list`` over a chunked
iterator (a server-side cursor on PostgreSQL), so memory stays flat however many
rows there are. Every cell comes out as a plain value: text, a number, or an ISO
date/time string; the writers in ``licensing.exports`` turn them into files.
"""

import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from itertools import islice

import django_filters
from django.core.exceptions import ValidationError
from django.db.models import Case, F, Func, TextField, Value, When
from django.db.models.functions import Cast

from inventory.models import OsEdition
from licensing import models as m
from licensing.filtersets import (
    AuditEventFilterSet,
    LicenseFilterSet,
    ReissueRequestFilterSet,
    TransferFilterSet,
)
from licensing.selectors import compliance_rows

CHUNK_SIZE = 2000

# Query parameters a list takes that are not filters; exports ignore them.
LIST_ONLY_PARAMS = frozenset({"cursor", "page_size", "format", "page", "ordering"})


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


# Cell kinds: how a value is shown, in Python (``FORMATTERS``) and in SQL (``sql_cell``).
# HEX is text in the alphabet 0-9a-f (hash digests): it never starts like a formula.
TEXT, NUMBER, DATETIME, DATETIME_PRECISE, CHOICE, JSON, HEX = (
    "text", "number", "datetime", "datetime_precise", "choice", "json", "hex")
FORMATTERS = {
    TEXT: text, NUMBER: number, DATETIME: iso_datetime, DATETIME_PRECISE: iso_datetime_precise, JSON: text,
    HEX: text,
}


# Code points of the characters that make a spreadsheet read a cell as a formula.
_TRIGGER_CODES = ", ".join(str(ord(c)) for c in FORMULA_TRIGGERS)
_NEUTRALISE_SQL = (
    f"CASE WHEN ascii({{x}}) IN ({_TRIGGER_CODES}) THEN '''' || {{x}} ELSE NULLIF({{x}}, '') END"
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
class Column:
    """A report column: its human header, the ``values_list`` path it reads (or ``@name``
    for a value the report's ``enrich`` supplies), how its cells are shown, and an
    XLSX width. ``choices`` turn stored codes into their labels."""

    header: str
    field: str
    kind: str = TEXT
    width: int = 14
    choices: tuple = ()

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


class ComplianceFilterSet(django_filters.FilterSet):
    """Compliance is computed, not a queryset: this only validates its two filters."""

    license_server = django_filters.ModelChoiceFilter(queryset=m.LicenseServer.objects.all())
    product_version = django_filters.ChoiceFilter(choices=m.WindowsVersion.choices)

    class Meta:
        model = m.LicenseServer
        fields = []


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

    def copy_select(self, queryset, cursor) -> str:
        """One SELECT, parameters bound, whose rows are the report's CSV cells for this
        (filtered) queryset, in its order, the formatting done by the database."""
        cells = queryset.values_list(*[sql_cell(c) for c in self.columns])
        sql, params = cells.query.sql_with_params()
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


class ComplianceReport(Report):
    """Rows from ``licensing.selectors.compliance_rows``: one per license server and product."""

    def queryset(self, filters):  # pragma: no cover - compliance has no queryset
        raise NotImplementedError

    def _rows(self, filters):
        data = self.valid_filterset(filters).form.cleaned_data
        server = data.get("license_server")
        return compliance_rows(
            license_server=server.pk if server else None,
            product_version=data.get("product_version") or None,
        )

    def count(self, filters) -> int:
        return len(self._rows(filters))

    def rows(self, filters, *, chunk_size: int = CHUNK_SIZE):
        for row in self._rows(filters):
            values = row.as_dict()
            yield tuple(column.format(values[column.field]) for column in self.columns)


def _transfers_of_calls(batch) -> dict[int, str]:
    """The transfers each CSC call covered, for one chunk of calls, in one query."""
    call_pks = [record[0] for record in batch]
    through = m.ReissueRequest.transfers.through
    covered: dict[int, list[int]] = {}
    for call_pk, transfer_pk in (
        through.objects.filter(reissuerequest_id__in=call_pks)
        .order_by("reissuerequest_id", "transferrequest_id")
        .values_list("reissuerequest_id", "transferrequest_id")
    ):
        covered.setdefault(call_pk, []).append(transfer_pk)
    return {pk: " ".join(str(t) for t in transfer_pks) for pk, transfer_pks in covered.items()}


class LicenseReport(Report):
    """The current per-device CAL report: one row per active license.

    An explicit ``status`` filter, as on the list, shows that status instead.
    """

    def filterset(self, filters):
        data = dict(filters)
        data.setdefault("status", m.LicenseStatus.ACTIVE)
        return self.filterset_class(data=data, queryset=self.base_queryset())


AUDIT_TRAIL = Report(
    name="audit-trail",
    title="Audit trail",
    filterset_class=AuditEventFilterSet,
    base_queryset=lambda: m.AuditEvent.objects.order_by("sequence"),
    key="sequence",
    since_until=("since", "until"),
    until_is_datetime=True,
    columns=(
        Column("Sequence", "sequence", NUMBER, 10),
        Column("Occurred at", "occurred_at", DATETIME_PRECISE, 32),
        Column("Actor", "actor", TEXT, 16),
        Column("Action", "action", TEXT, 28),
        Column("Object type", "object_type", TEXT, 16),
        Column("Object id", "object_id", TEXT, 10),
        Column("Summary", "summary", TEXT, 80),
        Column("Details", "data", JSON, 60),
        Column("Previous hash", "prev_hash", HEX, 66),
        Column("Hash", "hash", HEX, 66),
    ),
)

LICENSES = LicenseReport(
    name="licenses",
    title="Current licenses",
    filterset_class=LicenseFilterSet,
    base_queryset=lambda: m.License.objects.order_by("id"),
    since_until=("issued_after", "issued_before"),
    columns=(
        Column("License", "id", NUMBER, 10),
        Column("LicenseId", "license_id", NUMBER, 12),
        Column("Host name", "machine__hostname", TEXT, 24),
        Column("OS edition", "machine__os_edition", CHOICE, 26, OsEdition.choices),
        Column("License server", "license_server__name", TEXT, 18),
        Column("Product version", "product_version", CHOICE, 24, m.WindowsVersion.choices),
        Column("Kind", "kind", CHOICE, 20, m.LicenseKind.choices),
        Column("Status", "status", CHOICE, 12, m.LicenseStatus.choices),
        Column("KeyPackId", "key_pack__key_pack_id", NUMBER, 12),
        Column("License program", "key_pack__license_program", CHOICE, 20, m.LicenseProgram.choices),
        Column("Agreement number", "key_pack__agreement_number", TEXT, 18),
        Column("Issued at", "issued_at", DATETIME, 26),
        Column("Expires at", "expires_at", DATETIME, 26),
        Column("Transferred from license", "transferred_from_id", NUMBER, 12),
    ),
)

COMPLIANCE = ComplianceReport(
    name="compliance",
    title="Compliance per license server and product",
    filterset_class=ComplianceFilterSet,
    columns=(
        Column("License server", "license_server_name", TEXT, 18),
        Column("Product version", "product_version", CHOICE, 24, m.WindowsVersion.choices),
        Column("Installed", "installed", NUMBER, 10),
        Column("Issued", "issued", NUMBER, 10),
        Column("Available", "available", NUMBER, 10),
        Column("Temporary CALs active", "temporary_active", NUMBER, 12),
        Column("Temporary CALs expiring within 14 days", "temporary_expiring_14d", NUMBER, 14),
    ),
)

TRANSFERS = Report(
    name="transfers",
    title="Transfer history",
    filterset_class=TransferFilterSet,
    base_queryset=lambda: m.TransferRequest.objects.order_by("id"),
    since_until=("since", "until"),
    columns=(
        Column("Transfer", "id", NUMBER, 10),
        Column("Status", "status", CHOICE, 18, m.TransferStatus.choices),
        Column("License", "license_id", NUMBER, 10),
        Column("Product version", "license__product_version", CHOICE, 24, m.WindowsVersion.choices),
        Column("License server", "license__license_server__name", TEXT, 18),
        Column("Source host name", "source_machine__hostname", TEXT, 24),
        Column("Target host name", "target_machine__hostname", TEXT, 24),
        Column("Reason", "reason", TEXT, 40),
        Column("Requested by", "requested_by__username", TEXT, 16),
        Column("Requested at", "requested_at", DATETIME, 26),
        Column("Approved by", "approved_by__username", TEXT, 16),
        Column("Approved at", "approved_at", DATETIME, 26),
        Column("Removal method", "removal_method", CHOICE, 28, m.RemovalMethod.choices),
        Column("Removal confirmed by", "removal_confirmed_by__username", TEXT, 16),
        Column("Removal confirmed at", "removal_confirmed_at", DATETIME, 26),
        Column("CSC call", "reissue_request_id", NUMBER, 10),
        Column("Resulting license", "resulting_license_id", NUMBER, 10),
        Column("Completed at", "completed_at", DATETIME, 26),
        Column("Closed by", "closed_by__username", TEXT, 16),
        Column("Closed at", "closed_at", DATETIME, 26),
        Column("Decision note", "decision_note", TEXT, 40),
    ),
)

REISSUE_REQUESTS = Report(
    name="reissue-requests",
    title="CSC reissue call log",
    filterset_class=ReissueRequestFilterSet,
    base_queryset=lambda: m.ReissueRequest.objects.order_by("id"),
    since_until=("since", "until"),
    enrich=_transfers_of_calls,
    columns=(
        Column("CSC call", "id", NUMBER, 10),
        Column("Called at", "called_at", DATETIME, 26),
        Column("CSC location", "csc_location", TEXT, 24),
        Column("CSC phone number", "csc_phone_number", TEXT, 20),
        Column("Representative", "representative", TEXT, 20),
        Column("Confirmation number", "confirmation_number", TEXT, 20),
        Column("Channel", "channel", CHOICE, 12, m.ReissueChannel.choices),
        Column("License server", "license_server__name", TEXT, 18),
        Column("Product version", "product_version", CHOICE, 24, m.WindowsVersion.choices),
        Column("License program", "license_program", CHOICE, 20, m.LicenseProgram.choices),
        Column("Agreement number", "agreement_number", TEXT, 18),
        Column("Quantity requested", "quantity_requested", NUMBER, 10),
        Column("Quantity granted", "quantity_granted", NUMBER, 10),
        Column("Transfers covered", "@transfers", TEXT, 20),
        Column("Status", "status", CHOICE, 12, m.ReissueStatus.choices),
        Column("Logged by", "logged_by__username", TEXT, 16),
        Column("Logged at", "logged_at", DATETIME, 26),
        Column("Reissued KeyPackId", "key_pack__key_pack_id", NUMBER, 12),
        Column("Closed by", "closed_by__username", TEXT, 16),
        Column("Closed at", "closed_at", DATETIME, 26),
        Column("Decision note", "decision_note", TEXT, 30),
        Column("Notes", "notes", TEXT, 30),
    ),
)

REPORTS: dict[str, Report] = {
    report.name: report for report in (AUDIT_TRAIL, LICENSES, COMPLIANCE, TRANSFERS, REISSUE_REQUESTS)
}


def get_report(name: str) -> Report | None:
    return REPORTS.get(name)


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
