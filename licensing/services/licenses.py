"""Issuing CALs: rules 1-6 of DOMAIN.md live here and nowhere else."""

from datetime import datetime, timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

from inventory.models import ClientMachine, MachineStatus
from licensing.models import (
    CalType,
    KeyPack,
    License,
    LicenseEndReason,
    LicenseKind,
    LicenseServer,
    LicenseStatus,
    WindowsVersion,
)
from licensing.services.audit import audit_record
from licensing.services.locks import lock_one
from portal.errors import DomainError

TEMPORARY_CAL_DAYS = 90


def _product_label(product_version: str) -> str:
    return WindowsVersion(product_version).label


def check_machine_can_receive(
    *, machine: ClientMachine, license_server: LicenseServer, product_version: str
) -> None:
    """Rules 3, 4 and 6 for a machine that is to receive a permanent CAL.

    ``machine`` must be a row locked by the caller.
    """
    if machine.status == MachineStatus.RETIRED:
        raise DomainError(
            "machine_retired",
            f"Machine {machine.hostname} is retired; nothing is issued or transferred to it.",
        )
    if machine.os_includes_cal and license_server.builtin_cal_for_pro_clients:
        raise DomainError(
            "os_includes_cal",
            f"Machine {machine.hostname} runs {machine.get_os_edition_display()}, which "
            f"includes its TS CAL on license server {license_server.name}; it receives no CAL.",
        )
    held = (
        License.objects.active()
        .permanent()
        .filter(machine=machine, product_version=product_version)
        .first()
    )
    if held is not None:
        raise DomainError(
            "machine_already_licensed",
            f"Machine {machine.hostname} already holds active permanent CAL #{held.pk} for "
            f"{_product_label(product_version)}.",
        )


def check_key_pack_can_issue(*, key_pack: KeyPack) -> None:
    """Rules 1 and 2. ``key_pack`` must be a row locked by the caller."""
    if key_pack.cal_type == CalType.PER_USER:
        raise DomainError(
            "per_user_key_pack",
            f"Key pack {key_pack.key_pack_id} on {key_pack.license_server.name} is per user; "
            "per-user packs are inventory only and never issue to a machine.",
        )
    issued = (
        License.objects.permanent()
        .filter(key_pack=key_pack, status__in=(LicenseStatus.ACTIVE, LicenseStatus.TRANSFERRED))
        .count()
    )
    if issued >= key_pack.total_licenses:
        raise DomainError(
            "no_licenses_available",
            f"Key pack {key_pack.key_pack_id} on {key_pack.license_server.name} has no "
            f"licenses available ({issued} of {key_pack.total_licenses} issued).",
        )


def end_temporary_for_product(
    *, machine: ClientMachine, product_version: str, now: datetime
) -> License | None:
    """Rule 4: a machine receiving a permanent CAL stops running on its temporary one."""
    temporary = (
        License.objects.select_for_update()
        .active()
        .temporary()
        .filter(machine=machine, product_version=product_version)
        .first()
    )
    if temporary is None:
        return None
    temporary.status = LicenseStatus.EXPIRED
    temporary.ended_at = now
    temporary.end_reason = LicenseEndReason.REPLACED_BY_PERMANENT
    temporary.save(update_fields=["status", "ended_at", "end_reason"])
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
        raise DomainError(
            "machine_already_licensed",
            f"Machine {machine.hostname} already holds an active permanent CAL for "
            f"{_product_label(key_pack.product_version)}.",
        ) from exc
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
    """Issue a 90-day temporary CAL (rules 3, 4, 5, 6)."""
    with transaction.atomic():
        machine = lock_one(ClientMachine.objects, machine.pk)
        check_machine_can_receive(
            machine=machine, license_server=license_server, product_version=product_version
        )
        used = (
            License.objects.temporary()
            .filter(machine=machine, product_version=product_version)
            .first()
        )
        if used is not None:
            raise DomainError(
                "temporary_already_used",
                f"Machine {machine.hostname} already had temporary CAL #{used.pk} for "
                f"{_product_label(product_version)}; a machine gets one only once.",
            )
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
            raise DomainError(
                "temporary_already_used",
                f"Machine {machine.hostname} already had a temporary CAL for "
                f"{_product_label(product_version)}.",
            ) from exc
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
        locked.status = LicenseStatus.EXPIRED
        locked.ended_at = now
        locked.end_reason = LicenseEndReason.EXPIRED_90_DAYS
        locked.save(update_fields=["status", "ended_at", "end_reason"])
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
