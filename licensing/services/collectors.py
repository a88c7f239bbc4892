"""Collector accounts: a license server's own account for pushing its snapshots.

A collector (role ``collector``) is bound to exactly one license server. It may only start
imports of that server through the API (``imports/``); every other page and endpoint is 403
(core.permissions, core.middleware). It has no password: its token comes from
``collector_token`` and lasts days, not hours, because a scheduled task uses it unattended.
"""

from datetime import datetime, timedelta

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import transaction

from core import roles
from core.audit import audit_record
from core.tokens import token_issue, tokens_revoke_all
from core.users import user_save
from licensing.models import CollectorBinding, LicenseServer

MAX_TOKEN_DAYS = 3 * 365


def account_save(*, username: str, role: str, password: str | None = None, email: str = "",
                 license_server: str | None = None):
    """``add_user``: a person's account, or a collector bound to ``license_server`` (a name).
    Returns ``(user, created)``; on any refusal nothing is changed."""
    with transaction.atomic():
        if role != roles.COLLECTOR:
            if license_server:
                raise ValidationError({"license_server": "Only a collector account is bound to a license server."})
            user, created = user_save(username=username, role=role, password=password, email=email)
            CollectorBinding.objects.filter(user=user).delete()  # a former collector is one no longer
            return user, created
        server = None
        if license_server:
            server = LicenseServer.objects.filter(name__iexact=license_server).first()
            if server is None:
                raise ValidationError({"license_server": f"There is no license server named {license_server!r}."})
        existing = CollectorBinding.objects.filter(user__username=username).select_related("license_server").first()
        if server is None and existing is None:
            raise ValidationError({"license_server": "A collector account needs its license server "
                                                     "(--license-server)."})
        server = server or existing.license_server
        user, created = user_save(username=username, role=role, password=password, email=email,
                                  data={"license_server": server.name})
        binding, _ = CollectorBinding.objects.update_or_create(user=user, defaults={"license_server": server})
        if existing is not None and existing.license_server_id != server.pk:
            revoked = tokens_revoke_all(user=user, reason="collector_rebound", actor="system")
            audit_record(
                actor="system", action="collector.rebound", obj=user,
                summary=f"Collector {username} now sends for {server.name} instead of "
                        f"{existing.license_server.name}; its {revoked} token(s) revoked.",
                data={"from": existing.license_server.name, "to": server.name, "tokens_revoked": revoked},
                refs={"license_server": [existing.license_server_id, server.pk]},
            )
    return user, created


def collector_token_issue(*, username: str, days: int = 365) -> tuple[str, datetime, LicenseServer]:
    """A new API token for the collector account ``username``, valid ``days`` days; its earlier
    tokens are revoked in the same transaction. Returns the token, its expiry and the server."""
    if not 1 <= days <= MAX_TOKEN_DAYS:
        raise ValidationError({"days": f"A collector token lasts from 1 to {MAX_TOKEN_DAYS} days."})
    user = get_user_model().objects.filter(username=username).first()
    if user is None:
        raise ValidationError({"username": f"There is no user named {username!r}."})
    if roles.role_of(user) != roles.COLLECTOR:
        raise ValidationError({"username": f"{username} is not a collector account; people get their tokens "
                                           "by signing in (POST /api/v1/auth/token/)."})
    binding = CollectorBinding.objects.filter(user=user).select_related("license_server").first()
    if binding is None:
        raise ValidationError({"username": f"{username} is bound to no license server: "
                                           "add_user --role collector --license-server SERVER."})
    with transaction.atomic():
        tokens_revoke_all(user=user, reason="collector_token", actor="system")
        token, expires_at = token_issue(user=user, ttl=timedelta(days=days), actor="system",
                                        data={"license_server": binding.license_server.name})
    return token, expires_at, binding.license_server


def collector_server_id(user) -> int | None:
    """The license server a collector account pushes for (None for people and unbound accounts)."""
    return CollectorBinding.objects.filter(user=user).values_list("license_server_id", flat=True).first()
