"""Every service call writes exactly one audit event, with the right actor and action;
a refused call writes none. Sign-ins are audited too, and PostgreSQL refuses to
change or remove an event."""

from datetime import date, timedelta
from types import SimpleNamespace

import pytest
from axes.models import AccessAttempt, AccessFailureLog
from django.contrib.auth import authenticate
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import DatabaseError, connection, transaction
from django.http import HttpRequest
from django.utils import timezone

from core.audit import audit_verify_chain
from core.errors import DomainError
from core.models import AuditEvent
from core.roles import REQUESTER
from inventory.models import ClientMachine, OsEdition
from inventory.services import machine_create, machine_retire, machine_update
from licensing import models as m
from licensing.services import licenses as lic
from licensing.services import reissue as rei
from licensing.services import servers as inv
from licensing.services import transfers as tr
from licensing.tests.factories import CscContactFactory, KeyPackFactory, MachineFactory, UserFactory

W2003 = m.WindowsVersion.WINDOWS_SERVER_2003


@pytest.fixture
def world(admin_user, second_admin, requester, auditor, server, key_pack, machine):
    w = SimpleNamespace(alice=admin_user, bob=second_admin, rita=requester, audrey=auditor,
                        server=server, pack=key_pack, machine=machine)
    w.target = MachineFactory(hostname="ws-target")

    def permanent(machine=None):
        return lic.license_issue_permanent(machine=machine or w.machine, key_pack=w.pack, actor=w.alice)

    def requested():
        return tr.transfer_file(license=permanent(), target_machine=w.target, reason="New PC", actor=w.rita)

    def approved():
        return tr.transfer_approve(transfer=requested(), actor=w.alice)

    def removal_confirmed():
        return tr.transfer_confirm_removal(transfer=approved(), actor=w.alice,
                                           method=m.RemovalMethod.REGISTRY_KEY_DELETED)

    def call(transfers=()):
        return rei.reissue_log_call(
            actor=w.alice, called_at=timezone.now(), license_server=w.server, product_version=W2003,
            license_program=m.LicenseProgram.SELECT, quantity_requested=max(1, len(transfers)),
            transfers=list(transfers), csc_location="North America", csc_phone_number="1-888-571-2048",
        )

    w.permanent, w.requested, w.approved, w.removal_confirmed, w.call = (
        permanent, requested, approved, removal_confirmed, call)
    return w


def _machine_create(w):
    return (lambda: machine_create(actor=w.alice, hostname="ws-new", os_edition=OsEdition.WINDOWS_10),
            "machine.created", "alice")


def _machine_update(w):
    return (lambda: machine_update(machine=w.machine, actor=w.alice, data={"owner": "Finance"}),
            "machine.updated", "alice")


def _machine_retire(w):
    return lambda: machine_retire(machine=w.machine, actor=w.bob), "machine.retired", "bob"


def _server_create(w):
    return (lambda: inv.license_server_create(actor=w.alice, name="TSLS-NEW", windows_version=W2003),
            "license_server.created", "alice")


def _server_update(w):
    return (lambda: inv.license_server_update(license_server=w.server, actor=w.alice, data={"location": "DC2"}),
            "license_server.updated", "alice")


def _key_pack_install(w):
    return (lambda: inv.key_pack_install(
        actor=w.alice, license_server=w.server, key_pack_id=5150, product_version=W2003,
        cal_type=m.CalType.PER_DEVICE, license_program=m.LicenseProgram.OPEN, total_licenses=20,
        installed_on=date(2004, 3, 1)), "key_pack.installed", "alice")


def _key_pack_update(w):
    return (lambda: inv.key_pack_update(key_pack=w.pack, actor=w.bob, data={"total_licenses": 8}),
            "key_pack.updated", "bob")


def _contact_create(w):
    return (lambda: inv.csc_contact_create(actor=w.alice, location="Europe", phone_number="+44 1 0000"),
            "csc_contact.created", "alice")


def _contact_update(w):
    contact = CscContactFactory()
    return (lambda: inv.csc_contact_update(contact=contact, actor=w.alice, data={"hours": "24/7"}),
            "csc_contact.updated", "alice")


