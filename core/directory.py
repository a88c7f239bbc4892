"""Sign-in with Active Directory or another LDAP directory (docs/directory.md).

``directory_settings(os.environ)`` gives ``portal/settings.py`` the authentication backends
and the ``AUTH_LDAP_*`` settings: nothing when ``LDAP_SERVER_URI`` is unset (local accounts
only), else django-axes's lockout check, Django's own backend, so local accounts (the
break-glass admin too) work whether or not the directory answers, then ``DirectoryBackend``.

A directory user signs in with the directory password and gets the role of the strongest role
group they are in (admin, then requester, then auditor) at every sign-in. A refused sign-in
leaves a ``Refusal`` on the request (``sign_in_refusal``) for the login page and the token
endpoint to show.
"""

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

from core.roles import ADMIN, AUDITOR, REQUESTER, ROLES

try:
    import ldap
    import ldap.dn
    from django_auth_ldap.backend import LDAPBackend, ldap_error
    from django_auth_ldap.config import (
        ActiveDirectoryGroupType,
        GroupOfNamesType,
        LDAPGroupQuery,
        LDAPSearch,
        NestedActiveDirectoryGroupType,
        NestedGroupOfNamesType,
    )
except ImportError:  # optional: requirements-ldap.txt
    ldap = None
    LDAPBackend = LDAPGroupQuery = object

logger = logging.getLogger(__name__)

BACKEND = "core.directory.DirectoryBackend"
MODEL_BACKEND = "django.contrib.auth.backends.ModelBackend"
# First, so the lockout (core.signin) covers local and directory accounts alike.
AXES_BACKEND = "axes.backends.AxesStandaloneBackend"
DEFAULT_USER_FILTER = "(sAMAccountName=%(user)s)"
# The filter for Active Directory that leaves out disabled accounts (userAccountControl bit 2).
ACTIVE_DIRECTORY_USER_FILTER = "(&(sAMAccountName=%(user)s)(!(userAccountControl:1.2.840.113556.1.4.803:=2)))"
ROLE_GROUP_VARIABLES = {ADMIN: "LDAP_ADMIN_GROUP_DN", REQUESTER: "LDAP_REQUESTER_GROUP_DN",
                        AUDITOR: "LDAP_AUDITOR_GROUP_DN"}
MISSING_PACKAGE = (
    "LDAP_SERVER_URI is set but django-auth-ldap is not installed: install requirements-ldap.txt "
    "(pip install -r requirements-ldap.txt), which needs the libldap2-dev and libsasl2-dev packages "
    "(apt-get install libldap2-dev libsasl2-dev) to build python-ldap."
)
# The attribute of the request where a refused sign-in leaves its reason, and of the user where
# a directory sign-in leaves what the audit event records.
REFUSAL_ATTRIBUTE = "portal_sign_in_refusal"
AUDIT_ATTRIBUTE = "portal_sign_in"


@dataclass(frozen=True)
class Refusal:
    code: str
    message: str
    # Said only after the directory accepted the password: only the account's holder causes it.
    after_password: bool = False

    def __str__(self) -> str:
        return self.message


NO_ROLE = Refusal(
    "no_role",
    "Your directory account is not in any of the portal's role groups (admin, requester, auditor), "
    "so it cannot sign in. Ask a portal administrator to add you to one.",
    after_password=True,
)
DIRECTORY_UNREACHABLE = Refusal(
    "directory_unreachable",
    "The directory is not reachable, so directory accounts cannot sign in right now. "
    "Please try again later; local accounts still work.",
)
# A disabled account is left out by LDAP_USER_FILTER, so it looks like an unknown user: saying
# more would tell anyone which account names exist.
INVALID_LOGIN = Refusal(
    "invalid_login",
    "Your user name and password did not match, or your directory account is disabled. Please try again.",
)
INACTIVE = Refusal("inactive", "This account is deactivated in the portal.", after_password=True)


def sign_in_refusal(request) -> Refusal | None:
    """Why the directory refused the last sign-in on this request, if it took part."""
    return getattr(request, REFUSAL_ATTRIBUTE, None)


def _flag(env: Mapping[str, str], name: str) -> bool:
    value = env.get(name, "").strip().lower()
    if value in ("", "0", "false", "no", "off"):
        return False
    if value in ("1", "true", "yes", "on"):
        return True
    raise ImproperlyConfigured(f"{name} must be 1 or 0, not {value!r}.")


