"""The transfer workflow through its services: every arrow, every forbidden arrow, every code."""

import pytest
from django.core.exceptions import PermissionDenied
from django.utils import timezone

from core.models import AuditEvent
from inventory.models import OsEdition
from inventory.services import machine_retire
from licensing.models import LicenseStatus, TransferStatus
from licensing.services import transfers as svc
from licensing.services.licenses import license_issue_permanent, license_issue_temporary
from licensing.services.reissue import reissue_install, reissue_log_call
from licensing.tests.factories import KeyPackFactory, MachineFactory, UserFactory
from licensing.tests.helpers import refused

pytestmark = pytest.mark.django_db
METHOD = "registry_key_deleted"


@pytest.fixture
def source_license(admin_user, key_pack):
    return license_issue_permanent(machine=MachineFactory(hostname="old-pc"), key_pack=key_pack,
                                   actor=admin_user)


@pytest.fixture
def target():
    return MachineFactory(hostname="new-pc")


def file(license, target, actor):
    return svc.transfer_file(license=license, target_machine=target, reason="hardware replaced", actor=actor)


def to_state(state, license, target, requester, approver):
    """Walk a new transfer to ``state`` along the arrows."""
    transfer = file(license, target, requester)
    if state == TransferStatus.REQUESTED:
        return transfer
    if state in (TransferStatus.REJECTED,):
        return svc.transfer_reject(transfer=transfer, actor=approver, note="no")
    if state == TransferStatus.CANCELLED:
        return svc.transfer_cancel(transfer=transfer, actor=requester)
    transfer = svc.transfer_approve(transfer=transfer, actor=approver)
    if state == TransferStatus.APPROVED:
        return transfer
    transfer = svc.transfer_confirm_removal(transfer=transfer, actor=approver, method=METHOD)
    if state == TransferStatus.REMOVAL_CONFIRMED:
        return transfer
    call = reissue_log_call(
        actor=approver, called_at=timezone.now(), license_server=license.license_server,
        product_version=license.product_version, license_program="select", quantity_requested=1,
        transfers=[transfer], csc_location="North America", csc_phone_number="+1 888 571 2048",
    )
    transfer.refresh_from_db()
    if state == TransferStatus.AWAITING_REISSUE:
        return transfer
    reissue_install(reissue_request=call, actor=approver, key_pack_id=90001, total_licenses=1)
    transfer.refresh_from_db()
    return transfer


def test_every_arrow(admin_user, second_admin, source_license, target):
    transfer = file(source_license, target, admin_user)
    assert (transfer.status, transfer.source_machine.hostname) == (TransferStatus.REQUESTED, "old-pc")
    transfer = svc.transfer_approve(transfer=transfer, actor=second_admin, note="ok")
    assert (transfer.status, transfer.approved_by, transfer.decision_note) == ("approved", second_admin, "ok")
    transfer = svc.transfer_confirm_removal(transfer=transfer, actor=admin_user, method=METHOD)
    assert transfer.status == "removal_confirmed" and transfer.removal_confirmed_by == admin_user
    assert transfer.removal_method == METHOD and transfer.removal_confirmed_at
    second = license_issue_permanent(machine=MachineFactory(), key_pack=source_license.key_pack,
                                     actor=admin_user)
    done = to_state(TransferStatus.COMPLETED, second, MachineFactory(), admin_user, second_admin)
    assert done.status == TransferStatus.COMPLETED
    assert done.resulting_license.transferred_from_id == done.license_id
    actions = list(AuditEvent.objects.values_list("action", flat=True))
    assert actions.count("transfer.requested") == 2 and "transfer.approved" in actions


@pytest.mark.parametrize("start", [TransferStatus.REQUESTED, TransferStatus.APPROVED])
def test_reject_and_cancel_arrows(start, admin_user, second_admin, requester, source_license, target):
    transfer = to_state(start, source_license, target, admin_user, second_admin)
    rejected = svc.transfer_reject(transfer=transfer, actor=second_admin, note="wrong machine")
    assert rejected.status == TransferStatus.REJECTED and rejected.closed_by == second_admin
    again = to_state(start, source_license, target, requester, second_admin)
    cancelled = svc.transfer_cancel(transfer=again, actor=requester)
    assert cancelled.status == TransferStatus.CANCELLED


FORBIDDEN = {
    # state: arrows that must be refused from it
    TransferStatus.REQUESTED: ["confirm_removal"],
    TransferStatus.APPROVED: ["approve"],
    TransferStatus.REMOVAL_CONFIRMED: ["approve", "reject", "cancel", "confirm_removal"],
    TransferStatus.AWAITING_REISSUE: ["approve", "reject", "cancel", "confirm_removal"],
    TransferStatus.COMPLETED: ["approve", "reject", "cancel", "confirm_removal"],
    TransferStatus.REJECTED: ["approve", "reject", "cancel", "confirm_removal"],
    TransferStatus.CANCELLED: ["approve", "reject", "cancel", "confirm_removal"],
}


