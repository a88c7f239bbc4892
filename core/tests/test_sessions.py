"""Sessions end (core.sessions): after PORTAL_SESSION_IDLE_MINUTES without a request and
PORTAL_SESSION_MAX_HOURS after sign-in."""

import time
from datetime import timedelta

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from core.sessions import LAST_SEEN, SIGNED_IN_AT
from core.tokens import token_issue

pytestmark = pytest.mark.django_db
PASSWORD = "pw-for-tests-1"


def shift_session(client, **seconds_ago):
    session = client.session
    now = time.time()
    for key, ago in seconds_ago.items():
        session[key] = now - ago
    session.save()


def test_sign_in_starts_both_clocks(client, admin_user):
    client.post(reverse("login"), {"username": "alice", "password": PASSWORD})
    session = client.session
    assert abs(session[SIGNED_IN_AT] - time.time()) < 60
    assert session[LAST_SEEN] == session[SIGNED_IN_AT]


def test_an_idle_session_ends(client, admin_user, settings):
    settings.PORTAL_SESSION_IDLE_MINUTES = 30
    client.force_login(admin_user)
    shift_session(client, portal_last_seen=29 * 60)
    assert client.get(reverse("dashboard")).status_code == 200, "29 minutes idle is still signed in"
    shift_session(client, portal_last_seen=31 * 60)
    response = client.get(reverse("dashboard"))
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))
    assert "_auth_user_id" not in client.session


def test_activity_keeps_a_session_but_not_past_its_maximum(client, admin_user, settings):
    settings.PORTAL_SESSION_MAX_HOURS = 10
    client.force_login(admin_user)
    shift_session(client, portal_signed_in_at=9 * 3600, portal_last_seen=60)
    assert client.get(reverse("dashboard")).status_code == 200
    assert abs(client.session[LAST_SEEN] - time.time()) < 60, "the request counts as activity"
    shift_session(client, portal_signed_in_at=10 * 3600 + 1, portal_last_seen=1)
    assert client.get(reverse("dashboard")).status_code == 302


def test_an_ended_session_is_refused_by_the_api(client, admin_user):
    client.force_login(admin_user)
    assert client.get("/api/v1/licenses/").status_code == 200
    shift_session(client, portal_last_seen=3 * 3600)
    assert client.get("/api/v1/licenses/").status_code in (401, 403)


def test_last_seen_is_written_at_most_once_a_minute(client, admin_user):
    client.force_login(admin_user)
    shift_session(client, portal_last_seen=10)
    before = client.session[LAST_SEEN]
    client.get(reverse("dashboard"))
    assert client.session[LAST_SEEN] == before


def test_a_session_from_before_the_limits_starts_its_clocks(client, admin_user):
    client.force_login(admin_user)
    session = client.session
    del session[SIGNED_IN_AT], session[LAST_SEEN]
    session.save()
    assert client.get(reverse("dashboard")).status_code == 200
    assert SIGNED_IN_AT in client.session


def test_an_ended_session_leaves_the_api_tokens_alone(client, admin_user):
    token, _ = token_issue(user=admin_user, ttl=timedelta(hours=1))
    client.force_login(admin_user)
    shift_session(client, portal_last_seen=3 * 3600)
    client.get(reverse("dashboard"))
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert api.get("/api/v1/licenses/").status_code == 200


def test_the_session_cookie_ends_with_the_browser_and_the_maximum(settings):
    assert settings.SESSION_EXPIRE_AT_BROWSER_CLOSE
    assert settings.SESSION_COOKIE_AGE == settings.PORTAL_SESSION_MAX_HOURS * 3600
