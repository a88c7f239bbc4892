"""CSC reissue calls: logging, installing the reissued pack, deny and cancel."""

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from core.models import AuditEvent
from licensing.models import KeyPack, LicenseStatus, ReissueRequest, TransferStatus
from licensing.services import transfers as tsvc
from licensing.services.licenses import license_issue_permanent, license_issue_temporary
from licensing.services.reissue import reissue_cancel, reissue_deny, reissue_install, reissue_log_call
from licensing.tests.factories import CscContactFactory, KeyPackFactory, MachineFactory
from licensing.tests.helpers import refused

pytestmark = pytest.mark.django_db


def ready_transfer(key_pack, requester, approver, status="removal_confirmed"):
    license = license_issue_permanent(machine=MachineFactory(), key_pack=key_pack, actor=requester)
    transfer = tsvc.transfer_file(license=license, target_machine=MachineFactory(), reason="replaced",
                                  actor=requester)
    if status == "requested":
        return transfer
    transfer = tsvc.transfer_approve(transfer=transfer, actor=approver)
    if status == "approved":
        return transfer
    return tsvc.transfer_confirm_removal(transfer=transfer, actor=approver, method="machine_decommissioned")


def log_call(actor, key_pack, transfers, quantity=None, **extra):
    fields = dict(
        actor=actor, called_at=timezone.now(), license_server=key_pack.license_server,
        product_version=key_pack.product_version, license_program="select",
        quantity_requested=len(transfers) if quantity is None else quantity, transfers=transfers,
        csc_location="North America", csc_phone_number="+1 888 571 2048", representative="J. Doe",
        confirmation_number="CSC-1234",
    )
    return reissue_log_call(**(fields | extra))


@pytest.fixture
def pack(server):
    return KeyPackFactory(license_server=server, total_licenses=20)


def test_the_articles_path(admin_user, second_admin, pack, server):
    transfers = [ready_transfer(pack, admin_user, second_admin) for _ in range(3)]
    waiting_target = transfers[0].target_machine
    temporary = license_issue_temporary(machine=waiting_target, license_server=server,
                                        product_version=pack.product_version, actor=admin_user)
    contact = CscContactFactory()
    call = log_call(admin_user, pack, transfers, csc_contact=contact, csc_location="", csc_phone_number="")
    assert (call.csc_location, call.csc_phone_number) == (contact.location, contact.phone_number)
    assert call.channel == "telephone" and call.status == "open"
    assert set(call.transfers.values_list("status", flat=True)) == {TransferStatus.AWAITING_REISSUE}

    reissued = reissue_install(reissue_request=call, actor=second_admin, key_pack_id=31337, total_licenses=4)
    counted = KeyPack.objects.with_counts().get(pk=reissued.pk)
    assert (reissued.origin, counted.issued_count, counted.available_count) == ("reissue", 3, 1)
    assert reissued.reissue_request == call and reissued.agreement_number == call.agreement_number
    call.refresh_from_db()
    assert (call.status, call.quantity_granted) == ("fulfilled", 4)
    for transfer in transfers:
        transfer.refresh_from_db()
        transfer.license.refresh_from_db()
        assert transfer.status == TransferStatus.COMPLETED
        assert transfer.license.status == LicenseStatus.TRANSFERRED
        assert transfer.resulting_license.key_pack == reissued
        assert transfer.resulting_license.machine == transfer.target_machine
    temporary.refresh_from_db()
    assert temporary.status == LicenseStatus.EXPIRED
    assert AuditEvent.objects.filter(action="reissue_request.fulfilled").count() == 1
    for transfer in transfers:
        with refused("already_transferred"):
            tsvc.transfer_file(license=transfer.resulting_license, target_machine=MachineFactory(),
                               reason="again", actor=admin_user)
        with refused("already_transferred"):
            tsvc.transfer_file(license=transfer.license, target_machine=MachineFactory(),
                               reason="again", actor=admin_user)


