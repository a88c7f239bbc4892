"""The reports people export (DOMAIN.md "Reports people need"), by name."""

import django_filters
from django.db.models import Q

from core.filtersets import AuditEventFilterSet, SearchFilterSet, int_or_none, matching_ids
from core.models import AuditEvent
from core.tables import AUDIT_EVENTS
from inventory.models import hostname_prefix_ids
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


class RevocationFilterSet(SearchFilterSet):
    """The revocations report's filters (no list shows revocations, so it lives here)."""

    since = django_filters.DateFilter(field_name="revoked_at", lookup_expr="date__gte")
    until = django_filters.DateFilter(field_name="revoked_at", lookup_expr="date__lte")
    recorded_by = django_filters.CharFilter(field_name="recorded_by__username", label="Recorded by (user name)")

    class Meta:
        model = m.Revocation
        fields = ["license_server", "product_version", "key_pack", "license"]

    def search_q(self, value):
        query = Q(license__machine_id__in=matching_ids(hostname_prefix_ids(value))) | Q(note__icontains=value)
        number = int_or_none(value)
        if number is not None:
            query |= Q(license_id=number) | Q(license__license_id=number) | Q(key_pack__key_pack_id=number)
        return query


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
            values = row.as_dict() | {"revoke_quota_left": row.revoke_quota_left,
                                      "per_user_over_allocated": row.per_user_over_allocated}
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


def _recorders_of_revocations(batch) -> dict[int, str]:
    """Who recorded each revocation of one chunk, or the snapshot that showed it, in one query."""
    return {
        pk: username or (f"snapshot #{snapshot}" if snapshot else "")
        for pk, username, snapshot in m.Revocation.objects.filter(pk__in=[record[0] for record in batch])
        .values_list("pk", "recorded_by__username", "snapshot_id")
    }


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
    "active and expiring within 14 days, revoked CALs against their quota, per-user CALs and the shortfall date.",
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
        Column("Revoked", "revoked", NUMBER, 10),
        Column("Revocation quota", "revoke_quota", NUMBER, 10),
        Column("Revocation places left", "revoke_quota_left", NUMBER, 12),
        Column("Per-user installed", "per_user_installed", NUMBER, 10),
        Column("Per-user issued", "per_user_issued", NUMBER, 10),
        Column("Per-user over-allocated", "per_user_over_allocated", CHOICE, 12, ((True, "Yes"), (False, "No"))),
        Column("Shortfall on", "shortfall_on", TEXT, 12),
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


REVOCATIONS = Report(
    name="revocations",
    title="Revocations",
    description="CALs revoked in RD Licensing Manager (Windows Server 2008 R2 and later): each with its server, "
    "product, host and key pack, when it was revoked, until when it holds a place in the revocation quota, and "
    "who recorded it or the snapshot that showed it.",
    page_filters=("license_server", "product_version", "since", "until", "recorded_by", "q"),
    filterset_class=RevocationFilterSet,
    base_queryset=lambda: m.Revocation.objects.order_by("id"),
    since_until=("since", "until"),
    enrich=_recorders_of_revocations,
    columns=tables.REVOCATIONS.report_columns,
)


REPORTS: dict[str, Report] = {
    report.name: report
    for report in (AUDIT_TRAIL, LICENSES, COMPLIANCE, TRANSFERS, REISSUE_REQUESTS, DRIFT, REVOCATIONS)
}


def get_report(name: str) -> Report | None:
    return REPORTS.get(name)
