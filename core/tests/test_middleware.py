"""Pages need a role (RoleRequiredMiddleware): no role, or a collector account, is 403 on every
page; and the security headers every response carries (SecurityHeadersMiddleware, django-csp)."""

from datetime import timedelta

import pytest
from django.contrib.auth.models import Group
from django.urls import reverse
from rest_framework.test import APIClient

from core.middleware import COLLECTOR_MESSAGE, NO_ROLE_MESSAGE
from core.models import AuditEvent
from core.roles import COLLECTOR, ROLES, role_of
from core.tests.factories import UserFactory
from core.tokens import token_issue

pytestmark = pytest.mark.django_db
PASSWORD = "pw-for-tests-1"
PAGES = ["dashboard", "license-list", "machine-list", "keypack-list", "transfer-list", "reissuerequest-list",
         "audit-list", "csccontact-list", "reports", "transfer-new", "machine-new", "import-upload"]


@pytest.fixture
def no_role(db):
    return UserFactory(username="norole")


@pytest.fixture
def collector(db):
    return UserFactory(username="tsls-hq-collector", role=COLLECTOR)


@pytest.mark.parametrize("name", PAGES)
def test_a_user_without_a_role_gets_403_on_every_page(client, no_role, name):
    client.force_login(no_role)
    response = client.get(reverse(name))
    assert response.status_code == 403
    assert NO_ROLE_MESSAGE.encode() in response.content


@pytest.mark.parametrize("url", ["/licenses/1/", "/audit/?sort=sequence", "/api/v1/docs/", "/admin/"])
def test_no_role_is_403_on_detail_pages_docs_and_admin_too(client, no_role, url):
    no_role.is_staff = True
    no_role.save()
    client.force_login(no_role)
    assert client.get(url).status_code == 403


@pytest.mark.parametrize("name", PAGES)
def test_a_collector_gets_403_on_every_page(client, collector, name):
    client.force_login(collector)
    response = client.get(reverse(name))
    assert response.status_code == 403
    assert b"collector account" in response.content


def test_without_a_role_one_can_still_sign_out_and_reach_the_open_pages(client, no_role):
    client.force_login(no_role)
    assert client.get("/healthz").status_code == 200
    assert client.get("/static/portal/portal.css").status_code == 200
    assert client.post(reverse("logout")).status_code == 302
    assert client.get(reverse("login")).status_code == 200


def test_the_api_still_refuses_them_as_before(no_role, collector):
    for user in (no_role, collector):
        token, _ = token_issue(user=user, ttl=timedelta(hours=1))
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
        for url in ("/api/v1/licenses/", "/api/v1/audit-events/", "/api/v1/reports/licenses.csv"):
            response = client.get(url)
            assert response.status_code == 403, (user, url)
            assert "detail" in response.json()
        assert client.get("/api/v1/schema/").status_code == 403
        assert client.post("/api/v1/machines/", {"hostname": "x", "os_edition": "windows_7"},
                           format="json").status_code == 403


def test_a_collector_may_take_only_the_actions_a_view_names():
    from core.permissions import RolePermission

    collector = UserFactory(username="c1", role=COLLECTOR)

    class Request:
        user = collector
        method = "POST"

    class ImportView:
        action = "create"
        collector_actions = ("create", "retrieve")

    class OtherView:
        action = "create"

    assert RolePermission().has_permission(Request, ImportView)
    assert not RolePermission().has_permission(Request, OtherView)
    Request.method = "GET"
    ImportView.action = "list"
    assert not RolePermission().has_permission(Request, ImportView), "not even reads it is not given"


def test_the_login_page_refuses_a_collector_with_the_reason(client, collector):
    response = client.post(reverse("login"), {"username": "tsls-hq-collector", "password": PASSWORD})
    assert response.status_code == 200
    assert COLLECTOR_MESSAGE.replace("'", "&#x27;").encode() in response.content
    assert "_auth_user_id" not in client.session
    assert not AuditEvent.objects.filter(action="auth.login").exists()


def test_a_collector_stays_a_collector_whatever_else_it_is_in(collector):
    collector.groups.add(Group.objects.get(name="admin"))
    collector._portal_group_names = None
    assert role_of(collector) == COLLECTOR


def test_the_collector_group_exists_with_no_permission():
    group = Group.objects.get(name=COLLECTOR)
    assert group.permissions.count() == 0
    assert COLLECTOR not in ROLES


# --- Headers ------------------------------------------------------------------------------------


def test_pages_carry_the_content_security_policy(client, admin_user):
    client.force_login(admin_user)
    policy = client.get(reverse("dashboard"))["Content-Security-Policy"]
    directives = dict(part.strip().split(" ", 1) for part in policy.split(";"))
    assert directives["default-src"] == "'self'"
    assert directives["script-src"] == "'self'" and directives["style-src"] == "'self'"
    assert directives["frame-ancestors"] == "'none'" and directives["object-src"] == "'none'"
    assert "unsafe" not in policy


@pytest.mark.parametrize("url", ["/", "/licenses/", "/api/v1/licenses/", "/accounts/login/", "/healthz"])
def test_every_response_says_no_store_and_denies_browser_features(client, admin_user, url):
    client.force_login(admin_user)
    response = client.get(url)
    assert "no-store" in response["Cache-Control"]
    policy = response["Permissions-Policy"]
    for feature in ("camera", "microphone", "geolocation", "payment", "usb"):
        assert f"{feature}=()" in policy


def test_api_answers_to_token_users_are_not_stored(admin_user):
    token, _ = token_issue(user=admin_user, ttl=timedelta(hours=1))
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert "no-store" in client.get("/api/v1/licenses/")["Cache-Control"]


def test_the_other_security_headers_stay(client, admin_user):
    client.force_login(admin_user)
    response = client.get(reverse("dashboard"))
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["Cross-Origin-Opener-Policy"] == "same-origin"
