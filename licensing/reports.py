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
from django import forms
from django.core.exceptions import ValidationError
from django.core.serializers.json import DjangoJSONEncoder

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


def label_of(choices) -> Callable[[str], str]:
    labels = dict(choices)
    return lambda value: labels.get(value, value or "")


def json_text(value) -> str:
    return json.dumps(value, cls=DjangoJSONEncoder, sort_keys=True, ensure_ascii=False)


class InvalidFilters(ValidationError):
    """The report's FilterSet refused the filters; ``message_dict`` is keyed by filter name."""


@dataclass(frozen=True)
class Column:
    """A report column: its human header, the ``values_list`` path it reads (or ``@name``
    for a value the report's ``enrich`` supplies), the cell formatter and an XLSX width."""

    header: str
    field: str
    format: Callable = text
    width: int = 14


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

    ``since_until`` names the filters that bound the report in time, so the shell
    command's ``--since`` and ``--until`` mean the same on every report.
    """

    name: str
    title: str
    filterset_class: type[django_filters.FilterSet]
    columns: tuple[Column, ...]
    base_queryset: Callable | None = None
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

    def rows(self, filters: Mapping[str, str], *, chunk_size: int = CHUNK_SIZE) -> Iterator[tuple]:
        """The report's rows as tuples of plain cell values, in a stable order.

        Rows are read a chunk at a time; ``enrich`` (if any) gets each chunk and returns
        the value of the ``@`` columns by the row's first field, its id: one query per
        chunk, never one per row.
        """
        fields = [c.field for c in self.columns if not c.field.startswith("@")]
        raw = self.queryset(filters).values_list(*fields).iterator(chunk_size=chunk_size)
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
        return self.filterset_class(data=data, queryset=m.License.objects.order_by("id"))


AUDIT_TRAIL = Report(
    name="audit-trail",
    title="Audit trail",
    filterset_class=AuditEventFilterSet,
    base_queryset=lambda: m.AuditEvent.objects.order_by("sequence"),
    since_until=("since", "until"),
    until_is_datetime=True,
    columns=(
        Column("Sequence", "sequence", number, 10),
        Column("Occurred at", "occurred_at", iso_datetime_precise, 32),
        Column("Actor", "actor", text, 16),
        Column("Action", "action", text, 28),
        Column("Object type", "object_type", text, 16),
        Column("Object id", "object_id", text, 10),
        Column("Summary", "summary", text, 80),
        Column("Details", "data", json_text, 60),
        Column("Previous hash", "prev_hash", text, 66),
        Column("Hash", "hash", text, 66),
    ),
)

LICENSES = LicenseReport(
    name="licenses",
    title="Current licenses",
    filterset_class=LicenseFilterSet,
    since_until=("issued_after", "issued_before"),
    columns=(
        Column("License", "id", number, 10),
        Column("LicenseId", "license_id", number, 12),
        Column("Host name", "machine__hostname", text, 24),
        Column("OS edition", "machine__os_edition", label_of(OsEdition.choices), 26),
        Column("License server", "license_server__name", text, 18),
        Column("Product version", "product_version", label_of(m.WindowsVersion.choices), 24),
        Column("Kind", "kind", label_of(m.LicenseKind.choices), 20),
        Column("Status", "status", label_of(m.LicenseStatus.choices), 12),
        Column("KeyPackId", "key_pack__key_pack_id", number, 12),
        Column("License program", "key_pack__license_program", label_of(m.LicenseProgram.choices), 20),
        Column("Agreement number", "key_pack__agreement_number", text, 18),
        Column("Issued at", "issued_at", iso_datetime, 26),
        Column("Expires at", "expires_at", iso_datetime, 26),
        Column("Transferred from license", "transferred_from_id", number, 12),
    ),
)

COMPLIANCE = ComplianceReport(
    name="compliance",
    title="Compliance per license server and product",
    filterset_class=ComplianceFilterSet,
    columns=(
        Column("License server", "license_server_name", text, 18),
        Column("Product version", "product_version", label_of(m.WindowsVersion.choices), 24),
        Column("Installed", "installed", number, 10),
        Column("Issued", "issued", number, 10),
        Column("Available", "available", number, 10),
        Column("Temporary CALs active", "temporary_active", number, 12),
        Column("Temporary CALs expiring within 14 days", "temporary_expiring_14d", number, 14),
    ),
)

TRANSFERS = Report(
    name="transfers",
    title="Transfer history",
    filterset_class=TransferFilterSet,
    base_queryset=lambda: m.TransferRequest.objects.order_by("id"),
    since_until=("since", "until"),
    columns=(
        Column("Transfer", "id", number, 10),
        Column("Status", "status", label_of(m.TransferStatus.choices), 18),
        Column("License", "license_id", number, 10),
        Column("Product version", "license__product_version", label_of(m.WindowsVersion.choices), 24),
        Column("License server", "license__license_server__name", text, 18),
        Column("Source host name", "source_machine__hostname", text, 24),
        Column("Target host name", "target_machine__hostname", text, 24),
        Column("Reason", "reason", text, 40),
        Column("Requested by", "requested_by__username", text, 16),
        Column("Requested at", "requested_at", iso_datetime, 26),
        Column("Approved by", "approved_by__username", text, 16),
        Column("Approved at", "approved_at", iso_datetime, 26),
        Column("Removal method", "removal_method", label_of(m.RemovalMethod.choices), 28),
        Column("Removal confirmed by", "removal_confirmed_by__username", text, 16),
        Column("Removal confirmed at", "removal_confirmed_at", iso_datetime, 26),
        Column("CSC call", "reissue_request_id", number, 10),
        Column("Resulting license", "resulting_license_id", number, 10),
        Column("Completed at", "completed_at", iso_datetime, 26),
        Column("Closed by", "closed_by__username", text, 16),
        Column("Closed at", "closed_at", iso_datetime, 26),
        Column("Decision note", "decision_note", text, 40),
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
        Column("CSC call", "id", number, 10),
        Column("Called at", "called_at", iso_datetime, 26),
        Column("CSC location", "csc_location", text, 24),
        Column("CSC phone number", "csc_phone_number", text, 20),
        Column("Representative", "representative", text, 20),
        Column("Confirmation number", "confirmation_number", text, 20),
        Column("Channel", "channel", label_of(m.ReissueChannel.choices), 12),
        Column("License server", "license_server__name", text, 18),
        Column("Product version", "product_version", label_of(m.WindowsVersion.choices), 24),
        Column("License program", "license_program", label_of(m.LicenseProgram.choices), 20),
        Column("Agreement number", "agreement_number", text, 18),
        Column("Quantity requested", "quantity_requested", number, 10),
        Column("Quantity granted", "quantity_granted", number, 10),
        Column("Transfers covered", "@transfers", text, 20),
        Column("Status", "status", label_of(m.ReissueStatus.choices), 12),
        Column("Logged by", "logged_by__username", text, 16),
        Column("Logged at", "logged_at", iso_datetime, 26),
        Column("Reissued KeyPackId", "key_pack__key_pack_id", number, 12),
        Column("Closed by", "closed_by__username", text, 16),
        Column("Closed at", "closed_at", iso_datetime, 26),
        Column("Decision note", "decision_note", text, 30),
        Column("Notes", "notes", text, 30),
    ),
)

REPORTS: dict[str, Report] = {
    report.name: report for report in (AUDIT_TRAIL, LICENSES, COMPLIANCE, TRANSFERS, REISSUE_REQUESTS)
}


def get_report(name: str) -> Report | None:
    return REPORTS.get(name)


def since_until_filters(report: Report, *, since: date | None, until: date | None) -> dict[str, str]:
    """``--since``/``--until`` dates as the report's own time filters (both days included)."""
    if (since or until) and report.since_until is None:
        raise ValidationError(f"The {report.name} report has no time filter.")
    filters = {}
    if since:
        filters[report.since_until[0]] = since.isoformat()
    if until:
        if report.until_is_datetime:
            filters[report.since_until[1]] = datetime.combine(until, time.max, tzinfo=UTC).isoformat()
        else:
            filters[report.since_until[1]] = until.isoformat()
    return filters


def parse_date(value: str) -> date:
    field_ = forms.DateField(input_formats=["%Y-%m-%d"])
    return field_.clean(value)
