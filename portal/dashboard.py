"""The dashboard: what needs attention across license servers, transfers and calls."""


from django.shortcuts import render
from django.utils import timezone

from core.models import AuditChainHead, AuditEvent
from licensing import selectors
from licensing.models import TransferStatus

# The nightly verification records a broken chain in the trail itself.
VERIFY_ACTIONS = ("audit.verified", "audit.verification_failed")


# --- roles -------------------------------------------------------------------------------


# --- forms -------------------------------------------------------------------------------


# --- keyset pagination --------------------------------------------------------------------


# --- dashboard ----------------------------------------------------------------------------


def _percent(part: int, whole: int) -> int:
    if whole <= 0:
        return 0
    return max(0, min(100, round(100 * part / whole)))


def shortfalls(*, now) -> list[dict]:
    """Rule 14 on the dashboard: each server and product with a coming shortfall, soonest
    first, with its free seats and the temporary CALs that end by that date."""
    coming = [row for row in selectors.forecast_rows(now=now) if row.shortfall_on is not None]
    coming.sort(key=lambda row: (row.shortfall_on, row.license_server_name, row.product_version))
    return [
        {
            "row": row,
            "ending_by_then": sum(day["count"] for day in row.temporary_ending if day["date"] <= row.shortfall_on),
            "days_left": (row.shortfall_on - timezone.localdate(now)).days,
        }
        for row in coming
    ]


def dashboard(request):
    now = timezone.now()
    rows = selectors.compliance_rows(now=now)
    chart = [
        {
            "row": row,
            "issued_pct": _percent(row.issued, row.installed),
            "available_pct": _percent(max(row.available, 0), row.installed),
            "over": row.available < 0,
        }
        for row in rows
    ]
    by_state = selectors.open_transfers_by_state()
    transfers = [
        {"status": status, "label": TransferStatus(status).label, "count": count}
        for status, count in by_state.items()
    ]
    expiring = list(selectors.temporary_licenses_expiring(now=now)[:20])
    expiring_total = sum(row.temporary_expiring_14d for row in rows)
    calls = list(selectors.open_reissue_requests()[:20])
    head = AuditChainHead.objects.filter(pk=1).first()
    last_check = (
        AuditEvent.objects.filter(action__in=VERIFY_ACTIONS)
        .only("sequence", "occurred_at", "action", "summary")
        .order_by("-sequence")
        .first()
    )
    open_drift = selectors.open_drift_by_server_and_kind()
    context = {
        "shortfalls": shortfalls(now=now),
        "open_drift": open_drift,
        "open_drift_total": sum(row["n"] for row in open_drift),
        "last_snapshot": selectors.latest_snapshot(),
        "chart": chart,
        "transfers_by_state": transfers,
        "open_transfers_total": sum(by_state.values()),
        "expiring": expiring,
        "expiring_total": expiring_total,
        "open_calls": calls,
        "chain_head": head.last_sequence if head else 0,
        "last_check": last_check,
        "last_check_ok": last_check is not None and last_check.action == "audit.verified",
        "now": now,
    }
    return render(request, "portal/dashboard.html", context)
