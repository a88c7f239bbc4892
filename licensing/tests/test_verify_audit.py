"""The hash chain notices a tampered, a deleted and a reordered event; ``verify_audit``
exits 1 naming the first event that does not verify, and the daily task alerts."""

import pytest
from django.core import mail
from django.core.management import execute_from_command_line
from django.db import connection

from core.audit import audit_verify_chain
from core.models import AuditEvent
from core.tasks import verify_audit_chain
from licensing.services.servers import csc_contact_create


@pytest.fixture
def chain(admin_user):
    for i in range(5):
        csc_contact_create(actor=admin_user, location=f"Site {i}", phone_number=f"1-800-555-010{i}")
    assert AuditEvent.objects.count() == 5


def tamper(sql: str, params=()) -> None:
    """Change the table behind the application's back (the trigger is off for this test only)."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("ALTER TABLE licensing_auditevent DISABLE TRIGGER USER")
        cursor.execute(sql, params)


def run_command(capsys) -> tuple[int, str]:
    try:
        execute_from_command_line(["manage.py", "verify_audit"])
        code = 0
    except SystemExit as exit_:
        code = exit_.code
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def test_intact_chain_exits_0_and_counts_the_events(chain, capsys):
    code, output = run_command(capsys)
    assert code == 0
    assert "5 events" in output


def test_empty_trail_verifies(db, capsys):
    code, output = run_command(capsys)
    assert (code, "0 events" in output) == (0, True)


def test_tampered_row_is_named(chain, capsys):
    tamper("UPDATE licensing_auditevent SET summary = %s WHERE sequence = 3", ["CSC contact Elsewhere added."])
    result = audit_verify_chain()
    assert (result.ok, result.first_bad_sequence) == (False, 3)
    assert "altered" in result.reason
    code, output = run_command(capsys)
    assert code == 1
    assert "#3" in output


def test_tampered_data_field_is_caught(chain):
    tamper("UPDATE licensing_auditevent SET actor = 'mallory' WHERE sequence = 4")
    assert audit_verify_chain().first_bad_sequence == 4


def test_deleted_row_is_named(chain, capsys):
    tamper("DELETE FROM licensing_auditevent WHERE sequence = 2")
    result = audit_verify_chain()
    assert (result.ok, result.first_bad_sequence) == (False, 2)
    assert "missing" in result.reason
    code, output = run_command(capsys)
    assert code == 1
    assert "#2" in output


def test_deleted_last_row_is_caught_by_the_head(chain):
    tamper("DELETE FROM licensing_auditevent WHERE sequence = 5")
    result = audit_verify_chain()
    assert (result.ok, result.first_bad_sequence) == (False, 5)


def test_reordered_chain_is_named(chain, capsys):
    # Swap events 2 and 3 (through a free number: sequence is unique).
    tamper("UPDATE licensing_auditevent SET sequence = 1000 WHERE sequence = 2")
    tamper("UPDATE licensing_auditevent SET sequence = 2 WHERE sequence = 3")
    tamper("UPDATE licensing_auditevent SET sequence = 3 WHERE sequence = 1000")
    result = audit_verify_chain()
    assert (result.ok, result.first_bad_sequence) == (False, 2)
    code, output = run_command(capsys)
    assert code == 1
    assert "#2" in output


def test_daily_task_is_quiet_when_the_chain_is_intact(chain):
    assert verify_audit_chain() == {"ok": True, "events": 5}
    assert mail.outbox == []
    # No alert; the check itself is recorded, so the dashboard can show when it last passed.
    last = AuditEvent.objects.order_by("-sequence").first()
    assert (AuditEvent.objects.count(), last.action, last.actor) == (6, "audit.verified", "system")
    assert verify_audit_chain() == {"ok": True, "events": 6}


def test_daily_task_mails_the_alert_recipients_and_records_the_break(chain, settings):
    settings.PORTAL_ALERT_RECIPIENTS = ["licensing-team@example.com"]
    tamper("UPDATE licensing_auditevent SET summary = 'edited' WHERE sequence = 2")
    result = verify_audit_chain()
    assert result == {"ok": False, "events": 2, "first_bad_sequence": 2}
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["licensing-team@example.com"]
    assert "#2" in message.subject and "#2" in message.body
    event = AuditEvent.objects.order_by("-sequence").first()
    assert (event.action, event.actor, event.object_id) == ("audit.verification_failed", "system", "2")
