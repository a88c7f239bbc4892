"""Sign-in with a directory (core.directory), against a real OpenLDAP server (core/tests/slapd.py):
roles from group membership at every sign-in, refusals that say why, the directory down, TLS."""

import os
import socket
import time
from datetime import datetime

import pytest
from axes.models import AccessFailureLog
from django.contrib.auth import get_user_model
from django.core.exceptions import ImproperlyConfigured
from django.test import Client
from django.urls import reverse
from django.utils.html import escape
from knox.models import AuthToken
from rest_framework.test import APIClient

import core.directory as directory_module
from core.audit import audit_verify_chain
from core.directory import (
    ACTIVE_DIRECTORY_USER_FILTER,
    AXES_BACKEND,
    DIRECTORY_UNREACHABLE,
    INACTIVE,
    INVALID_LOGIN,
    MODEL_BACKEND,
    NO_ROLE,
    directory_settings,
)
from core.models import AuditEvent
from core.roles import ADMIN, AUDITOR, REQUESTER, ROLES, role_of
from core.tests import slapd as directory_server
from core.tests.factories import UserFactory

HAS_DJANGO_AUTH_LDAP = directory_module.ldap is not None  # django-auth-ldap and python-ldap import
needs_package = pytest.mark.skipif(
    not HAS_DJANGO_AUTH_LDAP,
    reason="django-auth-ldap is not installed (pip install -r requirements-ldap.txt, after "
    "apt-get install libldap2-dev libsasl2-dev)",
)

TOKEN_URL = "/api/v1/auth/token/"
PASSWORD = directory_server.PASSWORD
ENABLED_ONLY = "(&(uid=%(user)s)(!(description=disabled)))"
USERS_BY_ROLE = {ADMIN: "ada", REQUESTER: "rob", AUDITOR: "aud"}


def directory_env(server, **extra) -> dict:
    env = {
        "LDAP_SERVER_URI": server.ldap_uri,
        "LDAP_BIND_DN": directory_server.BIND_DN,
        "LDAP_BIND_PASSWORD": directory_server.BIND_PASSWORD,
        "LDAP_USER_SEARCH_BASE": directory_server.PEOPLE,
        "LDAP_USER_FILTER": ENABLED_ONLY,
        "LDAP_ADMIN_GROUP_DN": directory_server.GROUP_DNS[ADMIN],
        "LDAP_REQUESTER_GROUP_DN": directory_server.GROUP_DNS[REQUESTER],
        "LDAP_AUDITOR_GROUP_DN": directory_server.GROUP_DNS[AUDITOR],
        "LDAP_TIMEOUT_SECONDS": "2",
    }
    return env | extra


def skip_or_fail(reason: str) -> None:
    # CI sets PORTAL_TEST_LDAP_REQUIRED, so a missing install step cannot pass as a skip.
    if os.environ.get("PORTAL_TEST_LDAP_REQUIRED"):
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture(scope="module")
def ldap_server():
    if not HAS_DJANGO_AUTH_LDAP:
        skip_or_fail(needs_package.kwargs["reason"])
    missing = directory_server.missing_tools()
    if missing:
        skip_or_fail(f"no test directory server: {missing}")
    server = directory_server.Slapd()
    yield server
    server.close()


@pytest.fixture
def directory(ldap_server, settings, db):
    """The server with its starting data, and the portal's settings pointed at it; call
    ``directory.configure(...)`` with ``LDAP_*`` variables to change them."""

    class Directory:
        server = ldap_server

        def configure(self, **extra):
            for name, value in directory_settings(directory_env(ldap_server, **extra)).items():
                setattr(settings, name, value)

    ldap_server.reset()
    handle = Directory()
    handle.configure()
    return handle


def page_sign_in(client, username, password=PASSWORD):
    return client.post(reverse("login"), {"username": username, "password": password})


def token_sign_in(username, password=PASSWORD):
    return APIClient().post(TOKEN_URL, {"username": username, "password": password}, format="json")


def portal_user(username):
    return get_user_model().objects.get(username=username)


