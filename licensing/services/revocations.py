"""Rule 12: a permanent per-device CAL revoked in RD Licensing Manager, within the quota.

The quota: at any time at most 20% (rounded down) of the per-device CALs of one product
version installed on one server may be in the revoked state. A revoked CAL holds its place
until the date it would have expired, or 89 days after its revocation when that is unknown.

Concurrency: a revocation locks every key pack of its server and product version (the fixed
lock order: key packs, then licenses) before it counts the quota, so two revocations of one
version on one server run one after the other and never both take the last place.
"""

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Sum
from django.utils import timezone

from core import roles
from core.audit import audit_record
from core.locks import lock_one, lock_rows
from licensing import rules
from licensing.models import (
    OPEN_TRANSFER_STATUSES,
    CalType,
    KeyPack,
    License,
    LicenseEndReason,
    LicenseServer,
    LicenseStatus,
    Revocation,
    TransferRequest,
)
from licensing.rules import refuse_if

# A revocation recorded a little ahead of this server's clock is still "now".
CLOCK_SKEW = timedelta(minutes=5)


@dataclass(frozen=True)
class QuotaState:
    """One server's revocation quota for one product version, at one moment."""

    installed: int
    quota: int
    held: int
    next_free_on: date | None

    @property
    def left(self) -> int:
        return max(self.quota - self.held, 0)


def installed_per_device(*, license_server_id: int, product_version: str) -> int:
    return KeyPack.objects.filter(
        license_server_id=license_server_id, product_version=product_version, cal_type=CalType.PER_DEVICE,
    ).aggregate(n=Sum("total_licenses"))["n"] or 0


def quota_state(*, license_server_id: int, product_version: str, at: datetime | None = None) -> QuotaState:
    at = at or timezone.now()
    installed = installed_per_device(license_server_id=license_server_id, product_version=product_version)
    holding = list(
        Revocation.objects.filter(license_server_id=license_server_id, product_version=product_version,
                                  revoked_at__lte=at, holds_quota_until__gt=at)
        .values_list("holds_quota_until", flat=True)
    )
    return QuotaState(installed=installed, quota=rules.revoke_quota(installed), held=len(holding),
                      next_free_on=timezone.localdate(min(holding)) if holding else None)


def _busiest(intervals: list[tuple[datetime, datetime]], start: datetime, end: datetime) -> tuple[int, date | None]:
    """How many of ``intervals`` (revoked_at, holds_quota_until) overlap at the busiest moment
    of [start, end) (at ``start`` when that is empty), and when the first of those at
    ``start`` frees."""
    moments = [start] + [s for s, _ in intervals if start < s < end]
    busiest = max(sum(1 for s, e in intervals if s <= moment < e) for moment in moments)
    at_start = [e for s, e in intervals if s <= start < e]
    return busiest, (timezone.localdate(min(at_start)) if at_start else None)


def license_revoke(*, license: License, actor, note: str = "", revoked_at: datetime | None = None) -> License:
    """Record that ``license`` was revoked in RD Licensing Manager (``revoked_at``: when, now
    by default). Its seat returns to its pack at once. Refused with ``revoke_not_supported``
    or ``revoke_quota_exceeded``; bad input is a ValidationError. Either way nothing changes."""
    if not roles.is_admin(actor):
        raise PermissionDenied("Only administrators record revocations.")
    now = timezone.now()
    revoked_at = revoked_at or now
    if revoked_at > now + CLOCK_SKEW:
        raise ValidationError({"revoked_at": "A revocation cannot be in the future."})
    with transaction.atomic():
        target = License.objects.values("license_server_id", "product_version").get(pk=license.pk)
        lock_rows(KeyPack.objects, KeyPack.objects.filter(
            license_server_id=target["license_server_id"], product_version=target["product_version"],
        ).values_list("pk", flat=True))
        lic = lock_one(License.objects.select_related("license_server", "machine", "key_pack"), license.pk)
        server: LicenseServer = lic.license_server
        pending = (TransferRequest.objects.filter(license=lic, status__in=OPEN_TRANSFER_STATUSES)
                   .values_list("pk", "status").first())
        refuse_if(rules.revoke_refusal(
            license_pk=lic.pk, hostname=lic.machine.hostname, server_name=server.name,
            server_version=server.windows_version, kind=lic.kind,
            cal_type=lic.key_pack.cal_type if lic.key_pack else None, status=lic.status,
            pending=f"#{pending[0]} ({pending[1].replace('_', ' ')})" if pending else None,
        ))
        if revoked_at < lic.issued_at:
            raise ValidationError({"revoked_at": f"CAL #{lic.pk} was issued on {lic.issued_at:%Y-%m-%d %H:%M}; "
                                                 "it cannot have been revoked before that."})
        holds_until = rules.quota_holds_until(revoked_at=revoked_at, expires_at=lic.expires_at)
        installed = installed_per_device(license_server_id=server.pk, product_version=lic.product_version)
        others = list(Revocation.objects.filter(
            license_server=server, product_version=lic.product_version,
            revoked_at__lt=max(holds_until, revoked_at + timedelta(microseconds=1)), holds_quota_until__gt=revoked_at,
        ).values_list("revoked_at", "holds_quota_until"))
        held, next_free = _busiest(others, revoked_at, holds_until)
        refuse_if(rules.revoke_quota_refusal(
            server_name=server.name, product_version=lic.product_version, installed=installed, held=held,
            next_free=next_free,
        ))
        lic.end(status=LicenseStatus.REVOKED, reason=LicenseEndReason.REVOKED, at=revoked_at)
        Revocation.objects.create(
            license=lic, license_server=server, product_version=lic.product_version, key_pack=lic.key_pack,
            revoked_at=revoked_at, holds_quota_until=holds_until, recorded_by=actor, note=note,
        )
        quota = rules.revoke_quota(installed)
        audit_record(
            actor=actor, action="license.revoked", obj=lic,
            summary=f"CAL #{lic.pk} on {lic.machine.hostname} ({lic.get_product_version_display()}, key pack "
            f"{lic.key_pack.key_pack_id}) revoked in RD Licensing Manager on {server.name}; its seat is free again, "
            f"and it holds a revocation place until {timezone.localdate(holds_until):%Y-%m-%d} "
            f"({held + 1} of {quota} used).",
            data={
                "before": {"status": LicenseStatus.ACTIVE},
                "after": {"status": LicenseStatus.REVOKED, "revoked_at": revoked_at},
                "holds_quota_until": holds_until, "note": note,
                "quota": {"installed": installed, "quota": quota, "held": held + 1},
            },
            refs={"license": [lic.pk], "machine": [lic.machine_id], "key_pack": [lic.key_pack_id],
                  "license_server": [server.pk]},
        )
    return lic