def _common_suffix(dns: list[str]) -> str:
    """The longest DN every one of ``dns`` lies under (where to look for the role groups)."""
    split = [[part.strip() for part in ldap.dn.explode_dn(dn)] for dn in dns]
    common = []
    for parts in zip(*(list(reversed(parts)) for parts in split), strict=False):
        if len({part.lower() for part in parts}) != 1:
            break
        common.append(parts[0])
    return ",".join(reversed(common))


def _group_type(name: str):
    """The group type and the filter that finds groups of that type."""
    types = {
        "groupOfNames": (GroupOfNamesType, "(objectClass=groupOfNames)"),
        "nestedGroupOfNames": (NestedGroupOfNamesType, "(objectClass=groupOfNames)"),
        "activeDirectory": (ActiveDirectoryGroupType, "(objectClass=group)"),
        "nestedActiveDirectory": (NestedActiveDirectoryGroupType, "(objectClass=group)"),
    }
    if name not in types:
        raise ImproperlyConfigured(f"LDAP_GROUP_TYPE must be one of {', '.join(types)}, not {name!r}.")
    group_type, group_filter = types[name]
    return group_type(), group_filter


def directory_settings(env: Mapping[str, str]) -> dict:
    """The ``AUTHENTICATION_BACKENDS`` and ``AUTH_LDAP_*`` settings for the ``LDAP_*`` variables
    of ``env``; empty when ``LDAP_SERVER_URI`` is unset."""
    uri = env.get("LDAP_SERVER_URI", "").strip()
    if not uri:
        return {}
    if ldap is None:
        raise ImproperlyConfigured(MISSING_PACKAGE)
    start_tls = _flag(env, "LDAP_START_TLS")
    if start_tls and uri.lower().startswith("ldaps://"):
        raise ImproperlyConfigured("LDAP_START_TLS is for ldap:// URIs; an ldaps:// URI is encrypted already.")
    search_base = env.get("LDAP_USER_SEARCH_BASE", "").strip()
    if not search_base:
        raise ImproperlyConfigured("LDAP_SERVER_URI is set: LDAP_USER_SEARCH_BASE is needed too.")
    role_groups = {role: env.get(variable, "").strip() for role, variable in ROLE_GROUP_VARIABLES.items()}
    role_groups = {role: dn for role, dn in role_groups.items() if dn}
    if not role_groups:
        names = ", ".join(ROLE_GROUP_VARIABLES.values())
        raise ImproperlyConfigured(f"LDAP_SERVER_URI is set but no role group is: set at least one of {names}.")
    timeout = int(env.get("LDAP_TIMEOUT_SECONDS", "") or 5)
    # A dropped connection fails within the timeout instead of hanging the request; referrals
    # are off as Active Directory needs.
    options = {ldap.OPT_REFERRALS: 0, ldap.OPT_NETWORK_TIMEOUT: timeout, ldap.OPT_TIMEOUT: timeout,
               ldap.OPT_X_TLS_REQUIRE_CERT: ldap.OPT_X_TLS_DEMAND}
    ca_cert = env.get("LDAP_CA_CERT_FILE", "").strip()
    if ca_cert:
        if not Path(ca_cert).is_file():
            raise ImproperlyConfigured(f"LDAP_CA_CERT_FILE {ca_cert!r} is not a file.")
        options[ldap.OPT_X_TLS_CACERTFILE] = ca_cert
    # Last: makes a TLS context from the options above for this connection alone.
    options[ldap.OPT_X_TLS_NEWCTX] = 0
    group_search_base = env.get("LDAP_GROUP_SEARCH_BASE", "").strip() or _common_suffix(list(role_groups.values()))
    group_type, group_filter = _group_type(env.get("LDAP_GROUP_TYPE", "").strip() or "groupOfNames")
    requirement = RoleGroupsQuery(*(LDAPGroupQuery(dn) for dn in role_groups.values()))
    requirement.connector = RoleGroupsQuery.OR
    return {
        "AUTHENTICATION_BACKENDS": [AXES_BACKEND, MODEL_BACKEND, BACKEND],
        "AUTH_LDAP_SERVER_URI": uri,
        "AUTH_LDAP_START_TLS": start_tls,
        "AUTH_LDAP_CONNECTION_OPTIONS": options,
        "AUTH_LDAP_BIND_DN": env.get("LDAP_BIND_DN", ""),
        "AUTH_LDAP_BIND_PASSWORD": env.get("LDAP_BIND_PASSWORD", ""),
        "AUTH_LDAP_USER_SEARCH": LDAPSearch(
            search_base, ldap.SCOPE_SUBTREE, env.get("LDAP_USER_FILTER", "").strip() or DEFAULT_USER_FILTER
        ),
        "AUTH_LDAP_CACHE_TIMEOUT": 0,  # membership is read afresh at every sign-in
        "AUTH_LDAP_USER_ATTR_MAP": {"first_name": "givenName", "last_name": "sn", "email": "mail"},
        "AUTH_LDAP_GROUP_SEARCH": LDAPSearch(group_search_base, ldap.SCOPE_SUBTREE, group_filter),
        "AUTH_LDAP_GROUP_TYPE": group_type,
        "AUTH_LDAP_REQUIRE_GROUP": requirement,
        "AUTH_LDAP_ROLE_GROUPS": role_groups,
    }