def role_groups(username) -> set[str]:
    return set(portal_user(username).groups.filter(name__in=ROLES).values_list("name", flat=True))


def assert_refused_on_page(response, refusal):
    assert response.status_code == 200, "a refusal shows the login page again, never an error page"
    assert escape(refusal.message) in response.content.decode()
    assert "_auth_user_id" not in response.wsgi_request.session


def assert_refused_by_token_endpoint(response, refusal):
    assert response.status_code == 400
    assert response.json()["non_field_errors"] == [refusal.message]


# --- The settings helper ---------------------------------------------------------------------


def test_no_server_uri_means_local_accounts_only():
    assert directory_settings({}) == {}
    assert directory_settings({"LDAP_SERVER_URI": " ", "LDAP_BIND_DN": "cn=x"}) == {}


def test_server_uri_without_the_package_says_what_to_install(monkeypatch):
    monkeypatch.setattr(directory_module, "ldap", None)
    with pytest.raises(ImproperlyConfigured) as error:
        directory_settings({"LDAP_SERVER_URI": "ldaps://dc1.example.com"})
    message = str(error.value)
    assert "requirements-ldap.txt" in message and "libldap2-dev" in message and "libsasl2-dev" in message


@needs_package
def test_settings_for_active_directory(tmp_path):
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    import ldap
    from django_auth_ldap.config import LDAPGroupQuery, NestedActiveDirectoryGroupType

    admins, auditors = "CN=Portal Admins,OU=Groups,DC=example,DC=com", "CN=Portal Auditors,OU=Groups,DC=example,DC=com"
    values = directory_settings({
        "LDAP_SERVER_URI": "ldaps://dc1.example.com",
        "LDAP_BIND_DN": "CN=svc-portal,OU=Service Accounts,DC=example,DC=com",
        "LDAP_BIND_PASSWORD": "secret",
        "LDAP_USER_SEARCH_BASE": "OU=Staff,DC=example,DC=com",
        "LDAP_ADMIN_GROUP_DN": admins,
        "LDAP_AUDITOR_GROUP_DN": auditors,
        "LDAP_CA_CERT_FILE": str(ca),
        "LDAP_GROUP_TYPE": "nestedActiveDirectory",
    })
    # The lockout check first, so it covers directory accounts as it covers local ones.
    assert values["AUTHENTICATION_BACKENDS"] == [AXES_BACKEND, MODEL_BACKEND, directory_module.BACKEND]
    assert values["AUTH_LDAP_USER_SEARCH"].filterstr == "(sAMAccountName=%(user)s)"
    assert values["AUTH_LDAP_USER_SEARCH"].scope == ldap.SCOPE_SUBTREE
    assert values["AUTH_LDAP_START_TLS"] is False
    assert values["AUTH_LDAP_GROUP_SEARCH"].base_dn == "OU=Groups,DC=example,DC=com"
    assert isinstance(values["AUTH_LDAP_GROUP_TYPE"], NestedActiveDirectoryGroupType)
    assert values["AUTH_LDAP_ROLE_GROUPS"] == {ADMIN: admins, AUDITOR: auditors}
    requirement = values["AUTH_LDAP_REQUIRE_GROUP"]
    assert requirement.connector == LDAPGroupQuery.OR
    assert [child.children for child in requirement.children] == [[admins], [auditors]]
    options = values["AUTH_LDAP_CONNECTION_OPTIONS"]
    assert options[ldap.OPT_X_TLS_CACERTFILE] == str(ca)
    assert list(options)[-1] == ldap.OPT_X_TLS_NEWCTX, "the TLS context is made after the TLS options"


