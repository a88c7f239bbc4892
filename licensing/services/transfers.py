"""The one-time permanent transfer (rule 7) and its workflow (rules 8 and 9).

requested -> approved -> removal_confirmed -> awaiting_reissue -> completed,
with rejected and cancelled from the first two. The rules are checked when a
request is filed and again at every later step, under row locks.
"""

from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction
from django.utils import timezone

from core import roles
from core.audit import audit_record
from core.locks import lock_one
from inventory.models import ClientMachine
from licensing import rules
from licensing.models import (
    OPEN_TRANSFER_STATUSES,
    KeyPack,
    License,
    LicenseEndReason,
    LicenseStatus,
    RemovalMethod,
    TransferRequest,
    TransferStatus,
)
from licensing.rules import refuse_if
from licensing.services.licenses import check_machine_can_receive, create_permanent_locked

# The arrows of the state machine that a person takes; completion is the reissue install's.
ALLOWED_FROM = {
    "approve": (TransferStatus.REQUESTED,),
    "reject": (TransferStatus.REQUESTED, TransferStatus.APPROVED),
    "cancel": (TransferStatus.REQUESTED, TransferStatus.APPROVED),
    "confirm_removal": (TransferStatus.APPROVED,),
    "await_reissue": (TransferStatus.REMOVAL_CONFIRMED,),
    "return_to_removal_confirmed": (TransferStatus.AWAITING_REISSUE,),
    "complete": (TransferStatus.AWAITING_REISSUE,),
}


def check_license_transferable(*, license: License, exclude_transfer_id: int | None = None) -> None:
    """Rule 7 on the source license: one time only, permanent and active, one open request."""
    pending = (
        TransferRequest.objects.filter(license=license, status__in=OPEN_TRANSFER_STATUSES)
        .exclude(pk=exclude_transfer_id)
        .first()
    )
    refuse_if(rules.transfer_source_refusal(
        license_pk=license.pk, hostname=license.machine.hostname, kind=license.kind, status=license.status,
        transferred_from_id=license.transferred_from_id,
        pending=f"#{pending.pk} ({pending.get_status_display().lower()})" if pending else None,
    ))


def check_transfer_rules(
    *, license: License, target: ClientMachine, exclude_transfer_id: int | None = None
) -> None:
    """Rules 3, 4, 6 and 7 for moving ``license`` to ``target``."""
    check_license_transferable(license=license, exclude_transfer_id=exclude_transfer_id)
    refuse_if(rules.same_machine_refusal(
        license_pk=license.pk, source_machine_pk=license.machine_id, target_pk=target.pk,
        target_hostname=target.hostname,
    ))
    check_machine_can_receive(
        machine=target,
        license_server=license.license_server,
        product_version=license.product_version,
    )


def _check_arrow(transfer: TransferRequest, arrow: str) -> None:
    refuse_if(rules.arrow_refusal(
        what=f"Transfer #{transfer.pk}", state_label=transfer.get_status_display(),
        allowed=transfer.status in ALLOWED_FROM[arrow], verb=f"{arrow.replace('_', ' ')} from there",
    ))


def _check_four_eyes(transfer: TransferRequest, actor, verb: str) -> None:
    refuse_if(rules.four_eyes_refusal(
        transfer_pk=transfer.pk, requested_by_pk=transfer.requested_by_id, actor_pk=actor.pk,
        actor_name=actor.get_username(), verb=verb,
    ))


def lock_transfers(pks) -> list[TransferRequest]:
    """Lock transfer requests, then their machines, then their licenses (the fixed lock
    order), and return the requests, by id, with those locked rows attached."""
    transfers = list(
        TransferRequest.objects.select_for_update(no_key=True).filter(pk__in=sorted(set(pks))).order_by("pk")
    )
    machine_pks = {t.source_machine_id for t in transfers} | {t.target_machine_id for t in transfers}
    machines = {
        m.pk: m
        for m in ClientMachine.objects.select_for_update(no_key=True).filter(pk__in=sorted(machine_pks)).order_by("pk")
    }
    licenses = {
        lic.pk: lic
        for lic in License.objects.select_for_update(of=("self",), no_key=True)
        .select_related("license_server")
        .filter(pk__in=sorted(t.license_id for t in transfers))
        .order_by("pk")
    }
    for transfer in transfers:
        license = licenses[transfer.license_id]
        license.machine = machines[license.machine_id]
        transfer.license = license
        transfer.source_machine = machines[transfer.source_machine_id]
        transfer.target_machine = machines[transfer.target_machine_id]
    return transfers


