"""Portal accounts: creating one or changing its role and password (``add_user``).

A person's account has one role (admin, requester or auditor) and a password the validators
of AUTH_PASSWORD_VALIDATORS accept. A collector account (role ``collector``) is not a person:
it never signs in with a password (its password is unusable) and gets its API token from
``collector_token``; its license server is bound in ``licensing.services.collectors``.
"""

from django.contrib.auth import get_user_model, password_validation
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.db import transaction

from core.audit import audit_record
from core.roles import COLLECTOR, ROLES

ALL_ROLES = (*ROLES, COLLECTOR)


def user_save(*, username: str, role: str, password: str | None = None, email: str = "", data: dict | None = None):
    """Create the user or update it; returns ``(user, created)``. Audited as user.created or
    user.updated (``data`` adds to the event). Raises ValidationError, having changed nothing,
    for an unknown role, a refused password, or a new person without a password."""
    if role not in ALL_ROLES:
        raise ValidationError({"role": f"Unknown role {role!r}: one of {', '.join(ALL_ROLES)}."})
    User = get_user_model()
    if role == COLLECTOR and password:
        raise ValidationError({"password": "A collector account has no password: it sends with a token "
                                           "(collector_token)."})
    with transaction.atomic():
        user = User.objects.select_for_update().filter(username=username).first()
        created = user is None
        if created:
            user = User(username=username)
        if email:
            user.email = email
        if password:
            try:
                password_validation.validate_password(password, user=user)
            except ValidationError as exc:
                raise ValidationError({"password": exc.messages}) from exc
            user.set_password(password)
        elif role == COLLECTOR and (created or user.has_usable_password()):
            user.set_unusable_password()  # once: a new unusable one would revoke its token
        elif created:
            raise ValidationError({"password": "A new user needs a password."})
        user.is_staff = role == "admin"  # admins may use the Django admin too
        user.save()
        user.groups.set([Group.objects.get(name=role)])
        audit_record(
            actor="system", action="user.created" if created else "user.updated", obj=user,
            summary=f"User {username} {'created' if created else 'updated'} with role {role}.",
            data={"role": role, "password_changed": bool(password), **(data or {})},
        )
    return user, created