@needs_package
@pytest.mark.parametrize(
    ("extra", "words"),
    [
        ({"LDAP_USER_SEARCH_BASE": ""}, "LDAP_USER_SEARCH_BASE"),
        ({"LDAP_ADMIN_GROUP_DN": "", "LDAP_REQUESTER_GROUP_DN": "", "LDAP_AUDITOR_GROUP_DN": ""}, "no role group"),
        ({"LDAP_SERVER_URI": "ldaps://dc1.example.com", "LDAP_START_TLS": "1"}, "LDAP_START_TLS"),
        ({"LDAP_START_TLS": "maybe"}, "LDAP_START_TLS"),
        ({"LDAP_CA_CERT_FILE": "/nonexistent/ca.pem"}, "LDAP_CA_CERT_FILE"),
        ({"LDAP_GROUP_TYPE": "posix"}, "LDAP_GROUP_TYPE"),
    ],
)
def test_incomplete_settings_are_refused_at_start(extra, words):
    env = {"LDAP_SERVER_URI": "ldap://dc1.example.com", "LDAP_USER_SEARCH_BASE": "DC=example,DC=com",
           "LDAP_ADMIN_GROUP_DN": "CN=A,DC=example,DC=com"} | extra
    with pytest.raises(ImproperlyConfigured, match=words):
        directory_settings(env)


# --- Against the directory (skipped, with the reason, without slapd or django-auth-ldap) ---------


@pytest.mark.parametrize("role", [ADMIN, REQUESTER, AUDITOR])
def test_each_role_signs_in_on_the_page(directory, client, role):
    uid = USERS_BY_ROLE[role]
    response = page_sign_in(client, uid)
    assert response.status_code == 302 and response["Location"] == reverse("dashboard")
    dashboard = client.get(reverse("dashboard"))
    assert dashboard.status_code == 200
    assert f"role-badge role-{role}" in dashboard.content.decode()
    user = portal_user(uid)
    assert role_groups(uid) == {role}
    assert user.is_staff == (role == ADMIN)
    assert (user.first_name, user.email) == (directory_server.USERS[uid][0], f"{uid}@example.com")
    assert not user.has_usable_password(), "the password stays in the directory"


