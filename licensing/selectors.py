"""Reads that several screens share: compliance numbers and the dashboard's counts."""

from dataclasses import asdict, dataclass
from datetime import timedelta

from django.db.models import Count, Q, Sum
from django.utils import timezone

from licensing.models import (
    OPEN_TRANSFER_STATUSES,
    CalType,
    DriftItem,
    DriftKind,
    DriftState,
    KeyPack,
    License,
    LicenseKind,
    LicenseServer,
    LicenseStatus,
    ReissueRequest,
    ReissueStatus,
    Snapshot,
    TransferRequest,
    WindowsVersion,
    issued_q,
)

EXPIRY_WARNING_DAYS = 14


@dataclass(frozen=True)
class ComplianceRow:
    license_server: int
    license_server_name: str
    product_version: str
    installed: int
    issued: int
    available: int
    temporary_active: int
    temporary_expiring_14d: int

    @property
    def product_version_label(self) -> str:
        return WindowsVersion(self.product_version).label

    def as_dict(self) -> dict:
        return asdict(self)


def compliance_rows(*, license_server: int | None = None, product_version: str | None = None,
                    now=None) -> list[ComplianceRow]:
    """One row per license server and product version, from two grouped queries.

    Installed counts per-device packs, purchased plus reissued (per-user packs are
    inventory only and issue nothing). Issued counts permanent CALs that are active
    or transferred: a transferred seat does not come back to its pack.
    """
    now = now or timezone.now()
    packs = KeyPack.objects.filter(cal_type=CalType.PER_DEVICE)
    licenses = License.objects.all()
    if license_server:
        packs = packs.filter(license_server_id=license_server)
        licenses = licenses.filter(license_server_id=license_server)
    if product_version:
        packs = packs.filter(product_version=product_version)
        licenses = licenses.filter(product_version=product_version)
    installed = {
        (r["license_server"], r["product_version"]): r["total"]
        for r in packs.values("license_server", "product_version").annotate(total=Sum("total_licenses"))
    }
    temporary_active = Q(kind=LicenseKind.TEMPORARY, status=LicenseStatus.ACTIVE)
    counts = {
        (r["license_server"], r["product_version"]): r
        for r in licenses.values("license_server", "product_version").annotate(
            issued=Count("pk", filter=issued_q()),
            temporary_active=Count("pk", filter=temporary_active),
            temporary_expiring=Count(
                "pk",
                filter=temporary_active & Q(expires_at__lte=now + timedelta(days=EXPIRY_WARNING_DAYS)),
            ),
        )
    }
    names = dict(LicenseServer.objects.values_list("pk", "name"))
    rows = []
    for key in sorted(set(installed) | set(counts), key=lambda k: (names.get(k[0], ""), k[1])):
        server_pk, product = key
        c = counts.get(key, {})
        total = installed.get(key, 0) or 0
        issued = c.get("issued", 0)
        rows.append(
            ComplianceRow(
                license_server=server_pk,
                license_server_name=names.get(server_pk, ""),
                product_version=product,
                installed=total,
                issued=issued,
                available=total - issued,
                temporary_active=c.get("temporary_active", 0),
                temporary_expiring_14d=c.get("temporary_expiring", 0),
            )
        )
    return rows


def open_transfers_by_state() -> dict[str, int]:
    counts = dict(
        TransferRequest.objects.filter(status__in=OPEN_TRANSFER_STATUSES)
        .values_list("status")
        .annotate(n=Count("pk"))
    )
    return {status: counts.get(status, 0) for status in OPEN_TRANSFER_STATUSES}


def temporary_licenses_expiring(*, days: int = EXPIRY_WARNING_DAYS, now=None):
    now = now or timezone.now()
    return (
        License.objects.filter(kind=LicenseKind.TEMPORARY, status=LicenseStatus.ACTIVE,
                               expires_at__lte=now + timedelta(days=days))
        .select_related("machine", "license_server")
        .order_by("expires_at")
    )


def open_reissue_requests():
    return ReissueRequest.objects.filter(status=ReissueStatus.OPEN).select_related(
        "license_server"
    ).order_by("called_at")


def open_drift_by_server_and_kind() -> list[dict]:
    """Open drift items counted by license server and kind (the dashboard's tile)."""
    rows = list(
        DriftItem.objects.filter(state=DriftState.OPEN).values("license_server", "license_server__name", "kind")
        .annotate(n=Count("pk")).order_by("license_server__name", "kind")
    )
    for row in rows:
        row["kind_label"] = DriftKind(row["kind"]).label
    return rows


def latest_snapshot():
    return Snapshot.objects.select_related("license_server").order_by("-pk").first()
