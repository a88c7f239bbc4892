"""Sign-in that resists guessing (core.signin): the lockout per user name and address on the
login page and the token endpoint, unlock_user, the client address behind trusted proxies,
and what the audit trail keeps of failures (a bounded number of events)."""

import threading
from datetime import timedelta

import pytest
from axes.models import AccessAttempt, AccessFailureLog
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import Client, RequestFactory
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from core.audit import audit_verify_chain
from core.models import AuditEvent
from core.network import client_address, trusted_proxies
from core.signin import locked_out_message, sign_in_failures_summarise
from core.tests.factories import UserFactory

PASSWORD = "pw-for-tests-1"
TOKEN_URL = "/api/v1/auth/token/"
pytestmark = pytest.mark.django_db


def page_sign_in(client, username, password, address="192.0.2.10"):
    return client.post(reverse("login"), {"username": username, "password": password}, REMOTE_ADDR=address)


def token_sign_in(username, password, address="192.0.2.10"):
    return APIClient().post(TOKEN_URL, {"username": username, "password": password}, format="json",
                            REMOTE_ADDR=address)


def chained(action):
    return list(AuditEvent.objects.filter(action=action).order_by("sequence"))


def test_five_failures_lock_the_page_even_with_the_right_password(client, admin_user):
    for _ in range(4):
        response = page_sign_in(client, "alice", "wrong")
        assert response.status_code == 200 and b"did not match" in response.content
    fifth = page_sign_in(client, "alice", "wrong")
    assert fifth.status_code == 429
    assert locked_out_message().encode() in fifth.content.replace(b"&#x27;", b"'")
    right = page_sign_in(client, "alice", PASSWORD)
    assert right.status_code == 429, "the right password does not end a lockout"
    assert b"locked" in right.content
    assert "_auth_user_id" not in client.session


def test_the_lockout_is_per_user_name_and_address(client, admin_user, second_admin):
    for _ in range(5):
        page_sign_in(client, "alice", "wrong")
    assert page_sign_in(Client(), "alice", PASSWORD, address="192.0.2.10").status_code == 429
    # Another address, or another user name from the same address, is not locked.
    assert page_sign_in(Client(), "alice", PASSWORD, address="198.51.100.7").status_code == 302
    assert page_sign_in(Client(), "bob", PASSWORD, address="192.0.2.10").status_code == 302
    # Upper case is the same name (directory accounts match without regard to case).
    assert page_sign_in(Client(), "ALICE", "wrong").status_code == 429


def test_the_token_endpoint_locks_out_with_429_and_a_detail(admin_user):
    for _ in range(4):
        assert token_sign_in("alice", "wrong").status_code == 400
    locked = token_sign_in("alice", "wrong")
    assert locked.status_code == 429
    assert locked.json() == {"detail": locked_out_message()}
    right = token_sign_in("alice", PASSWORD)
    assert right.status_code == 429 and right.json() == {"detail": locked_out_message()}
    assert "token" not in right.json()


def test_page_and_token_failures_count_together(client, admin_user):
    for _ in range(3):
        page_sign_in(client, "alice", "wrong")
    for _ in range(2):
        token_sign_in("alice", "wrong")
    assert page_sign_in(Client(), "alice", PASSWORD).status_code == 429
    assert token_sign_in("alice", PASSWORD).status_code == 429


def test_the_lockout_ends_after_its_minutes(client, admin_user, settings):
    for _ in range(5):
        page_sign_in(client, "alice", "wrong")
    assert page_sign_in(Client(), "alice", PASSWORD).status_code == 429
    AccessAttempt.objects.update(attempt_time=timezone.now() - settings.AXES_COOLOFF_TIME - timedelta(seconds=1))
    assert page_sign_in(Client(), "alice", PASSWORD).status_code == 302


def test_the_limit_and_minutes_come_from_the_settings(client, admin_user, settings):
    settings.AXES_FAILURE_LIMIT = 2
    settings.AXES_COOLOFF_TIME = timedelta(minutes=3)
    page_sign_in(client, "alice", "wrong")
    response = page_sign_in(client, "alice", "wrong")
    assert response.status_code == 429
    assert b"locked for 3 minutes" in response.content


def test_a_success_forgets_the_earlier_failures(client, admin_user):
    for _ in range(4):
        page_sign_in(client, "alice", "wrong")
    assert token_sign_in("alice", PASSWORD).status_code == 200
    for _ in range(4):
        page_sign_in(Client(), "alice", "wrong")
    assert page_sign_in(Client(), "alice", PASSWORD).status_code == 302


