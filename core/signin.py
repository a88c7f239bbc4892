"""Sign-in that resists guessing: django-axes counts failures per username and address and
locks the pair out; what the audit trail keeps of failures is bounded (docs/security.md).

- Every failure is counted by axes in its own tables (``AccessAttempt`` for the lockout,
  ``AccessFailureLog`` for the record) and written to the server log; none takes the audit
  chain's lock.
- A lockout of an existing account is one chained ``auth.locked_out`` event, at most one per
  account per lockout period, however many addresses or attempts caused it.
- Once an hour ``sign_in_failures_summarise`` chains one ``auth.sign_in_failures`` event with
  the counts since the last one (and the ten most tried names and addresses), if there were
  any.
So the chain grows by a bounded number of events whatever an anonymous client sends.
"""

import logging
from collections.abc import Mapping
from datetime import datetime, timedelta

from axes.handlers.proxy import AxesProxyHandler
from axes.models import AccessAttempt, AccessFailureLog
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Count
from django.http import HttpResponse, JsonResponse
from django.utils import timezone

from core.audit import SYSTEM_ACTOR, audit_record
from core.models import AuditEvent
from core.network import client_address

logger = logging.getLogger("core.signin")

USERNAME_MAX_LENGTH = 150
SUMMARY_TOP = 10
# Failure records older than this are deleted once the hourly summaries have counted them.
FAILURE_LOG_RETENTION = timedelta(days=30)