@pytest.mark.parametrize("role", [ADMIN, REQUESTER, AUDITOR])
def test_each_role_gets_an_api_token(directory, role):
    uid = USERS_BY_ROLE[role]
    response = token_sign_in(uid)
    assert response.status_code == 200
    token = AuthToken.objects.get()
    assert token.user.username == uid and role_of(token.user) == role
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {response.json()['token']}")
    assert api.get("/api/v1/licenses/").status_code == 200
    issued = AuditEvent.objects.get(action="auth.token_issued")
    assert issued.data == {"source": "directory", "role": role, "expires_at": issued.data["expires_at"]}
    assert datetime.fromisoformat(issued.data["expires_at"]) == token.expiry.replace(
        microsecond=token.expiry.microsecond // 1000 * 1000)


def test_a_user_in_no_role_group_is_refused_with_the_reason(directory, client):
    assert_refused_on_page(page_sign_in(client, "nomad"), NO_ROLE)
    assert_refused_by_token_endpoint(token_sign_in("nomad"), NO_ROLE)
    assert not AuthToken.objects.filter(user__username="nomad").exists()
    failed = AuditEvent.objects.filter(action="auth.login_failed").order_by("sequence")
    assert [(event.actor, event.data.get("refusal")) for event in failed] == [("nomad", "no_role")] * 2


def test_a_wrong_password_is_not_told_apart_from_a_missing_role(directory, client):
    # Whether an account has a role is said only to someone who knows its password.
    for uid in ("nomad", "ada", "nobody-at-all"):
        assert_refused_on_page(page_sign_in(client, uid, "wrong-password"), INVALID_LOGIN)
        assert_refused_by_token_endpoint(token_sign_in(uid, "wrong-password"), INVALID_LOGIN)


def test_a_disabled_user_is_refused(directory, client):
    # "dis" is in every role group; only LDAP_USER_FILTER keeps it out, as the
    # userAccountControl filter does on Active Directory.
    assert_refused_on_page(page_sign_in(client, "dis"), INVALID_LOGIN)
    assert_refused_by_token_endpoint(token_sign_in("dis"), INVALID_LOGIN)
    directory.configure(LDAP_USER_FILTER="(uid=%(user)s)")
    assert token_sign_in("dis").status_code == 200, "without the filter the same account gets in"


def test_the_documented_active_directory_filter_refuses_a_disabled_account(directory):
    # The filter of docs/directory.md as is: sAMAccountName, and bit 2 of userAccountControl.
    directory.configure(LDAP_USER_FILTER=ACTIVE_DIRECTORY_USER_FILTER)
    assert token_sign_in("ADA").status_code == 200, "account names are matched without regard to case"
    assert role_groups("ada") == {ADMIN}
    assert_refused_by_token_endpoint(token_sign_in("dis"), INVALID_LOGIN)


def test_moving_a_user_between_groups_changes_the_role_at_the_next_sign_in(directory, client):
    server = directory.server
    first = token_sign_in("rob")
    assert first.status_code == 200 and role_groups("rob") == {REQUESTER}
    old_token = first.json()["token"]

    server.modify(
        f"dn: {directory_server.GROUP_DNS[REQUESTER]}\nchangetype: modify\n"
        f"delete: member\nmember: {directory_server.user_dn('rob')}\n\n"
        f"dn: {directory_server.GROUP_DNS[ADMIN]}\nchangetype: modify\n"
        f"add: member\nmember: {directory_server.user_dn('rob')}\n"
    )
    assert page_sign_in(client, "rob").status_code == 302
    assert role_groups("rob") == {ADMIN} and portal_user("rob").is_staff

    # In the auditor group as well: admin still wins.
    server.set_members(AUDITOR, ["aud", "rob"])
    assert token_sign_in("rob").status_code == 200 and role_groups("rob") == {ADMIN}

    # Out of admin, still an auditor: exactly one role, the one the directory gives now.
    server.set_members(ADMIN, ["ada"])
    assert token_sign_in("rob").status_code == 200
    assert role_groups("rob") == {AUDITOR} and not portal_user("rob").is_staff

    # Out of every role group: refused, and the role the portal had is taken away, so the
    # token issued earlier gets 403 from now on.
    server.set_members(AUDITOR, ["aud"])
    assert_refused_by_token_endpoint(token_sign_in("rob"), NO_ROLE)
    assert role_groups("rob") == set()
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {old_token}")
    assert api.get("/api/v1/licenses/").status_code == 403


def test_a_directory_account_is_locked_out_like_a_local_one(directory, client, settings):
    # Wrong directory passwords count toward the same lockout, page and token endpoint
    # together; then even the right password is refused, without asking the directory.
    for attempt in range(settings.PORTAL_LOGIN_FAILURE_LIMIT - 1):
        signing_in = page_sign_in if attempt % 2 else (lambda _client, uid, pw: token_sign_in(uid, pw))
        assert signing_in(client, "ada", "wrong-password").status_code in (200, 400)  # refused, not locked
    assert page_sign_in(client, "ada", "wrong-password").status_code == 429  # the failure that locks
    assert page_sign_in(Client(), "ada").status_code == 429
    assert token_sign_in("ada").status_code == 429
    assert not get_user_model().objects.filter(username="ada", last_login__isnull=False).exists()
    assert AuditEvent.objects.filter(action="auth.locked_out", actor="ada").count() <= 1


def test_directory_down_local_accounts_work_directory_users_are_told(directory, client, caplog):
    UserFactory(username="break-glass", role=ADMIN)
    assert token_sign_in("ada").status_code == 200  # known to the portal before the outage
    directory.server.stop()

    assert page_sign_in(client, "break-glass", "pw-for-tests-1").status_code == 302
    assert role_of(portal_user("break-glass")) == ADMIN
    assert token_sign_in("break-glass", "pw-for-tests-1").status_code == 200

    started = time.monotonic()
    assert_refused_on_page(page_sign_in(Client(), "ada"), DIRECTORY_UNREACHABLE)
    assert_refused_by_token_endpoint(token_sign_in("ada"), DIRECTORY_UNREACHABLE)
    assert time.monotonic() - started < 5
    assert role_groups("ada") == {ADMIN}, "an outage takes no role away"
    # Anyone can cause this refusal while the directory is down, so it is counted and logged,
    # not chained one by one (core.signin).
    assert not AuditEvent.objects.filter(action="auth.login_failed").exists()
    assert list(AccessFailureLog.objects.values_list("username", flat=True)) == ["ada", "ada"]
    assert caplog.text.count("Failed sign-in as 'ada' from 127.0.0.1 (directory_unreachable)") == 2

    directory.server.start()
    assert token_sign_in("ada").status_code == 200


def test_a_directory_that_never_answers_is_refused_within_the_timeout(directory):
    with socket.socket() as silent:  # accepts connections (the kernel's backlog) but never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        directory.configure(LDAP_SERVER_URI=f"ldap://127.0.0.1:{silent.getsockname()[1]}", LDAP_TIMEOUT_SECONDS="1")
        started = time.monotonic()
        assert_refused_by_token_endpoint(token_sign_in("ada"), DIRECTORY_UNREACHABLE)
        assert time.monotonic() - started < 10


def test_start_tls_with_the_directory_ca(directory):
    directory.configure(LDAP_START_TLS="1", LDAP_CA_CERT_FILE=str(directory.server.ca_cert))
    response = token_sign_in("aud")
    assert response.status_code == 200
    assert role_of(AuthToken.objects.get().user) == AUDITOR


def test_start_tls_with_the_wrong_ca_is_refused(directory, caplog):
    directory.configure(LDAP_START_TLS="1", LDAP_CA_CERT_FILE=str(directory.server.wrong_ca_cert))
    assert_refused_by_token_endpoint(token_sign_in("aud"), DIRECTORY_UNREACHABLE)
    assert "not reachable" in caplog.text, "the server log says what went wrong"


def test_ldaps_with_the_directory_ca(directory):
    directory.configure(LDAP_SERVER_URI=directory.server.ldaps_uri, LDAP_CA_CERT_FILE=str(directory.server.ca_cert))
    assert token_sign_in("ada").status_code == 200
    assert role_groups("ada") == {ADMIN}


def test_ldaps_with_the_wrong_ca_is_refused(directory):
    directory.configure(LDAP_SERVER_URI=directory.server.ldaps_uri,
                        LDAP_CA_CERT_FILE=str(directory.server.wrong_ca_cert))
    assert_refused_by_token_endpoint(token_sign_in("ada"), DIRECTORY_UNREACHABLE)


def test_a_directory_sign_in_is_audited_like_a_local_one_with_the_role(directory, client):
    local = UserFactory(username="local-auditor", role=AUDITOR)
    assert page_sign_in(client, "local-auditor", "pw-for-tests-1").status_code == 302
    assert page_sign_in(Client(), "rob").status_code == 302
    local_event, directory_event = AuditEvent.objects.filter(action="auth.login").order_by("sequence")
    rob = portal_user("rob")
    assert (local_event.actor, local_event.object_type, local_event.object_id) == ("local-auditor", "user",
                                                                                    str(local.pk))
    assert local_event.data == {"ip": "127.0.0.1"}
    assert (directory_event.actor, directory_event.object_type, directory_event.object_id) == ("rob", "user",
                                                                                                str(rob.pk))
    assert directory_event.summary == "rob logged in."
    assert directory_event.data == {"ip": "127.0.0.1", "source": "directory", "role": REQUESTER}
    assert audit_verify_chain().ok


def test_a_local_account_is_not_taken_over_by_the_directory(directory, client):
    # A local "ada" with a password of its own: the directory's "ada" cannot sign in as it,
    # nor change its role.
    UserFactory(username="ada", role=AUDITOR)
    assert_refused_by_token_endpoint(token_sign_in("ada"), INVALID_LOGIN)
    assert role_groups("ada") == {AUDITOR}
    assert token_sign_in("ada", "pw-for-tests-1").status_code == 200


def test_a_directory_user_deactivated_in_the_portal_is_refused(directory):
    assert token_sign_in("ada").status_code == 200
    get_user_model().objects.filter(username="ada").update(is_active=False)
    assert_refused_by_token_endpoint(token_sign_in("ada"), INACTIVE)

