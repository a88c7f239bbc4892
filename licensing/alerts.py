"""Alerts by email, each sent once per object and threshold (recorded in AlertRecord)."""

from collections import Counter
from datetime import date, timedelta

from django.conf import settings
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.db.models import CharField, Exists, OuterRef
from django.db.models.functions import Cast
from django.utils import timezone

from core.models import AlertRecord
from licensing.models import (
    OPEN_TRANSFER_STATUSES,
    DriftItem,
    License,
    LicenseKind,
    LicenseStatus,
    ReissueRequest,
    ReissueStatus,
    TransferRequest,
)
from licensing.selectors import EXPIRY_WARNING_DAYS, forecast_rows

STALE_CALL_DAYS = 30


def _not_yet_alerted(objects, kind: str, threshold: str) -> list:
    objects = list(objects)
    sent = set(
        AlertRecord.objects.filter(
            kind=kind, threshold=threshold, object_id__in=[str(o.pk) for o in objects]
        ).values_list("object_id", flat=True)
    )
    return [o for o in objects if str(o.pk) not in sent]


def _claim(kind: str, object_type: str, object_id, threshold: str, recipients) -> bool:
    """Record that this alert goes out; False when it already went (or is going) out."""
    try:
        with transaction.atomic():
            AlertRecord.objects.create(
                kind=kind, object_type=object_type, object_id=str(object_id),
                threshold=threshold, recipients=", ".join(recipients),
            )
    except IntegrityError:
        return False
    return True


def _send(subject: str, lines: list[str], recipients) -> None:
    send_mail(
        subject=subject,
        message="\n".join(lines) + "\n",
        from_email=settings.DEFAULT_FROM_EMAIL,
        recipient_list=list(recipients),
    )


def alert_expiring_temporary_licenses(*, now=None) -> int:
    """Temporary CALs ending within 14 days on machines still without a permanent CAL for
    that product (typically waiting for a CSC reissue). Returns how many were alerted."""
    now = now or timezone.now()
    recipients = settings.PORTAL_ALERT_RECIPIENTS
    if not recipients:
        return 0
    threshold = f"{EXPIRY_WARNING_DAYS}d"
    candidates = (
        License.objects.filter(
            kind=LicenseKind.TEMPORARY, status=LicenseStatus.ACTIVE,
            expires_at__lte=now + timedelta(days=EXPIRY_WARNING_DAYS),
        )
        .select_related("machine", "license_server")
        .order_by("expires_at")
    )
    awaiting = set(
        TransferRequest.objects.filter(status__in=OPEN_TRANSFER_STATUSES)
        .values_list("target_machine_id", flat=True)
    )
    with transaction.atomic():
        lines = []
        for license in _not_yet_alerted(candidates, "temporary_expiring", threshold):
            if not _claim("temporary_expiring", "license", license.pk, threshold, recipients):
                continue
            waiting = " (waiting for a reissue)" if license.machine_id in awaiting else ""
            lines.append(
                f"- {license.machine.hostname}{waiting}: temporary CAL #{license.pk} for "
                f"{license.get_product_version_display()} on {license.license_server.name} "
                f"expires {license.expires_at:%Y-%m-%d %H:%M} UTC"
            )
        if lines:
            # Sent inside the transaction: if the mail fails, the records roll back and the
            # next run tries again.
            _send(
                f"[TS CAL portal] {len(lines)} temporary CAL(s) expire within {EXPIRY_WARNING_DAYS} days",
                ["These machines run on a temporary CAL that ends soon:", "", *lines], recipients,
            )
    return len(lines)


def alert_stale_reissue_requests(*, now=None) -> int:
    """CSC calls still open more than 30 days after the call."""
    now = now or timezone.now()
    recipients = settings.PORTAL_ALERT_RECIPIENTS
    if not recipients:
        return 0
    threshold = f"{STALE_CALL_DAYS}d"
    calls = ReissueRequest.objects.filter(
        status=ReissueStatus.OPEN, called_at__lte=now - timedelta(days=STALE_CALL_DAYS)
    ).select_related("license_server").order_by("called_at")
    with transaction.atomic():
        lines = []
        for call in _not_yet_alerted(calls, "reissue_stale", threshold):
            if not _claim("reissue_stale", "reissuerequest", call.pk, threshold, recipients):
                continue
            lines.append(
                f"- CSC call #{call.pk} to {call.csc_location} on {call.called_at:%Y-%m-%d} "
                f"({call.quantity_requested} {call.get_product_version_display()} CALs for "
                f"{call.license_server.name}, confirmation {call.confirmation_number or 'none'})"
            )
        if lines:
            _send(
                f"[TS CAL portal] {len(lines)} CSC reissue call(s) open for over {STALE_CALL_DAYS} days",
                ["These reissue calls have had no reissued key pack installed:", "", *lines], recipients,
            )
    return len(lines)


