"""Sign-in events: what the audit trail, the session clocks and the API tokens make of them.

- A sign-in and a sign-out are chained events (``auth.login``, ``auth.logout``); signing out
  of the pages also revokes the user's API tokens.
- A failed sign-in is counted by django-axes and logged, not chained (core.signin explains
  what the chain keeps of failures). The exception is a refusal the directory gives only
  after accepting the password (no role group, deactivated account): only the account's
  holder can cause it, so it is chained as ``auth.login_failed`` with the reason.
- A lockout of an existing account is chained once per lockout period (core.signin).
- A password change, however it is made, revokes the user's API tokens.
"""

import logging

from axes.signals import user_locked_out
from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.db import transaction
from django.db.models.signals import post_save, pre_save

from core.audit import SYSTEM_ACTOR, audit_record
from core.network import client_address
from core.sessions import mark_signed_in
from core.signin import attempted_username, record_lockout
from core.tokens import tokens_revoke_all

logger = logging.getLogger("core.signin")

USERNAME_MAX_LENGTH = 150
PASSWORD_CHANGED = "_portal_password_changed"


def _refusal(request):
    """Why the directory refused the sign-in, when it did (core.directory)."""
    return getattr(request, "portal_sign_in_refusal", None)


def record_login(sender, request, user, **kwargs):
    mark_signed_in(request)
    with transaction.atomic():
        audit_record(
            actor=user, action="auth.login", object_type="user", object_id=str(user.pk),
            summary=f"{user.get_username()} logged in.",
            # A directory sign-in adds its source and the role it granted (core.directory).
            data={"ip": client_address(request), **getattr(user, "portal_sign_in", {})},
        )


def record_logout(sender, request, user, **kwargs):
    if user is None:  # the session had no signed-in user
        return
    with transaction.atomic():
        audit_record(
            actor=user, action="auth.logout", object_type="user", object_id=str(user.pk),
            summary=f"{user.get_username()} logged out.",
            data={"ip": client_address(request)},
        )
        tokens_revoke_all(user=user, reason="signed_out")


def record_login_failed(sender, credentials, request=None, **kwargs):
    """Only the attempted username is kept; Django has already masked the password,
    and it is never read here."""
    field = get_user_model().USERNAME_FIELD
    attempted = str(credentials.get(field) or credentials.get("username") or "")[:USERNAME_MAX_LENGTH]
    address = client_address(request)
    refusal = _refusal(request)
    locked = bool(getattr(request, "axes_locked_out", False))
    logger.warning("Failed sign-in as %r from %s%s%s.", attempted, address or "an unknown address",
                   f" ({refusal.code})" if refusal else "", ", locked out" if locked else "")
    if refusal is None or not refusal.after_password:
        return
    with transaction.atomic():
        audit_record(
            actor=attempted, action="auth.login_failed", object_type="user", object_id="",
            summary=f"Failed login as {attempted or '(no username)'}.",
            data={"ip": address, "refusal": refusal.code},
        )


def record_locked_out(sender, request, username, ip_address, **kwargs):
    # axes also sends this for each attempt refused during a lockout; only a failure it has
    # just counted (its count set on the request) can start a lockout.
    if getattr(request, "axes_failures_since_start", None) is None:
        return
    record_lockout(username=username or attempted_username(request, None), address=ip_address or "")


def note_password_change(sender, instance, raw=False, update_fields=None, **kwargs):
    if raw or instance._state.adding or instance.pk is None:
        return
    if update_fields is not None and "password" not in update_fields:
        return
    stored = sender.objects.filter(pk=instance.pk).values_list("password", flat=True).first()
    setattr(instance, PASSWORD_CHANGED, stored is not None and stored != instance.password)


def revoke_tokens_on_password_change(sender, instance, created=False, raw=False, **kwargs):
    if raw or not getattr(instance, PASSWORD_CHANGED, False):
        return
    setattr(instance, PASSWORD_CHANGED, False)
    tokens_revoke_all(user=instance, reason="password_changed", actor=SYSTEM_ACTOR)


def connect() -> None:
    user_model = get_user_model()
    user_logged_in.connect(record_login, dispatch_uid="core.audit.login")
    user_logged_out.connect(record_logout, dispatch_uid="core.audit.logout")
    user_login_failed.connect(record_login_failed, dispatch_uid="core.audit.login_failed")
    user_locked_out.connect(record_locked_out, dispatch_uid="core.audit.locked_out")
    pre_save.connect(note_password_change, sender=user_model, dispatch_uid="core.tokens.password_change")
    post_save.connect(revoke_tokens_on_password_change, sender=user_model, dispatch_uid="core.tokens.revoke")
