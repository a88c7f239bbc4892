"""Issuing CALs: rules 1-6 of DOMAIN.md live here and nowhere else."""

from datetime import datetime, timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

from core.audit import audit_record
from core.locks import lock_one
from inventory.models import ClientMachine, MachineStatus
from licensing import rules
from licensing.choices import VERSION_RANK
from licensing.models import (
    KeyPack,
    License,
    LicenseEndReason,
    LicenseKind,
    LicenseServer,
    LicenseStatus,
)
from licensing.rules import refuse_if
from licensing.services.versions import check_version_supported

TEMPORARY_CAL_DAYS = 90


def check_machine_can_receive(
    *, machine: ClientMachine, license_server: LicenseServer, product_version: str
) -> None:
    """Rules 3, 4 and 6 for a machine that is to receive a permanent CAL.

    ``machine`` must be a row locked by the caller.
    """
    held = (
        License.objects.active()
        .permanent()
        .filter(machine=machine, product_version=product_version)
        .values_list("pk", flat=True)
        .first()
    )
    refuse_if(rules.machine_receive_refusal(
        hostname=machine.hostname, retired=machine.status == MachineStatus.RETIRED,
        os_edition=machine.os_edition, server_name=license_server.name,
        builtin_cal=license_server.builtin_cal_for_pro_clients, product_version=product_version,
        held=f"active permanent CAL #{held}" if held is not None else None,
    ))


def check_key_pack_can_issue(*, key_pack: KeyPack) -> None:
    """Rules 1 and 2. ``key_pack`` must be a row locked by the caller."""
    refuse_if(rules.key_pack_issue_refusal(
        key_pack_id=key_pack.key_pack_id, server_name=key_pack.license_server.name,
        cal_type=key_pack.cal_type, issued=issued_count(key_pack), total=key_pack.total_licenses,
    ))


def issued_count(key_pack: KeyPack) -> int:
    """Issued = the pack's permanent CALs that are active or transferred (DOMAIN.md)."""
    return License.objects.filter(key_pack=key_pack).issued().count()


def end_temporary_for_product(
    *, machine: ClientMachine, product_version: str, now: datetime
) -> License | None:
    """Rule 4: a machine receiving a permanent CAL stops running on its temporary one."""
    temporary = (
        License.objects.select_for_update(no_key=True)
        .active()
        .temporary()
        .filter(machine=machine, product_version=product_version)
        .first()
    )
    if temporary is None:
        return None
    temporary.end(status=LicenseStatus.EXPIRED, reason=LicenseEndReason.REPLACED_BY_PERMANENT, at=now)
    return temporary


def create_permanent_locked(
    *,
    machine: ClientMachine,
    key_pack: KeyPack,
    issued_at: datetime,
    transferred_from: License | None = None,
    license_id: int | None = None,
) -> tuple[License, License | None]:
    """Check and issue a permanent CAL. The caller holds the machine and key pack locks
    (in that order) and writes the audit event. Returns the license and the temporary
    CAL it ended, if any."""
    check_machine_can_receive(
        machine=machine,
        license_server=key_pack.license_server,
        product_version=key_pack.product_version,
    )
    check_key_pack_can_issue(key_pack=key_pack)
    ended = end_temporary_for_product(
        machine=machine, product_version=key_pack.product_version, now=issued_at
    )
    try:
        with transaction.atomic():
            license = License.objects.create(
                license_id=license_id,
                machine=machine,
                key_pack=key_pack,
                license_server=key_pack.license_server,
                product_version=key_pack.product_version,
                kind=LicenseKind.PERMANENT,
                status=LicenseStatus.ACTIVE,
                issued_at=issued_at,
                transferred_from=transferred_from,
            )
    except IntegrityError as exc:  # the partial unique index is the last line of defence
        raise rules.already_licensed_refusal(
            hostname=machine.hostname, product_version=key_pack.product_version, held="an active permanent CAL",
        ).error() from exc
    return license, ended


def license_issue_permanent(*, machine: ClientMachine, key_pack: KeyPack, actor) -> License:
    """Issue a permanent CAL from a per-device key pack to a machine (rules 1-4, 6)."""
    with transaction.atomic():
        machine = lock_one(ClientMachine.objects, machine.pk)
        key_pack = lock_one(KeyPack.objects.select_related("license_server"), key_pack.pk)
        now = timezone.now()
        license, ended = create_permanent_locked(machine=machine, key_pack=key_pack, issued_at=now)
        audit_record(
            actor=actor,
            action="license.issued",
            obj=license,
            summary=f"Permanent CAL #{license.pk} ({license.get_product_version_display()}) "
            f"issued to {machine.hostname} from key pack {key_pack.key_pack_id} on "
            f"{key_pack.license_server.name}.",
            data={
                "after": license_snapshot(license),
                "ended_temporary": ended.pk if ended else None,
            },
            refs={
                "machine": [machine.pk],
                "key_pack": [key_pack.pk],
                "license": [license.pk, ended.pk if ended else None],
                "license_server": [key_pack.license_server_id],
            },
        )
    return license


