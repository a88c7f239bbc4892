"""API tokens (django-rest-knox): each one has its own lifetime, is kept only as a digest, and
can be revoked alone (API logout) or all at once (page logout, a password change).

Every issue and every revocation that removed a token is an audit event; the token itself is
never written to the trail.
"""

from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone
from knox.models import AuthToken

from core.audit import actor_name, audit_record


def token_issue(*, user, ttl: timedelta, data: dict | None = None, actor=None) -> tuple[str, datetime]:
    """A new token for ``user`` that ends after ``ttl``; returns the token and its expiry.

    ``data`` adds to the audit event (e.g. how the user signed in); ``actor`` is who asked
    for it, the user by default."""
    if ttl <= timedelta(0):
        raise ValueError("A token's lifetime must be positive.")
    with transaction.atomic():
        instance, token = AuthToken.objects.create(user=user, expiry=ttl)
        audit_record(
            actor=user if actor is None else actor, action="auth.token_issued", obj=user,
            summary=f"API token issued to {user.get_username()}, valid until "
                    f"{instance.expiry:%Y-%m-%d %H:%M} UTC.",
            data={**(data or {}), "expires_at": instance.expiry},
        )
    return token, instance.expiry


def token_revoke(*, token: AuthToken, actor) -> None:
    """Revoke one token (the one an API logout is sent with)."""
    user = token.user
    with transaction.atomic():
        deleted, _ = AuthToken.objects.filter(pk=token.pk).delete()
        if deleted:
            audit_record(
                actor=actor, action="auth.token_revoked", obj=user,
                summary=f"An API token of {user.get_username()} was revoked by {actor_name(actor)}.",
                data={"reason": "logout", "expires_at": token.expiry},
            )


def tokens_revoke_all(*, user, reason: str, actor=None) -> int:
    """Revoke every token of ``user``; returns how many there were. Audited when there were any."""
    with transaction.atomic():
        revoked, _ = AuthToken.objects.filter(user=user).delete()
        if revoked:
            audit_record(
                actor=actor if actor is not None else user, action="auth.tokens_revoked", obj=user,
                summary=f"All {revoked} API token(s) of {user.get_username()} revoked ({reason.replace('_', ' ')}).",
                data={"reason": reason, "count": revoked},
            )
    return revoked


def tokens_purge_expired(*, now: datetime | None = None) -> int:
    """Delete tokens past their expiry (they no longer authenticate anyway)."""
    deleted, _ = AuthToken.objects.filter(expiry__lt=now or timezone.now()).delete()
    return deleted