class RoleGroupsQuery(LDAPGroupQuery):
    """The require-group query: in any role group. It is asked only once the directory has
    accepted the password, so a ``False`` here means "right password, no role"."""

    def resolve(self, ldap_user, groups=None):
        result = super().resolve(ldap_user, groups)
        if not result:
            ldap_user.portal_refusal = NO_ROLE
        return result


class DirectoryUnreachable(Exception):
    """The directory did not answer (or TLS with it failed); raised out of django-auth-ldap by
    the ``ldap_error`` receiver, so it is told apart from a wrong password."""


def _directory_error(sender, context, exception, **kwargs):
    if context in ("authenticate", "search_for_user_dn"):
        raise DirectoryUnreachable(exception) from exception


class DirectoryBackend(LDAPBackend):
    """django-auth-ldap with the portal's roles: the role group is set at every sign-in, and a
    refusal says why."""

    default_settings = {"ROLE_GROUPS": {}}

    def authenticate(self, request, username=None, password=None, **kwargs):
        self._refusal = refusal = None
        try:
            user = super().authenticate(request, username=username, password=password, **kwargs)
        except (DirectoryUnreachable, ldap.LDAPError) as error:  # the latter while reading the role
            logger.warning("Directory sign-in of %r failed: the directory at %s is not reachable: %r",
                           username, self.settings.SERVER_URI, error.__cause__ or error)
            user, refusal = None, DIRECTORY_UNREACHABLE
        if user is not None and not user.is_active:
            user, refusal = None, INACTIVE
        if user is None:
            refusal = refusal or self._refusal or INVALID_LOGIN
            if refusal is NO_ROLE and username:
                self._set_role_of(username, None)
            if request is not None:
                setattr(request, REFUSAL_ATTRIBUTE, refusal)
        return user

    def authenticate_ldap_user(self, ldap_user, password):
        user = ldap_user.authenticate(password)
        self._refusal = getattr(ldap_user, "portal_refusal", None)
        if user is None:
            return None
        role = self._role_in_directory(ldap_user)
        if role is None:  # left every role group between the two look-ups
            self._refusal = NO_ROLE
            return None
        self._set_role_of(user.get_username(), role, user=user)
        setattr(user, AUDIT_ATTRIBUTE, {"source": "directory", "role": role})
        return user

    def get_or_build_user(self, username, ldap_user):
        user, built = super().get_or_build_user(username, ldap_user)
        # A local account (one with a password of its own) is never taken over by the directory.
        if not built and user.has_usable_password():
            raise ldap_user.AuthenticationFailed(f"{username} is a local account")
        return user, built

    def _role_in_directory(self, ldap_user) -> str | None:
        groups = self.settings.ROLE_GROUPS
        for role in ROLES:
            if role in groups and LDAPGroupQuery(groups[role]).resolve(ldap_user):
                return role
        return None

    def _set_role_of(self, username: str, role: str | None, *, user=None) -> None:
        """The user's portal role groups become exactly ``role`` (none for ``None``); only
        accounts the directory manages (without a password of their own) are changed."""
        from django.contrib.auth.models import Group
        from django.db import transaction

        if user is None:
            user = self.get_user_model().objects.filter(username__iexact=username).first()
            if user is None or user.has_usable_password():
                return
        with transaction.atomic():
            keep = [group for group in user.groups.all() if group.name not in ROLES]
            user.groups.set(keep + ([Group.objects.get(name=role)] if role else []))
            user.is_staff = role == ADMIN  # admins may use the Django admin too, as local ones do
            user.save(update_fields=["is_staff"])
        user._portal_group_names = None  # core.roles caches the names on the user


if ldap is not None:
    ldap_error.connect(_directory_error, sender=DirectoryBackend, dispatch_uid="core.directory.unreachable")
