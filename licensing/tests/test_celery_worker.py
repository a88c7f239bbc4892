"""A real Celery worker against the Redis broker: a task enqueued on commit runs there."""

import os
import subprocess
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from core.models import AuditEvent
from licensing.models import LicenseStatus
from licensing.tasks import expire_temporary_licenses
from licensing.tests.factories import LicenseFactory, LicenseServerFactory
from portal.celery import app

pytestmark = [pytest.mark.celery_worker, pytest.mark.django_db(transaction=True)]
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def worker():
    broker = os.environ.get("CELERY_BROKER_URL")
    if not broker:
        pytest.skip("CELERY_BROKER_URL is not set: no broker to start a worker against")
    if connection.vendor == "sqlite":
        pytest.skip("the worker needs a database server it can share with the test (PostgreSQL)")
    queue = f"portal-test-{uuid.uuid4().hex[:8]}"
    db = connection.settings_dict
    env = os.environ | {
        "DJANGO_SETTINGS_MODULE": "portal.test_settings",
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "CELERY_BROKER_URL": broker,
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "portal", "worker", "--pool=solo", "-Q", queue,
         "--without-gossip", "--without-mingle", "--without-heartbeat", "-l", "info"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    previous = app.conf.task_always_eager
    app.conf.task_always_eager = False
    app.conf.broker_url = broker
    try:
        yield queue
    finally:
        app.conf.task_always_eager = previous
        process.terminate()
        try:
            output, _ = process.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            output, _ = process.communicate()
        print(output[-3000:])


def test_task_enqueued_on_commit_runs_in_the_worker(worker):
    assert settings.CELERY_TASK_ALWAYS_EAGER  # the rest of the suite is eager; this test is not
    server = LicenseServerFactory()
    issued = timezone.now() - timedelta(days=100)
    with transaction.atomic():
        temporary = LicenseFactory(
            kind="temporary", key_pack=None, license_server=server, product_version="windows_server_2003",
            issued_at=issued,
            expires_at=issued + timedelta(days=90),
        )
        transaction.on_commit(lambda: expire_temporary_licenses.apply_async(queue=worker))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        temporary.refresh_from_db()
        if temporary.status == LicenseStatus.EXPIRED:
            break
        time.sleep(0.25)
    assert temporary.status == LicenseStatus.EXPIRED
    event = AuditEvent.objects.get(action="license.expired")
    assert event.actor == "system" and event.object_id == str(temporary.pk)