def _lock_transfer(transfer: TransferRequest) -> TransferRequest:
    return lock_transfers([transfer.pk])[0]


def _refs(transfer: TransferRequest, **extra) -> dict:
    refs = {
        "transfer": [transfer.pk],
        "license": [transfer.license_id],
        "machine": [transfer.source_machine_id, transfer.target_machine_id],
    }
    for kind, ids in extra.items():
        refs.setdefault(kind, []).extend(ids)
    return refs


def transfer_snapshot(transfer: TransferRequest) -> dict:
    return {
        "status": transfer.status,
        "license": transfer.license_id,
        "source_machine": transfer.source_machine_id,
        "target_machine": transfer.target_machine_id,
    }


def transfer_file(
    *, license: License, target_machine: ClientMachine, reason: str, actor
) -> TransferRequest:
    """File *source license -> target machine* (step 1). Admins and requesters may."""
    if not roles.can_file_transfers(actor):
        raise PermissionDenied("Only administrators and requesters file transfer requests.")
    with transaction.atomic():
        machines = ClientMachine.objects.select_for_update(no_key=True).filter(
            pk__in=sorted({license.machine_id, target_machine.pk})
        ).order_by("pk")
        by_pk = {m.pk: m for m in machines}
        license = lock_one(License.objects.select_related("license_server"), license.pk)
        license.machine = by_pk[license.machine_id]
        target = by_pk[target_machine.pk]
        check_transfer_rules(license=license, target=target)
        try:
            with transaction.atomic():
                transfer = TransferRequest.objects.create(
                    license=license,
                    source_machine=license.machine,
                    target_machine=target,
                    reason=reason,
                    requested_by=actor,
                )
        except IntegrityError as exc:  # the partial unique index: one open request per license
            raise rules.transfer_source_refusal(
                license_pk=license.pk, hostname=license.machine.hostname, kind=license.kind,
                status=license.status, transferred_from_id=None, pending="(filed at the same moment)",
            ).error() from exc
        audit_record(
            actor=actor,
            action="transfer.requested",
            obj=transfer,
            summary=f"Transfer #{transfer.pk} requested: CAL #{license.pk} from "
            f"{license.machine.hostname} to {target.hostname}.",
            data={"after": transfer_snapshot(transfer), "reason": reason},
            refs=_refs(transfer),
        )
    return transfer


def transfer_approve(*, transfer: TransferRequest, actor, note: str = "") -> TransferRequest:
    """A second administrator approves (rule 8); the rules are checked again."""
    with transaction.atomic():
        transfer = _lock_transfer(transfer)
        _check_arrow(transfer, "approve")
        _check_four_eyes(transfer, actor, "approve")
        check_transfer_rules(
            license=transfer.license, target=transfer.target_machine,
            exclude_transfer_id=transfer.pk,
        )
        transfer.status = TransferStatus.APPROVED
        transfer.approved_by = actor
        transfer.approved_at = timezone.now()
        transfer.decision_note = note
        transfer.save(update_fields=["status", "approved_by", "approved_at", "decision_note"])
        audit_record(
            actor=actor, action="transfer.approved", obj=transfer,
            summary=f"Transfer #{transfer.pk} approved by {actor.get_username()}.",
            data={"before": {"status": TransferStatus.REQUESTED},
                  "after": {"status": transfer.status}, "note": note},
            refs=_refs(transfer),
        )
    return transfer


def transfer_reject(*, transfer: TransferRequest, actor, note: str) -> TransferRequest:
    with transaction.atomic():
        transfer = _lock_transfer(transfer)
        _check_arrow(transfer, "reject")
        _check_four_eyes(transfer, actor, "reject")
        before = transfer.status
        transfer.status = TransferStatus.REJECTED
        transfer.decision_note = note
        transfer.closed_by = actor
        transfer.closed_at = timezone.now()
        transfer.save(update_fields=["status", "decision_note", "closed_by", "closed_at"])
        audit_record(
            actor=actor, action="transfer.rejected", obj=transfer,
            summary=f"Transfer #{transfer.pk} rejected by {actor.get_username()}: {note}",
            data={"before": {"status": before}, "after": {"status": transfer.status},
                  "note": note},
            refs=_refs(transfer),
        )
    return transfer


