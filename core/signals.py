"""Audit of sign-ins: logins, failed logins and logouts, each in its own transaction."""

from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.db import transaction

from core.audit import audit_record

USERNAME_MAX_LENGTH = 150


def _client_address(request) -> str:
    if request is None:
        return ""
    return request.META.get("REMOTE_ADDR", "") or ""


def _refusal(request) -> dict:
    """Why the directory refused the sign-in, when it did (core.directory)."""
    refusal = getattr(request, "portal_sign_in_refusal", None)
    return {"refusal": refusal.code} if refusal is not None else {}


def record_login(sender, request, user, **kwargs):
    with transaction.atomic():
        audit_record(
            actor=user, action="auth.login", object_type="user", object_id=str(user.pk),
            summary=f"{user.get_username()} logged in.",
            # A directory sign-in adds its source and the role it granted (core.directory).
            data={"ip": _client_address(request), **getattr(user, "portal_sign_in", {})},
        )


def record_logout(sender, request, user, **kwargs):
    if user is None:  # the session had no signed-in user
        return
    with transaction.atomic():
        audit_record(
            actor=user, action="auth.logout", object_type="user", object_id=str(user.pk),
            summary=f"{user.get_username()} logged out.",
            data={"ip": _client_address(request)},
        )


def record_login_failed(sender, credentials, request=None, **kwargs):
    """Only the attempted username is kept; Django has already masked the password,
    and it is never read here."""
    field = get_user_model().USERNAME_FIELD
    attempted = str(credentials.get(field) or credentials.get("username") or "")[:USERNAME_MAX_LENGTH]
    with transaction.atomic():
        audit_record(
            actor=attempted, action="auth.login_failed", object_type="user", object_id="",
            summary=f"Failed login as {attempted or '(no username)'}.",
            data={"ip": _client_address(request), **_refusal(request)},
        )


def connect() -> None:
    user_logged_in.connect(record_login, dispatch_uid="core.audit.login")
    user_logged_out.connect(record_logout, dispatch_uid="core.audit.logout")
    user_login_failed.connect(record_login_failed, dispatch_uid="core.audit.login_failed")