@pytest.mark.parametrize("state", list(FORBIDDEN))
def test_forbidden_arrows_are_invalid_state(state, admin_user, second_admin, source_license, target):
    transfer = to_state(state, source_license, target, admin_user, second_admin)
    assert transfer.status == state
    calls = {
        "approve": lambda: svc.transfer_approve(transfer=transfer, actor=second_admin),
        "reject": lambda: svc.transfer_reject(transfer=transfer, actor=second_admin, note="n"),
        "cancel": lambda: svc.transfer_cancel(transfer=transfer, actor=admin_user),
        "confirm_removal": lambda: svc.transfer_confirm_removal(transfer=transfer, actor=second_admin,
                                                                method=METHOD),
    }
    for arrow in FORBIDDEN[state]:
        with refused("invalid_state"):
            calls[arrow]()


def test_four_eyes(admin_user, source_license, target):
    transfer = file(source_license, target, admin_user)
    with refused("four_eyes"):
        svc.transfer_approve(transfer=transfer, actor=admin_user)
    with refused("four_eyes"):
        svc.transfer_reject(transfer=transfer, actor=admin_user, note="mine")


def test_same_machine(admin_user, source_license):
    with refused("same_machine"):
        file(source_license, source_license.machine, admin_user)


def test_transfer_pending(admin_user, source_license, target):
    file(source_license, target, admin_user)
    with refused("transfer_pending") as info:
        file(source_license, MachineFactory(), admin_user)
    assert "open transfer request" in info.value.detail


def test_not_transferable_temporary(admin_user, server, target):
    temporary = license_issue_temporary(machine=MachineFactory(), license_server=server,
                                        product_version="windows_server_2003", actor=admin_user)
    with refused("not_transferable"):
        file(temporary, target, admin_user)


def test_target_rules_at_filing(admin_user, source_license, key_pack):
    with refused("os_includes_cal"):
        file(source_license, MachineFactory(os_edition=OsEdition.WINDOWS_XP_PROFESSIONAL), admin_user)
    licensed = MachineFactory()
    license_issue_permanent(machine=licensed, key_pack=key_pack, actor=admin_user)
    with refused("machine_already_licensed"):
        file(source_license, licensed, admin_user)
    retired = MachineFactory()
    machine_retire(machine=retired, actor=admin_user)
    with refused("machine_retired"):
        file(source_license, retired, admin_user)


def test_rules_checked_again_at_approval(admin_user, second_admin, source_license, target, key_pack):
    transfer = file(source_license, target, admin_user)
    license_issue_permanent(machine=target, key_pack=key_pack, actor=admin_user)  # licensed meanwhile
    with refused("machine_already_licensed"):
        svc.transfer_approve(transfer=transfer, actor=second_admin)
    other = file(license_issue_permanent(machine=MachineFactory(), key_pack=key_pack, actor=admin_user),
                 MachineFactory(hostname="to-retire"), admin_user)
    machine_retire(machine=other.target_machine, actor=admin_user)
    with refused("machine_retired"):
        svc.transfer_approve(transfer=other, actor=second_admin)


def test_rules_checked_again_at_completion(admin_user, second_admin, source_license, target):
    transfer = to_state(TransferStatus.AWAITING_REISSUE, source_license, target, admin_user, second_admin)
    machine_retire(machine=target, actor=admin_user)  # retired while waiting for the CSC
    call = transfer.reissue_request
    with refused("machine_retired"):
        reissue_install(reissue_request=call, actor=second_admin, key_pack_id=555, total_licenses=1)
    call.refresh_from_db()
    transfer.refresh_from_db()
    assert call.status == "open" and call.quantity_granted is None
    assert transfer.status == TransferStatus.AWAITING_REISSUE


def test_one_time_rule_along_the_lineage(admin_user, second_admin, source_license, target):
    done = to_state(TransferStatus.COMPLETED, source_license, target, admin_user, second_admin)
    source_license.refresh_from_db()
    assert source_license.status == LicenseStatus.TRANSFERRED and not source_license.transferable
    product = done.resulting_license
    assert product.transferred_from == source_license and not product.transferable
    assert "one-time transfer used" in product.transferability_reason
    with refused("already_transferred"):
        file(product, MachineFactory(), admin_user)
    with refused("already_transferred"):
        file(source_license, MachineFactory(), admin_user)


def test_requester_cancels_only_their_own(requester, admin_user, source_license, target):
    other_requester = UserFactory(username="rob", role="requester")
    transfer = file(source_license, target, requester)
    with pytest.raises(PermissionDenied):
        svc.transfer_cancel(transfer=transfer, actor=other_requester)
    auditor = UserFactory(username="aud", role="auditor")
    with pytest.raises(PermissionDenied):
        file(source_license, MachineFactory(), auditor)
    assert svc.transfer_cancel(transfer=transfer, actor=requester).status == "cancelled"


def test_temporary_cal_ends_when_transfer_completes(admin_user, second_admin, source_license, target):
    temporary = license_issue_temporary(machine=target, license_server=source_license.license_server,
                                        product_version=source_license.product_version, actor=admin_user)
    to_state(TransferStatus.COMPLETED, source_license, target, admin_user, second_admin)
    temporary.refresh_from_db()
    assert temporary.status == LicenseStatus.EXPIRED and temporary.end_reason == "replaced_by_permanent"


def test_pack_of_other_server_does_not_matter_for_target(admin_user, second_admin, source_license):
    # A machine licensed on another product can still receive this one.
    target = MachineFactory()
    other = KeyPackFactory(product_version="windows_server_2008")
    license_issue_permanent(machine=target, key_pack=other, actor=admin_user)
    done = to_state(TransferStatus.COMPLETED, source_license, target, admin_user, second_admin)
    assert done.status == TransferStatus.COMPLETED