def _issue_permanent(w):
    return w.permanent, "license.issued", "alice"


def _issue_temporary(w):
    return (lambda: lic.license_issue_temporary(machine=w.machine, license_server=w.server,
                                                product_version=W2003, actor=w.bob),
            "license.temporary_issued", "bob")


def _expire_temporary(w):
    temp = lic.license_issue_temporary(machine=w.machine, license_server=w.server, product_version=W2003,
                                       actor=w.alice)
    later = timezone.now() + timedelta(days=91)
    return lambda: lic.license_expire_temporary(license=temp, now=later), "license.expired", "system"


def _file(w):
    license = w.permanent()
    return (lambda: tr.transfer_file(license=license, target_machine=w.target, reason="Replaced", actor=w.rita),
            "transfer.requested", "rita")


def _approve(w):
    transfer = w.requested()
    return lambda: tr.transfer_approve(transfer=transfer, actor=w.bob), "transfer.approved", "bob"


def _reject(w):
    transfer = w.requested()
    return lambda: tr.transfer_reject(transfer=transfer, actor=w.bob, note="No"), "transfer.rejected", "bob"


def _cancel(w):
    transfer = w.requested()
    return lambda: tr.transfer_cancel(transfer=transfer, actor=w.rita), "transfer.cancelled", "rita"


def _confirm_removal(w):
    transfer = w.approved()
    return (lambda: tr.transfer_confirm_removal(transfer=transfer, actor=w.bob,
                                                method=m.RemovalMethod.MACHINE_DECOMMISSIONED),
            "transfer.removal_confirmed", "bob")


def _log_call(w):
    transfer = w.removal_confirmed()
    return lambda: w.call([transfer]), "reissue_request.logged", "alice"


def _install(w):
    call = w.call([w.removal_confirmed()])
    return (lambda: rei.reissue_install(reissue_request=call, actor=w.bob, key_pack_id=7777, total_licenses=1),
            "reissue_request.fulfilled", "bob")


def _deny(w):
    call = w.call([w.removal_confirmed()])
    return lambda: rei.reissue_deny(reissue_request=call, actor=w.bob, note="Out of policy"), \
        "reissue_request.denied", "bob"


def _cancel_call(w):
    call = w.call()
    return lambda: rei.reissue_cancel(reissue_request=call, actor=w.alice), "reissue_request.cancelled", "alice"


SERVICE_CALLS = [
    _machine_create, _machine_update, _machine_retire, _server_create, _server_update, _key_pack_install,
    _key_pack_update, _contact_create, _contact_update, _issue_permanent, _issue_temporary, _expire_temporary,
    _file, _approve, _reject, _cancel, _confirm_removal, _log_call, _install, _deny, _cancel_call,
]


def _state():
    """Row counts of everything a service writes, to show that a refusal saved nothing."""
    return tuple(
        model.objects.count()
        for model in (AuditEvent, m.License, m.KeyPack, m.LicenseServer, m.TransferRequest,
                      m.ReissueRequest, m.CscContact, ClientMachine)
    )


@pytest.mark.parametrize("scenario", SERVICE_CALLS, ids=lambda f: f.__name__.strip("_"))
def test_each_service_call_writes_exactly_one_event(world, scenario):
    act, action, actor = scenario(world)
    last = AuditEvent.objects.order_by("-sequence").values_list("sequence", flat=True).first() or 0
    act()
    events = list(AuditEvent.objects.filter(sequence__gt=last))
    assert [(e.action, e.actor) for e in events] == [(action, actor)]
    assert audit_verify_chain().ok


def _refuse_bad_hostname(w):
    return lambda: machine_create(actor=w.alice, hostname="-bad-", os_edition=OsEdition.OTHER), ValidationError


def _refuse_retire_twice(w):
    machine_retire(machine=w.target, actor=w.alice)
    return lambda: machine_retire(machine=w.target, actor=w.alice), DomainError


