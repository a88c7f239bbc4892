"""/healthz, production settings, and the add_user command."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from core.models import AuditEvent
from core.roles import role_of
from portal import health

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.django_db


def test_healthz_needs_no_login_and_reports_eager_tasks(client, settings):
    settings.CELERY_BROKER_URL = ""
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok", "broker": "eager"}


def test_healthz_names_what_is_down(client, settings, monkeypatch):
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"  # nothing listens there
    monkeypatch.setattr(health, "_broker_state", lambda: "down")
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["broker"] == "down" and response.json()["down"] == ["broker"]
    monkeypatch.setattr(health, "_database_ok", lambda: False)
    assert client.get("/healthz").json()["down"] == ["database", "broker"]


def test_healthz_checks_a_real_broker(settings):
    url = os.environ.get("CELERY_BROKER_URL")
    if not url:
        pytest.skip("CELERY_BROKER_URL is not set: no broker to check")
    settings.CELERY_BROKER_URL = url
    from portal.celery import app

    app.conf.broker_url = url
    assert health._broker_state() == "ok"


def _manage(*args, env_extra, drop=()):
    env = {k: v for k, v in os.environ.items() if k not in drop and not k.startswith("DJANGO_")}
    env.pop("DATABASE_URL", None)
    env |= {"DJANGO_SETTINGS_MODULE": "portal.settings", **env_extra}
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True)


def test_check_deploy_is_clean_with_production_settings():
    result = _manage(
        "check", "--deploy", "--fail-level", "WARNING",
        env_extra={"DJANGO_SECRET_KEY": "a-long-random-production-secret-" + "x9Q2" * 12,
                   "DJANGO_ALLOWED_HOSTS": "portal.example.com"},
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_production_settings_refuse_to_start_without_a_secret_key():
    result = _manage("check", env_extra={})
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY is required" in result.stderr


def test_add_user_creates_and_updates(monkeypatch, capsys):
    call_command("add_user", "carol", "--role", "auditor", "--password", "a-long-pass-1")
    carol = get_user_model().objects.get(username="carol")
    assert role_of(carol) == "auditor" and carol.check_password("a-long-pass-1")
    monkeypatch.setenv("PORTAL_PASSWORD", "another-pass-2")
    call_command("add_user", "carol", "--role", "admin")
    carol = get_user_model().objects.get(username="carol")
    assert role_of(carol) == "admin" and carol.check_password("another-pass-2") and carol.is_staff
    assert list(AuditEvent.objects.values_list("action", flat=True)) == ["user.created", "user.updated"]
    assert "Updated carol (admin)" in capsys.readouterr().out


def test_add_user_needs_a_password_for_a_new_user(monkeypatch):
    monkeypatch.delenv("PORTAL_PASSWORD", raising=False)
    with pytest.raises(CommandError):
        call_command("add_user", "dave", "--role", "requester")
    assert not get_user_model().objects.filter(username="dave").exists()
    with pytest.raises(CommandError):
        call_command("add_user", "dave", "--role", "superhero", "--password", "x")


@pytest.mark.parametrize(
    "password, says",
    [("1", "too short"), ("12345678901", "entirely numeric"), ("password123", "too common"),
     ("Carol1234", "too similar")],
)
def test_add_user_applies_the_password_validators_and_changes_nothing(password, says):
    with pytest.raises(CommandError, match=says) as refused:
        call_command("add_user", "carol", "--role", "auditor", "--password", password)
    assert "nothing was changed" in str(refused.value)
    assert not get_user_model().objects.filter(username="carol").exists()
    call_command("add_user", "carol", "--role", "auditor", "--password", "a-long-pass-1")
    with pytest.raises(CommandError, match="too short"):
        call_command("add_user", "carol", "--role", "admin", "--password", "1")
    carol = get_user_model().objects.get(username="carol")
    assert role_of(carol) == "auditor" and carol.check_password("a-long-pass-1")
    assert AuditEvent.objects.count() == 1