def license_issue_temporary(
    *, machine: ClientMachine, license_server: LicenseServer, product_version: str, actor
) -> License:
    """Issue a 90-day temporary CAL (rules 3, 4, 5, 6 and 13)."""
    with transaction.atomic():
        machine = lock_one(ClientMachine.objects, machine.pk)
        if product_version in VERSION_RANK:  # an unknown one is refused by the table's check
            check_version_supported(license_server_id=license_server.pk, product_version=product_version)
        check_machine_can_receive(
            machine=machine, license_server=license_server, product_version=product_version
        )
        used = (
            License.objects.temporary()
            .filter(machine=machine, product_version=product_version)
            .values_list("pk", flat=True)
            .first()
        )
        refuse_if(rules.temporary_refusal(
            hostname=machine.hostname, product_version=product_version,
            used=f"temporary CAL #{used}" if used is not None else None,
        ))
        now = timezone.now()
        try:
            with transaction.atomic():
                license = License.objects.create(
                    machine=machine,
                    license_server=license_server,
                    product_version=product_version,
                    kind=LicenseKind.TEMPORARY,
                    status=LicenseStatus.ACTIVE,
                    issued_at=now,
                    expires_at=now + timedelta(days=TEMPORARY_CAL_DAYS),
                )
        except IntegrityError as exc:
            raise rules.temporary_refusal(
                hostname=machine.hostname, product_version=product_version, used="a temporary CAL",
            ).error() from exc
        audit_record(
            actor=actor,
            action="license.temporary_issued",
            obj=license,
            summary=f"Temporary CAL #{license.pk} ({license.get_product_version_display()}) "
            f"issued to {machine.hostname} on {license_server.name}, expires "
            f"{license.expires_at:%Y-%m-%d}.",
            data={"after": license_snapshot(license)},
            refs={
                "machine": [machine.pk],
                "license": [license.pk],
                "license_server": [license_server.pk],
            },
        )
    return license


def license_expire_temporary(*, license: License, now: datetime | None = None) -> bool:
    """Mark one temporary CAL expired if its 90 days are over. Safe to run twice or at once.

    Returns True when this call expired it.
    """
    now = now or timezone.now()
    with transaction.atomic():
        locked = (
            License.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("machine")
            .filter(
                pk=license.pk,
                kind=LicenseKind.TEMPORARY,
                status=LicenseStatus.ACTIVE,
                expires_at__lte=now,
            )
            .first()
        )
        if locked is None:
            return False
        locked.end(status=LicenseStatus.EXPIRED, reason=LicenseEndReason.EXPIRED_90_DAYS, at=now)
        audit_record(
            actor=None,
            action="license.expired",
            obj=locked,
            summary=f"Temporary CAL #{locked.pk} on {locked.machine.hostname} expired after "
            f"{TEMPORARY_CAL_DAYS} days.",
            data={"before": {"status": LicenseStatus.ACTIVE}, "after": {"status": locked.status}},
            refs={"machine": [locked.machine_id], "license": [locked.pk]},
        )
    return True


def license_snapshot(license: License) -> dict:
    return {
        "id": license.pk,
        "license_id": license.license_id,
        "machine": license.machine_id,
        "key_pack": license.key_pack_id,
        "license_server": license.license_server_id,
        "product_version": license.product_version,
        "kind": license.kind,
        "status": license.status,
        "issued_at": license.issued_at,
        "expires_at": license.expires_at,
        "transferred_from": license.transferred_from_id,
    }


def expire_due_temporary_licenses(*, now=None) -> int:
    """Mark every temporary CAL past its 90 days expired, each with its audit event."""
    now = now or timezone.now()
    due = (
        License.objects.filter(
            kind=LicenseKind.TEMPORARY, status=LicenseStatus.ACTIVE, expires_at__lte=now
        )
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    expired = 0
    for pk in due.iterator(chunk_size=1000):
        if license_expire_temporary(license=License(pk=pk), now=now):
            expired += 1
    return expired