def _refuse_duplicate_server(w):
    return lambda: inv.license_server_create(actor=w.alice, name="tsls-hq", windows_version=W2003), ValidationError


def _refuse_duplicate_pack(w):
    return (lambda: inv.key_pack_install(
        actor=w.alice, license_server=w.server, key_pack_id=w.pack.key_pack_id, product_version=W2003,
        cal_type=m.CalType.PER_DEVICE, license_program=m.LicenseProgram.OPEN, total_licenses=5,
        installed_on=date(2004, 3, 1)), ValidationError)


def _refuse_below_issued(w):
    w.permanent()
    w.permanent(w.target)
    return lambda: inv.key_pack_update(key_pack=w.pack, actor=w.alice, data={"total_licenses": 1}), DomainError


def _refuse_per_user_pack(w):
    pack = KeyPackFactory(license_server=w.server, cal_type=m.CalType.PER_USER)
    return lambda: lic.license_issue_permanent(machine=w.machine, key_pack=pack, actor=w.alice), DomainError


def _refuse_pack_exhausted(w):
    pack = KeyPackFactory(license_server=w.server, total_licenses=1)
    lic.license_issue_permanent(machine=w.target, key_pack=pack, actor=w.alice)
    return lambda: lic.license_issue_permanent(machine=w.machine, key_pack=pack, actor=w.alice), DomainError


def _refuse_os_includes_cal(w):
    pro = MachineFactory(os_edition=OsEdition.WINDOWS_XP_PROFESSIONAL)
    return lambda: lic.license_issue_permanent(machine=pro, key_pack=w.pack, actor=w.alice), DomainError


def _refuse_second_temporary(w):
    def again():
        return lic.license_issue_temporary(machine=w.machine, license_server=w.server, product_version=W2003,
                                           actor=w.alice)
    again()
    return again, DomainError


def _refuse_same_machine(w):
    license = w.permanent()
    return (lambda: tr.transfer_file(license=license, target_machine=w.machine, reason="x", actor=w.alice),
            DomainError)


def _refuse_auditor_files(w):
    license = w.permanent()
    return (lambda: tr.transfer_file(license=license, target_machine=w.target, reason="x", actor=w.audrey),
            PermissionDenied)


def _refuse_four_eyes(w):
    transfer = tr.transfer_file(license=w.permanent(), target_machine=w.target, reason="x", actor=w.alice)
    return lambda: tr.transfer_approve(transfer=transfer, actor=w.alice), DomainError


def _refuse_reject_completed_step(w):
    transfer = w.removal_confirmed()
    return lambda: tr.transfer_reject(transfer=transfer, actor=w.bob, note="late"), DomainError


def _refuse_cancel_others(w):
    transfer = w.requested()
    other = UserFactory(username="rob", role=REQUESTER)
    return lambda: tr.transfer_cancel(transfer=transfer, actor=other), PermissionDenied


def _refuse_confirm_unapproved(w):
    transfer = w.requested()
    return (lambda: tr.transfer_confirm_removal(transfer=transfer, actor=w.alice,
                                                method=m.RemovalMethod.REGISTRY_KEY_DELETED), DomainError)


def _refuse_call_not_ready(w):
    transfer = w.approved()
    return lambda: w.call([transfer]), DomainError


def _refuse_install_too_small(w):
    pack = KeyPackFactory(license_server=w.server, total_licenses=5)
    one = tr.transfer_file(license=w.permanent(), target_machine=w.target, reason="x", actor=w.rita)
    second_source, second_target = MachineFactory(), MachineFactory()
    two = tr.transfer_file(
        license=lic.license_issue_permanent(machine=second_source, key_pack=pack, actor=w.alice),
        target_machine=second_target, reason="x", actor=w.rita)
    for t in (one, two):
        tr.transfer_approve(transfer=t, actor=w.alice)
        tr.transfer_confirm_removal(transfer=t, actor=w.alice, method=m.RemovalMethod.REGISTRY_KEY_DELETED)
    call = w.call([one, two])
    return (lambda: rei.reissue_install(reissue_request=call, actor=w.alice, key_pack_id=8888, total_licenses=1),
            DomainError)