DRIFT_LINES_MAILED = 100


def alert_new_drift() -> int:
    """Each new drift item alerted once: one mail for all the items opened since the last one,
    by kind and server, with the first of them in full. Returns how many were alerted."""
    recipients = settings.PORTAL_ALERT_RECIPIENTS
    if not recipients:
        return 0
    alerted = AlertRecord.objects.filter(kind="drift_opened", object_type="driftitem",
                                         object_id=Cast(OuterRef("pk"), CharField()))
    with transaction.atomic():
        # A run at the same moment skips the rows this one holds, so no item is mailed twice.
        items = list(DriftItem.objects.select_for_update(skip_locked=True, of=("self",))
                     .filter(~Exists(alerted)).select_related("license_server").order_by("pk"))
        if not items:
            return 0
        AlertRecord.objects.bulk_create([
            AlertRecord(kind="drift_opened", object_type="driftitem", object_id=str(item.pk), threshold="new",
                        recipients=", ".join(recipients))
            for item in items
        ], batch_size=1000)
        by_kind = Counter((item.license_server.name, item.get_kind_display()) for item in items)
        lines = [f"- {server}: {n} x {kind}" for (server, kind), n in sorted(by_kind.items())]
        details = [f"- #{item.pk} {item.get_kind_display()} on {item.license_server.name}: {item.detail}"
                   for item in items[:DRIFT_LINES_MAILED]]
        if len(items) > DRIFT_LINES_MAILED:
            details.append(f"... and {len(items) - DRIFT_LINES_MAILED} more.")
        # Sent inside the transaction: if the mail fails, the records roll back and the next run tries again.
        _send(f"[TS CAL portal] {len(items)} new drift item(s) between the license servers and the portal",
              ["A snapshot of a license server disagrees with the portal:", "", *lines, "", *details, "",
               "Review or acknowledge them at /reconciliation/."], recipients)
    return len(items)


SHORTFALL_THRESHOLDS = (30, 7)  # days ahead, widest first


def _shortfall_alerted(pair: str, threshold: int, shortfall_on: date, today: date) -> bool:
    """Whether this threshold already went out for this shortfall: for the same date or an
    earlier one still to come. A date that moved later is no news; one that moved earlier,
    or a new shortfall after an old one has passed, is alerted again."""
    for recorded in AlertRecord.objects.filter(kind="shortfall", object_type="forecast", object_id=pair,
                                               threshold__startswith=f"{threshold}d:").values_list("threshold",
                                                                                                  flat=True):
        alerted_for = date.fromisoformat(recorded.split(":", 1)[1])
        if today <= alerted_for <= shortfall_on:
            return True
    return False


def alert_shortfalls(*, now=None) -> int:
    """Rule 14: a shortfall of permanent seats coming within 30 days, and again within 7,
    each alert sent once. Returns how many forecast rows were alerted."""
    now = now or timezone.now()
    recipients = settings.PORTAL_ALERT_RECIPIENTS
    if not recipients:
        return 0
    today = timezone.localdate(now)
    widest = SHORTFALL_THRESHOLDS[0]
    rows = [r for r in forecast_rows(now=now) if r.shortfall_on and (r.shortfall_on - today).days <= widest]
    with transaction.atomic():
        lines = []
        for row in rows:
            days = (row.shortfall_on - today).days
            pair = f"{row.license_server}:{row.product_version}"
            due = [t for t in SHORTFALL_THRESHOLDS if days <= t and not _shortfall_alerted(pair, t, row.shortfall_on,
                                                                                           today)]
            claimed = [t for t in due if _claim("shortfall", "forecast", pair, f"{t}d:{row.shortfall_on.isoformat()}",
                                                recipients)]
            if not claimed:
                continue
            ending = sum(e["count"] for e in row.temporary_ending if e["date"] <= row.shortfall_on)
            lines.append(
                f"- {row.license_server_name}, {row.product_version_label}: {row.free_seats} permanent seat(s) free, "
                f"{ending} temporary CAL(s) ending by {row.shortfall_on:%Y-%m-%d} (in {days} days)"
            )
        if lines:
            # Sent inside the transaction: if the mail fails, the records roll back and the next run tries again.
            _send(
                f"[TS CAL portal] CAL shortfall coming on {len(lines)} license server product(s)",
                ["Temporary CALs will end before enough permanent seats are free; clients will stop connecting:",
                 "", *lines, "", "Install key packs or free seats in time; see the forecast on the dashboard."],
                recipients,
            )
    return len(lines)
