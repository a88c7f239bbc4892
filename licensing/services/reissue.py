"""CSC reissue calls (article steps 4 and 5): log the call, then install the reissued pack.

A call may cover several transfers that are ``removal_confirmed`` for the same
license server and product. Installing the reissued key pack completes every
covered transfer in one transaction, or refuses and changes nothing.
"""

from datetime import date, datetime

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from core.audit import audit_record
from core.errors import DomainCode, DomainError
from core.locks import lock_one
from licensing import rules
from licensing.choices import VERSION_RANK
from licensing.models import (
    CalType,
    CscContact,
    KeyPack,
    KeyPackOrigin,
    LicenseServer,
    ReissueRequest,
    ReissueStatus,
    TransferRequest,
    TransferStatus,
)
from licensing.rules import refuse_if
from licensing.services.transfers import (
    lock_transfers,
    transfer_complete_locked,
    transfers_await_reissue,
    transfers_back_to_removal_confirmed,
)
from licensing.services.versions import check_version_supported


def _check_open(call: ReissueRequest, verb: str) -> None:
    refuse_if(rules.arrow_refusal(
        what=f"CSC call #{call.pk}", state_label=call.get_status_display(),
        allowed=call.status == ReissueStatus.OPEN, verb=f"be {verb}",
    ))


def reissue_log_call(
    *,
    actor,
    called_at: datetime,
    license_server: LicenseServer,
    product_version: str,
    license_program: str,
    quantity_requested: int,
    transfers: list[TransferRequest] = (),
    csc_contact: CscContact | None = None,
    csc_location: str = "",
    csc_phone_number: str = "",
    representative: str = "",
    confirmation_number: str = "",
    agreement_number: str = "",
    notes: str = "",
) -> ReissueRequest:
    """Log one telephone call to the CSC and move the transfers it covers to
    ``awaiting_reissue``."""
    transfer_pks = [t.pk for t in transfers]
    if len(set(transfer_pks)) != len(transfer_pks):
        raise ValidationError({"transfers": "A transfer is listed more than once."})
    if quantity_requested is None or quantity_requested < max(1, len(transfer_pks)):
        raise ValidationError(
            {"quantity_requested": f"Ask for at least {max(1, len(transfer_pks))} CALs: the "
             f"call covers {len(transfer_pks)} transfers."}
        )
    if csc_contact is not None:
        csc_location = csc_location or csc_contact.location
        csc_phone_number = csc_phone_number or csc_contact.phone_number
    with transaction.atomic():
        if product_version in VERSION_RANK:  # an unknown one is a field error, from full_clean
            check_version_supported(license_server_id=license_server.pk, product_version=product_version)
        locked = lock_transfers(transfer_pks)
        for transfer in locked:
            if transfer.status != TransferStatus.REMOVAL_CONFIRMED:
                raise DomainError(
                    DomainCode.TRANSFER_NOT_READY,
                    f"Transfer #{transfer.pk} is {transfer.get_status_display().lower()}; "
                    "only transfers whose removal is confirmed can go on a CSC call.",
                )
            license = transfer.license
            if (
                license.license_server_id != license_server.pk
                or license.product_version != product_version
            ):
                raise DomainError(
                    DomainCode.PRODUCT_MISMATCH,
                    f"Transfer #{transfer.pk} moves a {license.get_product_version_display()} "
                    f"CAL of {license.license_server.name}; this call is for "
                    f"{ReissueRequest(product_version=product_version).get_product_version_display()}"
                    f" on {license_server.name}.",
                )
        call = ReissueRequest(
            called_at=called_at,
            csc_contact=csc_contact,
            csc_location=csc_location,
            csc_phone_number=csc_phone_number,
            representative=representative,
            confirmation_number=confirmation_number,
            license_server=license_server,
            product_version=product_version,
            license_program=license_program,
            agreement_number=agreement_number,
            quantity_requested=quantity_requested,
            logged_by=actor,
            notes=notes,
        )
        call.full_clean(exclude=["logged_by"])
        call.save()
        call.transfers.set(locked)
        transfers_await_reissue(transfers=locked, call=call)
        audit_record(
            actor=actor, action="reissue_request.logged", obj=call,
            summary=f"CSC call #{call.pk} logged: {quantity_requested} "
            f"{call.get_product_version_display()} CALs asked of {csc_location} "
            f"for {license_server.name}, covering {len(locked)} transfer(s).",
            data={"after": {"status": call.status, "quantity_requested": quantity_requested,
                            "transfers": sorted(transfer_pks)}},
            refs={"reissue_request": [call.pk], "transfer": transfer_pks,
                  "license_server": [license_server.pk]},
        )
    return call