def test_quantity_too_small(admin_user, second_admin, pack):
    transfers = [ready_transfer(pack, admin_user, second_admin) for _ in range(2)]
    call = log_call(admin_user, pack, transfers)
    with refused("quantity_too_small"):
        reissue_install(reissue_request=call, actor=admin_user, key_pack_id=5, total_licenses=1)


def test_quantity_requested_covers_the_transfers(admin_user, second_admin, pack):
    transfers = [ready_transfer(pack, admin_user, second_admin) for _ in range(2)]
    with pytest.raises(ValidationError) as info:
        log_call(admin_user, pack, transfers, quantity=1)
    assert "quantity_requested" in info.value.message_dict
    assert not ReissueRequest.objects.exists()


@pytest.mark.parametrize("status", ["requested", "approved"])
def test_transfer_not_ready(status, admin_user, second_admin, pack):
    ready = ready_transfer(pack, admin_user, second_admin)
    early = ready_transfer(pack, admin_user, second_admin, status=status)
    with refused("transfer_not_ready"):
        log_call(admin_user, pack, [ready, early])
    log_call(admin_user, pack, [ready])
    with refused("transfer_not_ready"):  # already on a call
        log_call(admin_user, pack, [ready])


def test_product_mismatch(admin_user, second_admin, pack, server):
    transfer = ready_transfer(pack, admin_user, second_admin)
    with refused("product_mismatch"):
        log_call(admin_user, pack, [transfer], product_version="windows_2000_server")
    other_server_pack = KeyPackFactory()
    with refused("product_mismatch"):
        log_call(admin_user, other_server_pack, [transfer], product_version=pack.product_version)


@pytest.mark.parametrize("close", [reissue_deny, reissue_cancel])
def test_deny_and_cancel_return_transfers(close, admin_user, second_admin, pack):
    transfers = [ready_transfer(pack, admin_user, second_admin) for _ in range(2)]
    call = log_call(admin_user, pack, transfers)
    closed = close(reissue_request=call, actor=admin_user, note="CSC could not verify the agreement")
    assert closed.status in ("denied", "cancelled")
    for transfer in transfers:
        transfer.refresh_from_db()
        assert transfer.status == TransferStatus.REMOVAL_CONFIRMED and transfer.reissue_request is None
    assert closed.transfers.count() == 2  # the call keeps what it covered
    with refused("invalid_state"):
        close(reissue_request=call, actor=admin_user, note="again")
    with refused("invalid_state"):
        reissue_install(reissue_request=call, actor=admin_user, key_pack_id=1, total_licenses=2)
    # The transfers can go on a new call.
    assert log_call(admin_user, pack, transfers).status == "open"


def test_install_refuses_whole_when_one_transfer_breaks_a_rule(admin_user, second_admin, pack):
    transfers = [ready_transfer(pack, admin_user, second_admin) for _ in range(2)]
    call = log_call(admin_user, pack, transfers)
    # The second target got licensed meanwhile.
    license_issue_permanent(machine=transfers[1].target_machine, key_pack=pack, actor=admin_user)
    with refused("machine_already_licensed"):
        reissue_install(reissue_request=call, actor=admin_user, key_pack_id=42, total_licenses=2)
    assert not KeyPack.objects.filter(key_pack_id=42).exists()


def test_install_duplicate_key_pack_id_is_bad_input(admin_user, second_admin, pack):
    call = log_call(admin_user, pack, [ready_transfer(pack, admin_user, second_admin)])
    with pytest.raises(ValidationError):
        reissue_install(reissue_request=call, actor=admin_user, key_pack_id=pack.key_pack_id, total_licenses=1)
    call.refresh_from_db()
    assert call.status == "open"


def test_call_without_transfers(admin_user, pack):
    call = log_call(admin_user, pack, [], quantity=5)
    reissued = reissue_install(reissue_request=call, actor=admin_user, key_pack_id=8, total_licenses=5)
    assert KeyPack.objects.with_counts().get(pk=reissued.pk).available_count == 5