def test_unlock_user_ends_the_lockout_and_is_audited(client, admin_user, capsys):
    for _ in range(5):
        page_sign_in(client, "alice", "wrong", address="192.0.2.10")
        page_sign_in(client, "alice", "wrong", address="198.51.100.7")
    call_command("unlock_user", "Alice")
    assert "Unlocked Alice" in capsys.readouterr().out
    assert page_sign_in(Client(), "alice", PASSWORD).status_code == 302
    event = AuditEvent.objects.get(action="auth.unlocked")
    assert (event.actor, event.object_id) == ("system", str(admin_user.pk))
    assert event.data == {"username": "alice", "addresses": ["192.0.2.10", "198.51.100.7"]}


def test_unlock_user_without_a_lockout_is_a_clear_error_that_changes_nothing(admin_user):
    before = AuditEvent.objects.count()
    with pytest.raises(CommandError, match="nothing to unlock"):
        call_command("unlock_user", "alice")
    with pytest.raises(CommandError, match="Give the user name"):
        call_command("unlock_user", " ")
    assert AuditEvent.objects.count() == before


# --- What the audit trail keeps -----------------------------------------------------------


def test_failures_are_not_chained_one_by_one_and_a_lockout_is_chained_once(client, admin_user):
    for address in ("192.0.2.10", "192.0.2.11", "192.0.2.12"):
        for _ in range(8):  # past the limit from three addresses
            page_sign_in(client, "alice", "wrong", address=address)
            token_sign_in("alice", "wrong", address=address)
    assert not chained("auth.login_failed")
    [lockout] = chained("auth.locked_out")
    assert (lockout.actor, lockout.object_type, lockout.object_id) == ("alice", "user", str(admin_user.pk))
    assert lockout.data == {"ip": "192.0.2.10", "failures": 5, "minutes": 15}
    assert AuditEvent.objects.count() == 1
    # Every failure that was checked is in django-axes's own record.
    assert AccessFailureLog.objects.filter(username="alice").count() == 3 * 5
    assert audit_verify_chain().ok


def test_made_up_names_add_nothing_to_the_chain(client, db):
    for n in range(30):
        for _ in range(5):
            token_sign_in(f"guess-{n}", "wrong", address=f"192.0.2.{n}")
    assert AuditEvent.objects.count() == 0
    assert AccessAttempt.objects.count() == 30


def test_after_an_unlock_the_next_lockout_is_chained_again(client, admin_user):
    for _ in range(5):
        page_sign_in(client, "alice", "wrong")
    call_command("unlock_user", "alice")
    for _ in range(5):
        page_sign_in(client, "alice", "wrong")
    assert [e.action for e in AuditEvent.objects.order_by("sequence")] == [
        "auth.locked_out", "auth.unlocked", "auth.locked_out"]


def test_the_hourly_summary_is_one_bounded_event(client, admin_user):
    for n in range(25):
        token_sign_in(f"guess-{n}", "wrong", address=f"198.51.100.{n}")
    for _ in range(5):
        page_sign_in(client, "alice", "wrong")
    event = sign_in_failures_summarise()
    assert event.action == "auth.sign_in_failures" and event.actor == "system"
    data = event.data
    assert (data["failures"], data["lockouts"], data["usernames"], data["addresses"]) == (30, 1, 26, 26)
    assert data["top_usernames"][0] == ["alice", 5]
    assert len(data["top_usernames"]) == len(data["top_addresses"]) == 10
    # The next summary counts only what came after; none when nothing did.
    assert sign_in_failures_summarise() is None
    token_sign_in("bob", "wrong")
    assert sign_in_failures_summarise().data["failures"] == 1
    assert audit_verify_chain().ok


def test_the_summary_deletes_failure_records_past_their_retention(admin_user):
    token_sign_in("alice", "wrong")
    AccessFailureLog.objects.update(attempt_time=timezone.now() - timedelta(days=31))
    sign_in_failures_summarise()
    assert not AccessFailureLog.objects.exists()