def _refuse_deny_closed(w):
    call = w.call()
    rei.reissue_cancel(reissue_request=call, actor=w.alice)
    return lambda: rei.reissue_deny(reissue_request=call, actor=w.alice, note="x"), DomainError


def _refuse_cancel_closed(w):
    call = w.call()
    rei.reissue_deny(reissue_request=call, actor=w.alice, note="x")
    return lambda: rei.reissue_cancel(reissue_request=call, actor=w.alice), DomainError


REFUSALS = [
    _refuse_bad_hostname, _refuse_retire_twice, _refuse_duplicate_server, _refuse_duplicate_pack,
    _refuse_below_issued, _refuse_per_user_pack, _refuse_pack_exhausted, _refuse_os_includes_cal,
    _refuse_second_temporary, _refuse_same_machine, _refuse_auditor_files, _refuse_four_eyes,
    _refuse_reject_completed_step, _refuse_cancel_others, _refuse_confirm_unapproved, _refuse_call_not_ready,
    _refuse_install_too_small, _refuse_deny_closed, _refuse_cancel_closed,
]


@pytest.mark.parametrize("scenario", REFUSALS, ids=lambda f: f.__name__.removeprefix("_refuse_"))
def test_a_refused_service_call_writes_no_event(world, scenario):
    act, error = scenario(world)
    before = _state()
    with pytest.raises(error):
        act()
    assert _state() == before


def test_expiring_a_live_temporary_cal_writes_nothing(world):
    temp = lic.license_issue_temporary(machine=world.machine, license_server=world.server,
                                       product_version=W2003, actor=world.alice)
    before = _state()
    assert lic.license_expire_temporary(license=temp) is False
    assert _state() == before


def test_login_and_logout_are_audited(client, admin_user):
    # django-axes needs the request a sign-in comes with.
    assert client.login(request=HttpRequest(), username="alice", password="pw-for-tests-1")
    client.logout()
    events = list(AuditEvent.objects.values_list("action", "actor", "object_type", "object_id"))
    assert events == [("auth.login", "alice", "user", str(admin_user.pk)),
                      ("auth.logout", "alice", "user", str(admin_user.pk))]


def test_failed_login_names_the_attempted_user_never_the_password(client, admin_user, caplog):
    response = client.post("/accounts/login/", {"username": "alice", "password": "Tr0ub4dor&3"},
                           REMOTE_ADDR="192.0.2.7")
    assert response.status_code == 200
    # Counted and kept by django-axes with the name and the address; not chained one by one,
    # so failures cannot flood the audit trail (core.signin).
    assert not AuditEvent.objects.exists()
    attempt, failure = AccessAttempt.objects.get(), AccessFailureLog.objects.get()
    assert (attempt.username, attempt.ip_address) == (failure.username, failure.ip_address) == ("alice", "192.0.2.7")
    assert "Failed sign-in as 'alice' from 192.0.2.7" in caplog.text
    assert "Tr0ub4dor" not in attempt.get_data + attempt.post_data + caplog.text


def test_failed_login_username_is_cut_to_150_characters(db):
    request = HttpRequest()
    request.META["REMOTE_ADDR"] = "192.0.2.8"
    assert authenticate(request, username="x" * 400, password="secret") is None
    attempt = AccessAttempt.objects.get()
    assert attempt.username == "x" * 150
    assert "secret" not in attempt.get_data + attempt.post_data


@pytest.mark.postgres
def test_database_refuses_update_delete_and_truncate_of_audit_events(world):
    if connection.vendor != "postgresql":
        pytest.skip("the append-only trigger exists on PostgreSQL only")
    world.permanent()
    statements = [
        "UPDATE licensing_auditevent SET summary = 'rewritten'",
        "DELETE FROM licensing_auditevent",
        "TRUNCATE licensing_auditevent",
    ]
    for sql in statements:
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), connection.cursor() as cur:
            cur.execute(sql)
    assert AuditEvent.objects.filter(summary="rewritten").count() == 0
    assert AuditEvent.objects.count() == 1