def lockout_minutes() -> int:
    return int(settings.AXES_COOLOFF_TIME.total_seconds() // 60)


def locked_out_message() -> str:
    minutes = lockout_minutes()
    return (f"Too many failed sign-ins for this user name from your address: sign-in is locked for "
            f"{minutes} minute{'s' if minutes != 1 else ''}, even with the right password. "
            f"Try again later, or ask a portal administrator to unlock the account.")


def normalise_username(username) -> str:
    """The name a lockout is kept under: directory accounts match without regard to case, so
    'Ada' and 'ADA' must count as the same guesses."""
    return str(username or "").strip().lower()[:USERNAME_MAX_LENGTH]


def attempted_username(request, credentials: Mapping | None) -> str:
    """AXES_USERNAME_CALLABLE: the username tried, from the credentials or the login form."""
    field = get_user_model().USERNAME_FIELD
    if credentials:
        value = credentials.get(field) or credentials.get("username")
    else:
        data = getattr(request, "data", None) or getattr(request, "POST", {})
        value = data.get(field) if hasattr(data, "get") else None
    return normalise_username(value)


def axes_client_address(request) -> str | None:
    """AXES_CLIENT_IP_CALLABLE: the client behind the trusted proxies (core.network)."""
    return client_address(request) or None


def is_locked_out(request) -> bool:
    return bool(getattr(request, "axes_locked_out", False))


def lockout_response(request, original_response=None, credentials=None):
    """AXES_LOCKOUT_CALLABLE: 429 with the reason. The API answers ``{"detail"}``; the login
    page keeps the page it drew (the form already says why), with the 429 status."""
    if original_response is not None and original_response.status_code == 429:
        return original_response
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": locked_out_message()}, status=429)
    match = getattr(request, "resolver_match", None)
    if original_response is not None and match is not None and match.view_name == "login":
        original_response.status_code = 429
        return original_response
    return HttpResponse(locked_out_message(), status=429, content_type="text/plain; charset=utf-8")


def sign_in_succeeded(request, user) -> None:
    """A token sign-in succeeded: forget this pair's failures, as a page sign-in does
    (AXES_RESET_ON_SUCCESS)."""
    address = getattr(request, "axes_ip_address", None)
    if settings.AXES_RESET_ON_SUCCESS and address:
        AxesProxyHandler.reset_attempts(ip_address=address, username=normalise_username(user.get_username()))


def _account(username: str):
    """The account a lockout is about, if the name is one (matched as the lockout is kept)."""
    return get_user_model().objects.filter(username__iexact=username).order_by("pk").first()


def record_lockout(*, username: str, address: str) -> bool:
    """Chain an ``auth.locked_out`` event for an existing account, unless one was chained for
    it within the lockout period. Returns whether an event was written."""
    account = _account(username)
    if account is None:
        return False  # a made-up name: counted by the hourly summary only
    since = timezone.now() - settings.AXES_COOLOFF_TIME
    with transaction.atomic():
        # The account's row serialises concurrent lockouts of it, so only one is chained.
        account = type(account).objects.select_for_update().get(pk=account.pk)
        latest = AuditEvent.objects.filter(
            action__in=("auth.locked_out", "auth.unlocked"), object_type="user", object_id=str(account.pk),
            occurred_at__gte=since,
        ).order_by("-sequence").values_list("action", flat=True).first()
        if latest == "auth.locked_out":
            return False
        audit_record(
            actor=username, action="auth.locked_out", obj=account,
            summary=f"Sign-in as {account.get_username()} locked for {lockout_minutes()} minutes after "
                    f"{settings.AXES_FAILURE_LIMIT} failures from {address or 'an unknown address'}.",
            data={"ip": address, "failures": settings.AXES_FAILURE_LIMIT, "minutes": lockout_minutes()},
        )
    return True


def lockout_end(*, username: str, actor=SYSTEM_ACTOR) -> int:
    """End the lockout of ``username`` from every address and forget its failures; returns how
    many (username, address) records were cleared. Audited when there were any."""
    name = normalise_username(username)
    with transaction.atomic():
        addresses = sorted({str(ip) for ip in AccessAttempt.objects.filter(username=name)
                            .values_list("ip_address", flat=True) if ip})
        cleared = AxesProxyHandler.reset_attempts(username=name)
        if cleared:
            account = _account(name)
            audit_record(
                actor=actor, action="auth.unlocked", object_type="user",
                object_id=str(account.pk) if account else "",
                summary=f"Sign-in as {username} unlocked by {actor}.",
                data={"username": name, "addresses": addresses},
            )
    return cleared


def _top(rows, field: str) -> list[list]:
    return [[row[field] or "", row["n"]] for row in rows.values(field).annotate(n=Count("id")).order_by("-n", field)
            [:SUMMARY_TOP]]


def sign_in_failures_summarise(*, now: datetime | None = None) -> AuditEvent | None:
    """Chain one ``auth.sign_in_failures`` event counting the failures since the previous one;
    none when there were no failures. Old failure records are deleted afterwards."""
    now = now or timezone.now()
    now = now.replace(microsecond=now.microsecond // 1000 * 1000)  # as the event's JSON keeps it
    with transaction.atomic():
        previous = AuditEvent.objects.filter(action="auth.sign_in_failures").order_by("-sequence").first()
        since = datetime.fromisoformat(previous.data["until"]) if previous else None
        failures = AccessFailureLog.objects.filter(attempt_time__lte=now)
        if since is not None:
            failures = failures.filter(attempt_time__gt=since)
        count = failures.count()
        event = None
        if count:
            first = since or failures.order_by("attempt_time").values_list("attempt_time", flat=True).first()
            data = {
                "since": first, "until": now, "failures": count,
                "lockouts": failures.filter(locked_out=True).count(),
                "usernames": failures.values("username").distinct().count(),
                "addresses": failures.values("ip_address").distinct().count(),
                "top_usernames": _top(failures, "username"),
                "top_addresses": _top(failures, "ip_address"),
            }
            event = audit_record(
                actor=SYSTEM_ACTOR, action="auth.sign_in_failures", object_type="auth", object_id="",
                summary=f"{count} failed sign-in(s) for {data['usernames']} user name(s) from "
                        f"{data['addresses']} address(es), {data['lockouts']} lockout(s), "
                        f"since {first:%Y-%m-%d %H:%M} UTC.",
                data=data,
            )
        AccessFailureLog.objects.filter(attempt_time__lt=now - FAILURE_LOG_RETENTION).delete()
    return event