def test_a_right_password_after_the_lockout_is_audited_as_a_login(client, admin_user):
    page_sign_in(client, "alice", "wrong")
    assert page_sign_in(client, "alice", PASSWORD).status_code == 302
    assert [e.action for e in AuditEvent.objects.all()] == ["auth.login"]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_failures_lock_out_and_chain_one_event(admin_user):
    if connection.vendor != "postgresql":
        pytest.skip("row locks need PostgreSQL")
    results = []

    def guess():
        try:
            results.append(token_sign_in("alice", "wrong").status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=guess) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(set(results)) <= [400, 429] and 429 in results
    assert token_sign_in("alice", PASSWORD).status_code == 429
    assert len(chained("auth.locked_out")) == 1
    assert not chained("auth.login_failed")
    assert audit_verify_chain().ok


# --- The client's address -------------------------------------------------------------------


@pytest.mark.parametrize(
    "proxies, remote, forwarded, expected",
    [
        ("", "203.0.113.9", "198.51.100.1", "203.0.113.9"),  # no trusted proxy: the header is ignored
        ("10.0.0.5", "203.0.113.9", "198.51.100.1", "203.0.113.9"),  # not from the proxy: ignored
        ("10.0.0.5", "10.0.0.5", "198.51.100.1", "198.51.100.1"),
        ("10.0.0.5", "10.0.0.5", "6.6.6.6, 198.51.100.1", "198.51.100.1"),  # a forged left part is skipped
        ("10.0.0.0/8", "10.0.0.5", "198.51.100.1, 10.0.0.9", "198.51.100.1"),  # two proxies
        ("10.0.0.5", "10.0.0.5", "not-an-address", "10.0.0.5"),
        ("10.0.0.5", "10.0.0.5", "", "10.0.0.5"),
        ("2001:db8::/32", "2001:db8::1", "2001:db8::2, 2001:db8::3", "2001:db8::2"),
    ],
)
def test_the_client_address_is_read_behind_trusted_proxies_only(settings, proxies, remote, forwarded, expected):
    settings.PORTAL_TRUSTED_PROXIES = trusted_proxies(proxies)
    request = RequestFactory().get("/", REMOTE_ADDR=remote, HTTP_X_FORWARDED_FOR=forwarded)
    assert client_address(request) == expected


def test_a_bad_trusted_proxy_setting_is_refused_at_start():
    from django.core.exceptions import ImproperlyConfigured

    with pytest.raises(ImproperlyConfigured, match="PORTAL_TRUSTED_PROXIES"):
        trusted_proxies("10.0.0.5, proxy.example.com")


def test_a_forged_forwarded_for_does_not_escape_the_lockout(client, admin_user):
    for n in range(5):
        client.post(reverse("login"), {"username": "alice", "password": "wrong"}, REMOTE_ADDR="192.0.2.10",
                    HTTP_X_FORWARDED_FOR=f"203.0.113.{n}")
    assert page_sign_in(Client(), "alice", PASSWORD, address="192.0.2.10").status_code == 429


def test_behind_a_trusted_proxy_each_client_is_locked_out_on_its_own(client, admin_user, settings):
    settings.PORTAL_TRUSTED_PROXIES = trusted_proxies("10.0.0.5")
    for _ in range(5):
        client.post(reverse("login"), {"username": "alice", "password": "wrong"}, REMOTE_ADDR="10.0.0.5",
                    HTTP_X_FORWARDED_FOR="198.51.100.20")
    assert AccessAttempt.objects.get().ip_address == "198.51.100.20"
    other = Client().post(reverse("login"), {"username": "alice", "password": PASSWORD}, REMOTE_ADDR="10.0.0.5",
                          HTTP_X_FORWARDED_FOR="198.51.100.21")
    assert other.status_code == 302


def test_directory_accounts_are_behind_the_same_lockout(settings):
    from core.directory import AXES_BACKEND

    assert settings.AUTHENTICATION_BACKENDS[0] == AXES_BACKEND


def test_an_inactive_account_locks_out_like_any_other(client):
    UserFactory(username="gone", role="admin", is_active=False)
    for _ in range(5):
        page_sign_in(client, "gone", PASSWORD)
    assert page_sign_in(Client(), "gone", PASSWORD).status_code == 429


def test_the_admin_login_page_is_behind_the_same_lockout(client, admin_user):
    admin_user.is_staff = True
    admin_user.save()
    for _ in range(5):
        client.post("/admin/login/", {"username": "alice", "password": "wrong"}, REMOTE_ADDR="192.0.2.10")
    response = Client().post("/admin/login/", {"username": "alice", "password": PASSWORD}, REMOTE_ADDR="192.0.2.10")
    assert response.status_code == 429
    assert locked_out_message() in response.content.decode()
