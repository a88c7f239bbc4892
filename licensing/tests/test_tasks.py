"""Scheduled tasks: expiry of temporary CALs, alerts sent once per object and threshold."""

from datetime import timedelta

import pytest
from django.core import mail
from django.core.management import call_command
from django.utils import timezone

from core.models import AlertRecord, AuditEvent
from licensing import alerts
from licensing.models import License, LicenseStatus
from licensing.services import transfers as tsvc
from licensing.services.licenses import license_issue_permanent, license_issue_temporary
from licensing.services.reissue import reissue_log_call
from licensing.tasks import (
    alert_expiring_temporary_licenses,
    alert_stale_reissue_requests,
    expire_temporary_licenses,
)
from licensing.tests.factories import MachineFactory
from portal.settings import CELERY_BEAT_SCHEDULE

pytestmark = pytest.mark.django_db


def temporary(server, admin_user, machine=None):
    return license_issue_temporary(machine=machine or MachineFactory(), license_server=server,
                                   product_version="windows_server_2003", actor=admin_user)


def test_expire_command_and_task_share_code(admin_user, server, capsys):
    due = temporary(server, admin_user)
    fresh = temporary(server, admin_user)
    License.objects.filter(pk=due.pk).update(expires_at=timezone.now() - timedelta(minutes=1))
    call_command("expire_temporary_licenses")
    assert "1 temporary CAL(s) expired." in capsys.readouterr().out
    assert expire_temporary_licenses.delay().get() == 0  # eager here; idempotent
    due.refresh_from_db()
    fresh.refresh_from_db()
    assert (due.status, fresh.status) == (LicenseStatus.EXPIRED, LicenseStatus.ACTIVE)
    assert AuditEvent.objects.filter(action="license.expired").count() == 1


def test_expiring_alert_is_sent_once(admin_user, second_admin, server, key_pack):
    # A target waiting for its reissue runs on a temporary CAL that ends in 10 days.
    license = license_issue_permanent(machine=MachineFactory(), key_pack=key_pack, actor=admin_user)
    target = MachineFactory(hostname="waiting-pc")
    tsvc.transfer_file(license=license, target_machine=target, reason="r", actor=admin_user)
    soon = temporary(server, admin_user, machine=target)
    License.objects.filter(pk=soon.pk).update(expires_at=timezone.now() + timedelta(days=10))
    temporary(server, admin_user)  # 90 days left: no alert

    assert alert_expiring_temporary_licenses.delay().get() == 1
    assert len(mail.outbox) == 1
    assert "waiting-pc (waiting for a reissue)" in mail.outbox[0].body
    assert mail.outbox[0].to == ["licensing-team@example.com"]
    assert alert_expiring_temporary_licenses.delay().get() == 0
    assert len(mail.outbox) == 1
    assert AlertRecord.objects.filter(kind="temporary_expiring", object_id=str(soon.pk)).count() == 1


def test_stale_call_alert_is_sent_once(admin_user, key_pack):
    reissue_log_call(
        actor=admin_user, called_at=timezone.now() - timedelta(days=31), license_server=key_pack.license_server,
        product_version=key_pack.product_version, license_program="select", quantity_requested=2,
        csc_location="Asia Pacific", csc_phone_number="+61 2 9870 2200",
    )
    reissue_log_call(
        actor=admin_user, called_at=timezone.now() - timedelta(days=3), license_server=key_pack.license_server,
        product_version=key_pack.product_version, license_program="select", quantity_requested=1,
        csc_location="Asia Pacific", csc_phone_number="+61 2 9870 2200",
    )
    assert alert_stale_reissue_requests.delay().get() == 1
    assert alert_stale_reissue_requests.delay().get() == 0
    assert len(mail.outbox) == 1 and "Asia Pacific" in mail.outbox[0].body


def test_failed_mail_leaves_alert_unsent(admin_user, server, monkeypatch):
    soon = temporary(server, admin_user)
    License.objects.filter(pk=soon.pk).update(expires_at=timezone.now() + timedelta(days=2))

    def broken(**kwargs):
        raise ConnectionRefusedError("smtp down")

    monkeypatch.setattr(alerts, "send_mail", broken)
    with pytest.raises(ConnectionRefusedError):
        alerts.alert_expiring_temporary_licenses()
    assert not AlertRecord.objects.exists()  # so the next run tries again


def test_beat_schedule_names_registered_tasks():
    from portal.celery import app

    app.loader.import_default_modules()
    for entry in CELERY_BEAT_SCHEDULE.values():
        assert entry["task"] in app.tasks, entry["task"]
