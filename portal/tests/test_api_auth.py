from datetime import datetime, timedelta

import pytest
from axes.models import AccessAttempt
from django.utils import timezone
from knox.models import AuthToken

from core.models import AuditEvent
from licensing.tests.factories import UserFactory
from portal.tests.api_mixins import api_client

URL = "/api/v1/auth/token/"


@pytest.mark.django_db
def test_token_for_good_credentials(admin_user):
    response = api_client().post(URL, {"username": "alice", "password": "pw-for-tests-1"}, format="json")
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"token", "expires_at"}
    token = body["token"]
    stored = AuthToken.objects.get(user=admin_user)
    assert stored.digest != token and token not in stored.digest, "only a digest of the token is kept"
    expires_at = datetime.fromisoformat(body["expires_at"])
    assert expires_at == stored.expiry
    assert abs(expires_at - (timezone.now() + timedelta(hours=10))) < timedelta(minutes=1)
    event = AuditEvent.objects.get(action="auth.token_issued")
    assert (event.actor, event.object_type, event.object_id) == ("alice", "user", str(admin_user.pk))
    assert token not in str(event.data) and token not in event.summary
    # The token works, and asking again gives a new one; both work.
    client = api_client()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert client.get("/api/v1/licenses/").status_code == 200
    again = api_client().post(URL, {"username": "alice", "password": "pw-for-tests-1"}, format="json")
    assert again.json()["token"] != token
    assert AuthToken.objects.filter(user=admin_user).count() == 2
    assert client.get("/api/v1/licenses/").status_code == 200


@pytest.mark.django_db
@pytest.mark.parametrize(
    "body",
    [
        {"username": "alice", "password": "wrong"},
        {"username": "nobody", "password": "pw-for-tests-1"},
    ],
)
def test_bad_credentials_are_400_and_counted_toward_the_lockout(admin_user, body):
    response = api_client().post(URL, body, format="json")
    assert response.status_code == 400
    assert "non_field_errors" in response.json()
    assert not AuthToken.objects.exists()
    # Counted by django-axes for this name and address, not chained one by one (core.signin).
    attempt = AccessAttempt.objects.get()
    assert (attempt.username, attempt.ip_address, attempt.failures_since_start) == (body["username"], "127.0.0.1", 1)
    assert body["password"] not in attempt.get_data + attempt.post_data
    assert not AuditEvent.objects.filter(action="auth.login_failed").exists()


@pytest.mark.django_db
@pytest.mark.parametrize("body", [{}, {"username": "alice"}, [], "alice", {"username": "a\x00", "password": "x"}])
def test_malformed_bodies_are_400(admin_user, body):
    response = api_client().post(URL, body, format="json")
    assert response.status_code == 400
    assert not AuditEvent.objects.filter(action="auth.token_issued").exists()


@pytest.mark.django_db
def test_inactive_user_gets_no_token():
    UserFactory(username="gone", role="admin", is_active=False)
    response = api_client().post(URL, {"username": "gone", "password": "pw-for-tests-1"}, format="json")
    assert response.status_code == 400


@pytest.mark.django_db
def test_a_bad_token_header_does_not_block_login(admin_user):
    client = api_client()
    client.credentials(HTTP_AUTHORIZATION="Token stale")
    response = client.post(URL, {"username": "alice", "password": "pw-for-tests-1"}, format="json")
    assert response.status_code == 200


@pytest.mark.django_db
def test_session_login_works_for_reads(client, auditor):
    client.force_login(auditor)
    assert client.get("/api/v1/licenses/").status_code == 200


@pytest.mark.django_db
def test_session_writes_need_csrf(auditor, admin_user):
    from django.test import Client

    browser = Client(enforce_csrf_checks=True)
    browser.force_login(admin_user)
    response = browser.post("/api/v1/machines/", {"hostname": "x1", "os_edition": "windows_7"},
                            content_type="application/json")
    assert response.status_code == 403


@pytest.mark.django_db
def test_user_without_role_is_403():
    user = UserFactory(username="norole")
    assert api_client(user).get("/api/v1/licenses/").status_code == 403


@pytest.mark.django_db
def test_browsable_api_renders_for_a_signed_in_browser(client, admin_user, key_pack):
    client.force_login(admin_user)
    for url in ("/api/v1/licenses/", "/api/v1/transfers/", "/api/v1/reissue-requests/", "/api/v1/key-packs/",
                f"/api/v1/key-packs/{key_pack.pk}/", "/api/v1/compliance/", "/api/v1/audit-events/verify/"):
        response = client.get(url, HTTP_ACCEPT="text/html")
        assert response.status_code == 200, url
        assert response["Content-Type"].startswith("text/html")
    # The list's POST form is the input the endpoint takes.
    assert 'name="target_machine"' in client.get("/api/v1/transfers/", HTTP_ACCEPT="text/html").content.decode()


@pytest.mark.django_db
def test_options_describe_the_post_input(admin_user, machine):
    client = api_client(admin_user)
    for url in ("/api/v1/licenses/", "/api/v1/transfers/", "/api/v1/reissue-requests/", "/api/v1/machines/",
                f"/api/v1/machines/{machine.pk}/", "/api/v1/compliance/", "/api/v1/audit-events/"):
        assert client.options(url).status_code == 200, url
    post = client.options("/api/v1/transfers/").json()["actions"]["POST"]
    assert set(post) == {"license", "target_machine", "reason"}
