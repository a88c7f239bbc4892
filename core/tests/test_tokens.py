"""API tokens that end (core.tokens, core.api.auth): a lifetime, a new token per sign-in,
revocation by API logout, page logout and password change; collectors refused; throttles."""

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone
from knox.models import AuthToken
from rest_framework.test import APIClient

from core.models import AuditEvent
from core.roles import COLLECTOR
from core.tests.factories import UserFactory
from core.throttles import AnonymousRateThrottle, SignInRateThrottle
from core.tokens import token_issue, tokens_purge_expired, tokens_revoke_all

PASSWORD = "pw-for-tests-1"
TOKEN_URL = "/api/v1/auth/token/"
LOGOUT_URL = "/api/v1/auth/logout/"
READ_URL = "/api/v1/licenses/"
pytestmark = pytest.mark.django_db


def with_token(token) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return client


def sign_in(username="alice", password=PASSWORD):
    return APIClient().post(TOKEN_URL, {"username": username, "password": password}, format="json")


def works(token) -> bool:
    status = with_token(token).get(READ_URL).status_code
    assert status in (200, 401)
    return status == 200


def test_the_lifetime_comes_from_the_settings(admin_user, settings):
    settings.PORTAL_TOKEN_TTL_HOURS = 2
    body = sign_in().json()
    expiry = AuthToken.objects.get().expiry
    assert abs(expiry - (timezone.now() + timedelta(hours=2))) < timedelta(minutes=1)
    assert works(body["token"])


def test_an_expired_token_is_401_and_gone(admin_user):
    token, _ = token_issue(user=admin_user, ttl=timedelta(hours=1))
    AuthToken.objects.update(expiry=timezone.now() - timedelta(seconds=1))
    response = with_token(token).get(READ_URL)
    assert response.status_code == 401 and "detail" in response.json()
    assert not AuthToken.objects.exists()


@pytest.mark.parametrize("header", ["Token", "Token a b", "Token " + "x" * 64, "Token \u00ff\u00fe"])
def test_a_missing_or_bad_token_is_401(admin_user, header):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=header)
    response = client.get(READ_URL)
    assert response.status_code == 401 and "detail" in response.json()


def test_api_logout_revokes_only_the_token_it_is_sent_with(admin_user):
    first, second = sign_in().json()["token"], sign_in().json()["token"]
    response = with_token(first).post(LOGOUT_URL)
    assert response.status_code == 204
    assert not works(first) and works(second)
    event = AuditEvent.objects.get(action="auth.token_revoked")
    assert (event.actor, event.object_id, event.data["reason"]) == ("alice", str(admin_user.pk), "logout")
    assert first not in str(event.data) + event.summary
    assert with_token(first).post(LOGOUT_URL).status_code == 401


def test_api_logout_needs_a_token(client, admin_user):
    assert APIClient().post(LOGOUT_URL).status_code == 401
    client.force_login(admin_user)  # a session has no token to revoke
    assert client.post(LOGOUT_URL).status_code == 401


def test_signing_out_of_the_pages_revokes_every_token(client, admin_user, second_admin):
    mine = [sign_in().json()["token"] for _ in range(2)]
    other = sign_in("bob").json()["token"]
    client.force_login(admin_user)
    assert client.post(reverse("logout")).status_code == 302
    assert not any(works(token) for token in mine)
    assert works(other)
    actions = list(AuditEvent.objects.filter(actor="alice").values_list("action", flat=True).order_by("sequence"))
    assert actions[-2:] == ["auth.logout", "auth.tokens_revoked"]
    assert AuditEvent.objects.get(action="auth.tokens_revoked").data == {"reason": "signed_out", "count": 2}


def test_a_password_change_revokes_every_token(admin_user):
    token = sign_in().json()["token"]
    admin_user.set_password("a-new-password-for-alice")
    admin_user.save()
    assert not works(token)
    event = AuditEvent.objects.get(action="auth.tokens_revoked")
    assert (event.actor, event.data) == ("system", {"reason": "password_changed", "count": 1})


def test_a_password_change_by_add_user_revokes_every_token(admin_user):
    token = sign_in().json()["token"]
    call_command("add_user", "alice", "--role", "admin", "--password", "another-long-pass-2")
    assert not works(token)


