"""Reads that several screens share: compliance numbers and the dashboard's counts."""

from collections import Counter, defaultdict
from dataclasses import asdict, dataclass
from datetime import date, timedelta

from django.db.models import Count, Max, Q, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from licensing import rules
from licensing.choices import version_rank
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
    PerUserIssuance,
    ReissueRequest,
    ReissueStatus,
    Revocation,
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
    revoked: int
    revoke_quota: int
    per_user_installed: int
    per_user_issued: int
    shortfall_on: date | None

    @property
    def product_version_label(self) -> str:
        return WindowsVersion(self.product_version).label

    @property
    def revoke_quota_left(self) -> int:
        return max(self.revoke_quota - self.revoked, 0)

    @property
    def per_user_over_allocated(self) -> bool:
        return self.per_user_issued > self.per_user_installed

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class ForecastRow:
    """Rule 14 for one server and product version: when active temporary CALs end, against
    the free permanent seats; the first day more have ended than seats are free."""

    license_server: int
    license_server_name: str
    product_version: str
    free_seats: int
    temporary_ending: list[dict]
    shortfall_on: date | None

    @property
    def product_version_label(self) -> str:
        return WindowsVersion(self.product_version).label

    def as_dict(self) -> dict:
        return asdict(self)


def _filtered(queryset, license_server, product_version, server_field="license_server_id"):
    if license_server:
        queryset = queryset.filter(**{server_field: license_server})
    if product_version:
        queryset = queryset.filter(product_version=product_version)
    return queryset


def _grouped(queryset, **aggregates) -> dict:
    return {(r["license_server"], r["product_version"]): r
            for r in queryset.values("license_server", "product_version").annotate(**aggregates)}


def _temporary_ending(license_server, product_version, today: date) -> dict:
    """Active temporary CALs by (server, product): [(date, count)] in date order; one already
    past its date (not yet expired by the hourly task) counts as ending today."""
    ending = defaultdict(Counter)
    rows = (_filtered(License.objects.filter(kind=LicenseKind.TEMPORARY, status=LicenseStatus.ACTIVE),
                      license_server, product_version)
            .annotate(day=TruncDate("expires_at")).values("license_server", "product_version", "day")
            .annotate(n=Count("pk")))
    for r in rows:
        ending[(r["license_server"], r["product_version"])][max(r["day"], today)] += r["n"]
    return {key: sorted(days.items()) for key, days in ending.items()}


def shortfall_date(free_seats: int, ending: list[tuple[date, int]]) -> date | None:
    """The first date on which more machines have lost their temporary CAL than seats are free."""
    lost = 0
    for day, count in ending:
        lost += count
        if lost > free_seats:
            return day
    return None


def _per_device(license_server, product_version, now) -> tuple[dict, dict]:
    installed = _grouped(_filtered(KeyPack.objects.filter(cal_type=CalType.PER_DEVICE), license_server,
                                   product_version), total=Sum("total_licenses"))
    temporary_active = Q(kind=LicenseKind.TEMPORARY, status=LicenseStatus.ACTIVE)
    counts = _grouped(
        _filtered(License.objects.all(), license_server, product_version),
        issued=Count("pk", filter=issued_q()),
        temporary_active=Count("pk", filter=temporary_active),
        temporary_expiring=Count(
            "pk", filter=temporary_active & Q(expires_at__lte=now + timedelta(days=EXPIRY_WARNING_DAYS)),
        ),
    )
    return installed, counts


def forecast_rows(*, license_server: int | None = None, product_version: str | None = None,
                  now=None) -> list[ForecastRow]:
    """Rule 14: one row per license server and product version with per-device packs or
    active temporary CALs."""
    now = now or timezone.now()
    installed, counts = _per_device(license_server, product_version, now)
    ending = _temporary_ending(license_server, product_version, timezone.localdate(now))
    names = dict(LicenseServer.objects.values_list("pk", "name"))
    rows = []
    for key in sorted(set(installed) | set(ending), key=lambda k: (names.get(k[0], ""), version_rank(k[1]))):
        free = max((installed.get(key, {}).get("total") or 0) - counts.get(key, {}).get("issued", 0), 0)
        days = ending.get(key, [])
        rows.append(ForecastRow(
            license_server=key[0], license_server_name=names.get(key[0], ""), product_version=key[1],
            free_seats=free, temporary_ending=[{"date": day, "count": n} for day, n in days],
            shortfall_on=shortfall_date(free, days),
        ))
    return rows


def compliance_rows(*, license_server: int | None = None, product_version: str | None = None,
                    now=None) -> list[ComplianceRow]:
    """One row per license server and product version.

    Installed counts per-device packs, purchased plus reissued (per-user packs are
    inventory only and issue nothing; they are ``per_user_installed``). Issued counts
    permanent CALs that are active or transferred: a transferred seat does not come back
    to its pack, a revoked one does. ``revoked`` counts the revoked CALs that hold a place
    in the revocation quota now (rule 12). ``per_user_issued`` counts the per-user CALs the
    server's latest snapshot listed.
    """
    now = now or timezone.now()
    installed, counts = _per_device(license_server, product_version, now)
    revoked = _grouped(_filtered(Revocation.objects.filter(revoked_at__lte=now, holds_quota_until__gt=now),
                                 license_server, product_version), n=Count("pk"))
    per_user_installed = _grouped(
        _filtered(KeyPack.objects.filter(cal_type=CalType.PER_USER), license_server, product_version),
        total=Sum("total_licenses"))
    latest = (Snapshot.objects.filter(lists_licenses=True).values("license_server")
              .annotate(last=Max("pk")).values("last"))
    per_user_issued = _grouped(_filtered(PerUserIssuance.objects.filter(snapshot__in=latest), license_server,
                                         product_version), n=Count("pk"))
    shortfall = {(f.license_server, f.product_version): f.shortfall_on
                 for f in forecast_rows(license_server=license_server, product_version=product_version, now=now)}
    names = dict(LicenseServer.objects.values_list("pk", "name"))
    keys = set(installed) | set(counts) | set(per_user_installed) | set(per_user_issued)
    rows = []
    for key in sorted(keys, key=lambda k: (names.get(k[0], ""), version_rank(k[1]))):
        c = counts.get(key, {})
        total = installed.get(key, {}).get("total") or 0
        issued = c.get("issued", 0)
        rows.append(ComplianceRow(
            license_server=key[0], license_server_name=names.get(key[0], ""), product_version=key[1],
            installed=total, issued=issued, available=total - issued,
            temporary_active=c.get("temporary_active", 0), temporary_expiring_14d=c.get("temporary_expiring", 0),
            revoked=revoked.get(key, {}).get("n", 0), revoke_quota=rules.revoke_quota(total),
            per_user_installed=per_user_installed.get(key, {}).get("total") or 0,
            per_user_issued=per_user_issued.get(key, {}).get("n", 0),
            shortfall_on=shortfall.get(key),
        ))
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