def transfer_cancel(*, transfer: TransferRequest, actor, note: str = "") -> TransferRequest:
    """Withdraw a request. Admins cancel any; a requester cancels only their own."""
    with transaction.atomic():
        transfer = _lock_transfer(transfer)
        role = roles.role_of(actor)
        if role != roles.ADMIN and not (
            role == roles.REQUESTER and transfer.requested_by_id == actor.pk
        ):
            raise PermissionDenied("A requester may cancel only the transfers they filed.")
        _check_arrow(transfer, "cancel")
        before = transfer.status
        transfer.status = TransferStatus.CANCELLED
        transfer.decision_note = note
        transfer.closed_by = actor
        transfer.closed_at = timezone.now()
        transfer.save(update_fields=["status", "decision_note", "closed_by", "closed_at"])
        audit_record(
            actor=actor, action="transfer.cancelled", obj=transfer,
            summary=f"Transfer #{transfer.pk} cancelled by {actor.get_username()}.",
            data={"before": {"status": before}, "after": {"status": transfer.status},
                  "note": note},
            refs=_refs(transfer),
        )
    return transfer


def transfer_confirm_removal(*, transfer: TransferRequest, actor, method: str) -> TransferRequest:
    """Step 3: the CAL was removed from the source (registry key
    HKEY_LOCAL_MACHINE\\SOFTWARE\\Microsoft\\MSLicensing deleted, or the machine
    decommissioned). Deleting the key does not remove the issuance history."""
    method = RemovalMethod(method)
    with transaction.atomic():
        transfer = _lock_transfer(transfer)
        _check_arrow(transfer, "confirm_removal")
        check_transfer_rules(
            license=transfer.license, target=transfer.target_machine,
            exclude_transfer_id=transfer.pk,
        )
        transfer.status = TransferStatus.REMOVAL_CONFIRMED
        transfer.removal_method = method
        transfer.removal_confirmed_by = actor
        transfer.removal_confirmed_at = timezone.now()
        transfer.save(update_fields=[
            "status", "removal_method", "removal_confirmed_by", "removal_confirmed_at",
        ])
        audit_record(
            actor=actor, action="transfer.removal_confirmed", obj=transfer,
            summary=f"Transfer #{transfer.pk}: removal of CAL #{transfer.license_id} from "
            f"{transfer.source_machine.hostname} confirmed ({method.label.lower()}).",
            data={"before": {"status": TransferStatus.APPROVED},
                  "after": {"status": transfer.status, "removal_method": method}},
            refs=_refs(transfer),
        )
    return transfer


def transfer_complete_locked(
    *, transfer: TransferRequest, key_pack: KeyPack, now
) -> License:
    """Complete one transfer from a reissued key pack, inside the install's transaction.

    The caller holds the locks (reissue request, transfers, machines, key pack,
    licenses, in that order), passes rows re-read under them, and writes the audit
    event. The source becomes ``transferred``; the target receives a new permanent
    CAL with ``transferred_from`` set; the target's temporary CAL for the product ends.
    """
    _check_arrow(transfer, "complete")
    source = transfer.license
    check_transfer_rules(
        license=source, target=transfer.target_machine, exclude_transfer_id=transfer.pk
    )
    source.end(status=LicenseStatus.TRANSFERRED, reason=LicenseEndReason.TRANSFERRED, at=now)
    new_license, _ = create_permanent_locked(
        machine=transfer.target_machine, key_pack=key_pack, issued_at=now, transferred_from=source
    )
    transfer.status = TransferStatus.COMPLETED
    transfer.resulting_license = new_license
    transfer.completed_at = now
    transfer.save(update_fields=["status", "resulting_license", "completed_at"])
    return new_license


def transfers_await_reissue(*, transfers: list[TransferRequest], call) -> None:
    """A CSC call was logged for these transfers (locked, ``removal_confirmed``)."""
    for transfer in transfers:
        _check_arrow(transfer, "await_reissue")
    TransferRequest.objects.filter(pk__in=[t.pk for t in transfers]).update(
        status=TransferStatus.AWAITING_REISSUE, reissue_request=call
    )


def transfers_back_to_removal_confirmed(*, transfers: list[TransferRequest]) -> None:
    """Their CSC call was denied or cancelled: they wait for another call."""
    for transfer in transfers:
        _check_arrow(transfer, "return_to_removal_confirmed")
    TransferRequest.objects.filter(pk__in=[t.pk for t in transfers]).update(
        status=TransferStatus.REMOVAL_CONFIRMED, reissue_request=None
    )
