"""The reports people export (DOMAIN.md "Reports people need"), by name."""

import django_filters

from core.filtersets import AuditEventFilterSet
from core.models import AuditEvent
from core.tables import AUDIT_EVENTS
from licensing import models as m
from licensing import tables
from licensing.filtersets import DriftItemFilterSet, LicenseFilterSet, ReissueRequestFilterSet, TransferFilterSet
from licensing.reports.base import (
    CHOICE,
    CHUNK_SIZE,
    NUMBER,
    TEXT,
    Column,
    Report,
)
from licensing.selectors import compliance_rows


class ComplianceFilterSet(django_filters.FilterSet):
    """Compliance is computed, not a queryset: this only validates its two filters."""

    license_server = django_filters.ModelChoiceFilter(queryset=m.LicenseServer.objects.all())
    product_version = django_filters.ChoiceFilter(choices=m.WindowsVersion.choices)

    class Meta:
        model = m.LicenseServer
        fields = []


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
    description="Every recorded change, with its actor and time.",
    page_filters=("since", "until", "action", "actor", "machine", "key_pack", "q"),
    filterset_class=AuditEventFilterSet,
    base_queryset=lambda: AuditEvent.objects.order_by("sequence"),
    key="sequence",
    since_until=("since", "until"),
    until_is_datetime=True,
    columns=AUDIT_EVENTS.report_columns,
)


LICENSES = LicenseReport(
    name="licenses",
    title="Current licenses",
    description="The per-device CAL report: one row per license.",
    page_filters=("status", "kind", "product_version", "license_server", "license_program",
                  "issued_after", "issued_before", "q"),
    filterset_class=LicenseFilterSet,
    base_queryset=lambda: m.License.objects.order_by("id"),
    since_until=("issued_after", "issued_before"),
    columns=tables.LICENSES.report_columns,
)


COMPLIANCE = ComplianceReport(
    name="compliance",
    title="Compliance per license server and product",
    description="Installed, issued and available CALs per license server and product, with temporary CALs "
    "active and expiring within 14 days.",
    page_filters=("license_server", "product_version"),
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
    description="Every transfer request and where it stands.",
    page_filters=("status", "product_version", "license_server", "requested_by", "since", "until", "q"),
    filterset_class=TransferFilterSet,
    base_queryset=lambda: m.TransferRequest.objects.order_by("id"),
    since_until=("since", "until"),
    columns=tables.TRANSFERS.report_columns,
)


REISSUE_REQUESTS = Report(
    name="reissue-requests",
    title="CSC reissue call log",
    description="Every telephone call to the Customer Service Center.",
    page_filters=("status", "license_server", "product_version", "license_program", "since", "until", "q"),
    filterset_class=ReissueRequestFilterSet,
    base_queryset=lambda: m.ReissueRequest.objects.order_by("id"),
    since_until=("since", "until"),
    enrich=_transfers_of_calls,
    columns=tables.REISSUE_REQUESTS.report_columns,
)


DRIFT = Report(
    name="drift",
    title="Reconciliation drift",
    description="Where the license servers and the portal disagree, each item from the snapshot that first showed "
    "it to the last, with its state.",
    page_filters=("state", "kind", "license_server", "product_version", "q"),
    filterset_class=DriftItemFilterSet,
    base_queryset=lambda: m.DriftItem.objects.order_by("id"),
    columns=tables.DRIFT_ITEMS.report_columns,
)


REPORTS: dict[str, Report] = {
    report.name: report for report in (AUDIT_TRAIL, LICENSES, COMPLIANCE, TRANSFERS, REISSUE_REQUESTS, DRIFT)
}


def get_report(name: str) -> Report | None:
    return REPORTS.get(name)