def reissue_install(
    *,
    reissue_request: ReissueRequest,
    actor,
    key_pack_id: int,
    total_licenses: int,
    installed_on: date | None = None,
    expires_on: date | None = None,
    description: str = "",
) -> KeyPack:
    """Step 5: install the reissued key pack and complete every covered transfer, in one
    transaction. Any covered transfer that now breaks a rule refuses the whole install."""
    with transaction.atomic():
        call = lock_one(ReissueRequest.objects.select_related("license_server"), reissue_request.pk)
        _check_open(call, "installed")
        check_version_supported(license_server_id=call.license_server_id, product_version=call.product_version)
        transfer_pks = list(call.current_transfers.values_list("pk", flat=True))
        transfers = lock_transfers(transfer_pks)
        if total_licenses < len(transfers):
            raise DomainError(
                DomainCode.QUANTITY_TOO_SMALL,
                f"CSC call #{call.pk} covers {len(transfers)} transfers; a reissued pack of "
                f"{total_licenses} cannot complete them all.",
            )
        now = timezone.now()
        pack = KeyPack(
            license_server=call.license_server,
            key_pack_id=key_pack_id,
            product_version=call.product_version,
            cal_type=CalType.PER_DEVICE,
            license_program=call.license_program,
            agreement_number=call.agreement_number,
            total_licenses=total_licenses,
            installed_on=installed_on or now.date(),
            expires_on=expires_on,
            description=description,
            origin=KeyPackOrigin.REISSUE,
            reissue_request=call,
        )
        pack.full_clean()
        pack.save()
        pack = lock_one(KeyPack.objects.select_related("license_server"), pack.pk)
        completed = []
        for transfer in transfers:
            new_license = transfer_complete_locked(transfer=transfer, key_pack=pack, now=now)
            completed.append((transfer, new_license))
        call.quantity_granted = total_licenses
        call.status = ReissueStatus.FULFILLED
        call.closed_by = actor
        call.closed_at = now
        call.save(update_fields=["quantity_granted", "status", "closed_by", "closed_at"])
        audit_record(
            actor=actor, action="reissue_request.fulfilled", obj=call,
            summary=f"Reissued key pack {key_pack_id} ({total_licenses} CALs) installed on "
            f"{call.license_server.name} for CSC call #{call.pk}; "
            f"{len(completed)} transfer(s) completed.",
            data={
                "before": {"status": ReissueStatus.OPEN},
                "after": {"status": call.status, "quantity_granted": total_licenses},
                "key_pack": {"id": pack.pk, "key_pack_id": key_pack_id,
                             "total_licenses": total_licenses},
                "completed_transfers": [
                    {"transfer": t.pk, "source_license": t.license_id,
                     "resulting_license": lic.pk, "target_machine": t.target_machine_id}
                    for t, lic in completed
                ],
            },
            refs={
                "reissue_request": [call.pk],
                "key_pack": [pack.pk],
                "transfer": [t.pk for t, _ in completed],
                "license": [t.license_id for t, _ in completed] + [lic.pk for _, lic in completed],
                "machine": [t.source_machine_id for t, _ in completed]
                + [t.target_machine_id for t, _ in completed],
                "license_server": [call.license_server_id],
            },
        )
    return pack


def _close(*, reissue_request: ReissueRequest, actor, note: str, status: str, verb: str):
    with transaction.atomic():
        call = lock_one(ReissueRequest.objects.select_related("license_server"), reissue_request.pk)
        _check_open(call, verb)
        transfer_pks = list(call.current_transfers.values_list("pk", flat=True))
        transfers_back_to_removal_confirmed(transfers=lock_transfers(transfer_pks))
        call.status = status
        call.decision_note = note
        call.closed_by = actor
        call.closed_at = timezone.now()
        call.save(update_fields=["status", "decision_note", "closed_by", "closed_at"])
        audit_record(
            actor=actor, action=f"reissue_request.{status}", obj=call,
            summary=f"CSC call #{call.pk} {verb}"
            + (f": {note}" if note else "")
            + f"; {len(transfer_pks)} transfer(s) back to removal confirmed.",
            data={"before": {"status": ReissueStatus.OPEN}, "after": {"status": status},
                  "note": note, "transfers": sorted(transfer_pks)},
            refs={"reissue_request": [call.pk], "transfer": transfer_pks},
        )
    return call


def reissue_deny(*, reissue_request: ReissueRequest, actor, note: str) -> ReissueRequest:
    """The CSC refused: the covered transfers go back to ``removal_confirmed``."""
    return _close(reissue_request=reissue_request, actor=actor, note=note,
                  status=ReissueStatus.DENIED, verb="denied")


def reissue_cancel(*, reissue_request: ReissueRequest, actor, note: str = "") -> ReissueRequest:
    return _close(reissue_request=reissue_request, actor=actor, note=note,
                  status=ReissueStatus.CANCELLED, verb="cancelled")