def test_a_password_change_in_the_admin_revokes_every_token(client, admin_user):
    root = UserFactory(username="root", is_staff=True, is_superuser=True)
    token = sign_in().json()["token"]
    client.force_login(root)
    response = client.post(f"/admin/auth/user/{admin_user.pk}/password/", {
        "password1": "an-admin-chosen-pass-3", "password2": "an-admin-chosen-pass-3", "usable_password": "true",
    })
    assert response.status_code == 302, response.content
    assert get_user_model().objects.get(pk=admin_user.pk).check_password("an-admin-chosen-pass-3")
    assert not works(token)


def test_saving_a_user_without_a_new_password_keeps_the_tokens(client, admin_user):
    token = sign_in().json()["token"]
    admin_user.email = "alice@example.org"
    admin_user.save()
    client.force_login(admin_user)  # writes last_login
    assert works(token)
    assert not AuditEvent.objects.filter(action="auth.tokens_revoked").exists()


def test_the_service_revokes_all_and_audits_only_what_it_revoked(admin_user):
    assert tokens_revoke_all(user=admin_user, reason="test") == 0
    assert not AuditEvent.objects.filter(action="auth.tokens_revoked").exists()
    token_issue(user=admin_user, ttl=timedelta(days=365))
    token_issue(user=admin_user, ttl=timedelta(hours=1))
    assert tokens_revoke_all(user=admin_user, reason="collector_token", actor="system") == 2
    assert AuditEvent.objects.get(action="auth.tokens_revoked").data == {"reason": "collector_token", "count": 2}


def test_a_token_needs_a_positive_lifetime(admin_user):
    with pytest.raises(ValueError):
        token_issue(user=admin_user, ttl=timedelta(0))
    assert not AuthToken.objects.exists()


def test_expired_tokens_are_purged(admin_user):
    token_issue(user=admin_user, ttl=timedelta(hours=1))
    live, _ = token_issue(user=admin_user, ttl=timedelta(hours=1))
    AuthToken.objects.filter(pk=AuthToken.objects.order_by("created").first().pk).update(
        expiry=timezone.now() - timedelta(minutes=1))
    assert tokens_purge_expired() == 1
    assert works(live)


def test_a_collector_gets_no_token_from_the_endpoint(db):
    UserFactory(username="tsls-hq-collector", role=COLLECTOR)
    response = sign_in("tsls-hq-collector")
    assert response.status_code == 403
    assert "collector_token" in response.json()["detail"]
    assert not AuthToken.objects.exists()


def test_the_token_endpoint_is_throttled_per_address(admin_user, monkeypatch):
    monkeypatch.setattr(SignInRateThrottle, "THROTTLE_RATES", {"sign_in": "3/minute", "anon": "100/minute"})
    monkeypatch.setattr(AnonymousRateThrottle, "THROTTLE_RATES", {"sign_in": "3/minute", "anon": "100/minute"})
    for _ in range(3):
        assert sign_in().status_code == 200
    throttled = sign_in()
    assert throttled.status_code == 429
    assert throttled.json()["detail"].startswith("Request was throttled")
    assert "Retry-After" in throttled.headers
    other = APIClient().post(TOKEN_URL, {"username": "alice", "password": PASSWORD}, format="json",
                             REMOTE_ADDR="198.51.100.3")
    assert other.status_code == 200


def test_anonymous_requests_are_throttled(admin_user, monkeypatch):
    monkeypatch.setattr(AnonymousRateThrottle, "THROTTLE_RATES", {"anon": "2/minute", "sign_in": "100/minute"})
    monkeypatch.setattr(SignInRateThrottle, "THROTTLE_RATES", {"anon": "2/minute", "sign_in": "100/minute"})
    assert sign_in("nobody", "x").status_code == 400
    assert sign_in("nobody", "x").status_code == 400
    assert sign_in("nobody", "x").status_code == 429
    # Signed-in users are not held by the anonymous rate.
    token, _ = token_issue(user=admin_user, ttl=timedelta(hours=1))
    for _ in range(4):
        assert works(token)
