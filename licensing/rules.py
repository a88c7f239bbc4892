"""The rules of DOMAIN.md as plain functions over values.

Each function returns a ``Refusal`` (the rule's code and a sentence naming the objects
involved) or None. The services call them on rows they hold under lock and raise the
refusal; the import planner calls them on the rows it plans in memory and reports the
refusal against a line of the file. Neither needs the other, and these need no database.
"""

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from core.errors import DomainCode, DomainError
from inventory.models import OS_EDITIONS_WITH_BUILTIN_CAL, OsEdition
from licensing.choices import REVOCATION_FROM, CalType, LicenseKind, LicenseStatus, WindowsVersion, version_rank


@dataclass(frozen=True)
class Refusal:
    code: DomainCode
    detail: str

    def error(self) -> DomainError:
        return DomainError(self.code, self.detail)


def refuse_if(refusal: Refusal | None) -> None:
    """Raise the refusal, if there is one."""
    if refusal is not None:
        raise refusal.error()


def product_label(product_version: str) -> str:
    return WindowsVersion(product_version).label


# Rules 1 and 2: what a key pack may issue.
def key_pack_issue_refusal(*, key_pack_id: int, server_name: str, cal_type: str, issued: int,
                           total: int) -> Refusal | None:
    if cal_type == CalType.PER_USER:
        return Refusal(
            DomainCode.PER_USER_KEY_PACK,
            f"Key pack {key_pack_id} on {server_name} is per user; per-user packs are inventory only "
            "and never issue to a machine.",
        )
    if issued >= total:
        return Refusal(
            DomainCode.NO_LICENSES_AVAILABLE,
            f"Key pack {key_pack_id} on {server_name} has no licenses available ({issued} of {total} issued).",
        )
    return None


# Rules 3, 4 and 6: what a machine may receive. ``held`` names the active permanent CAL the
# machine already holds for the product (e.g. "active permanent CAL #12"), or is None.
def machine_receive_refusal(*, hostname: str, retired: bool, os_edition: str, server_name: str,
                            builtin_cal: bool, product_version: str, held: str | None) -> Refusal | None:
    if retired:
        return Refusal(
            DomainCode.MACHINE_RETIRED,
            f"Machine {hostname} is retired; nothing is issued or transferred to it.",
        )
    if os_edition in OS_EDITIONS_WITH_BUILTIN_CAL and builtin_cal:
        return Refusal(
            DomainCode.OS_INCLUDES_CAL,
            f"Machine {hostname} runs {OsEdition(os_edition).label}, which includes its TS CAL on license "
            f"server {server_name}; it receives no CAL.",
        )
    return already_licensed_refusal(hostname=hostname, product_version=product_version, held=held)


def already_licensed_refusal(*, hostname: str, product_version: str, held: str | None) -> Refusal | None:
    if held is None:
        return None
    return Refusal(
        DomainCode.MACHINE_ALREADY_LICENSED,
        f"Machine {hostname} already holds {held} for {product_label(product_version)}.",
    )


# Rule 5: a temporary CAL once per machine and product. ``used`` names the earlier one
# (e.g. "temporary CAL #3").
def temporary_refusal(*, hostname: str, product_version: str, used: str | None) -> Refusal | None:
    if used is None:
        return None
    return Refusal(
        DomainCode.TEMPORARY_ALREADY_USED,
        f"Machine {hostname} already had {used} for {product_label(product_version)}; a machine "
        "gets one only once.",
    )


def transferability_reason(*, kind: str, status: str, transferred_from_id) -> str | None:
    """Why a license cannot be the source of a transfer (rule 7), or None when it can.

    A plain function of three columns, so list endpoints can derive it from ``values()``.
    """
    if kind != LicenseKind.PERMANENT:
        return "temporary CALs cannot be transferred"
    if status == LicenseStatus.TRANSFERRED:
        return "one-time transfer used: it has been transferred away"
    if status != LicenseStatus.ACTIVE:
        return "it is no longer active"
    if transferred_from_id is not None:
        return "one-time transfer used: it is itself the product of a transfer"
    return None


# Rule 7 on the source license: one time only, permanent and active, one open request.
# ``pending`` names an open transfer request of the license (e.g. "#4 (approved)").
def transfer_source_refusal(*, license_pk: int, hostname: str, kind: str, status: str, transferred_from_id,
                            pending: str | None) -> Refusal | None:
    if transferred_from_id is not None:
        return Refusal(
            DomainCode.ALREADY_TRANSFERRED,
            f"CAL #{license_pk} on {hostname} is itself the product of a transfer (from CAL "
            f"#{transferred_from_id}); its one-time transfer is used.",
        )
    if status == LicenseStatus.TRANSFERRED:
        return Refusal(
            DomainCode.ALREADY_TRANSFERRED,
            f"CAL #{license_pk} on {hostname} has already been transferred away; its one-time transfer is used.",
        )
    if kind != LicenseKind.PERMANENT or status != LicenseStatus.ACTIVE:
        return Refusal(
            DomainCode.NOT_TRANSFERABLE,
            f"CAL #{license_pk} on {hostname} is {LicenseStatus(status).label.lower()} and "
            f"{LicenseKind(kind).label.lower()}; only an active permanent CAL can be transferred.",
        )
    if pending is not None:
        return Refusal(
            DomainCode.TRANSFER_PENDING,
            f"CAL #{license_pk} on {hostname} already has open transfer request {pending}.",
        )
    return None


def same_machine_refusal(*, license_pk: int, source_machine_pk: int, target_pk: int,
                         target_hostname: str) -> Refusal | None:
    if target_pk != source_machine_pk:
        return None
    return Refusal(
        DomainCode.SAME_MACHINE,
        f"CAL #{license_pk} is already on {target_hostname}; the target must be another machine.",
    )


# Rule 9: state machines move only along their arrows.
def arrow_refusal(*, what: str, state_label: str, allowed: bool, verb: str) -> Refusal | None:
    if allowed:
        return None
    return Refusal(DomainCode.INVALID_STATE, f"{what} is {state_label.lower()}; it cannot {verb}.")


# Rule 8: four eyes.
def four_eyes_refusal(*, transfer_pk: int, requested_by_pk: int, actor_pk: int, actor_name: str,
                      verb: str) -> Refusal | None:
    if requested_by_pk != actor_pk:
        return None
    return Refusal(
        DomainCode.FOUR_EYES,
        f"Transfer #{transfer_pk} was requested by {actor_name}; another administrator must {verb} it.",
    )


def below_issued_refusal(*, key_pack_id: int, server_name: str, issued: int, total: int) -> Refusal | None:
    if total >= issued:
        return None
    return Refusal(
        DomainCode.BELOW_ISSUED,
        f"Key pack {key_pack_id} on {server_name} has issued {issued} licenses; its total cannot go down to "
        f"{total}.",
    )


# Rule 13: a license server holds CALs of its own Windows version or older.
def version_refusal(*, server_name: str, server_version: str, product_version: str) -> Refusal | None:
    if version_rank(product_version) <= version_rank(server_version):
        return None
    return Refusal(
        DomainCode.VERSION_NOT_SUPPORTED,
        f"License server {server_name} runs {product_label(server_version)}; it cannot hold "
        f"{product_label(product_version)} CALs (a license server holds CALs of its own Windows version or older).",
    )


def server_version_refusal(*, server_name: str, server_version: str, newest_held: str | None) -> Refusal | None:
    """Rule 13 the other way round: a server is not set back below the CALs it holds."""
    if newest_held is None or version_rank(newest_held) <= version_rank(server_version):
        return None
    return Refusal(
        DomainCode.VERSION_NOT_SUPPORTED,
        f"License server {server_name} holds {product_label(newest_held)} CALs; it cannot run "
        f"{product_label(server_version)}, which is older (a license server holds CALs of its own Windows "
        "version or older).",
    )


# Rule 12: revocation in RD Licensing Manager.
REVOKE_QUOTA_PERCENT = 20
QUOTA_HOLD_DAYS = 89


def revoke_quota(installed: int) -> int:
    """How many per-device CALs of one version on one server may be revoked at one time."""
    return installed * REVOKE_QUOTA_PERCENT // 100


def quota_holds_until(*, revoked_at: datetime, expires_at: datetime | None) -> datetime:
    """Until when a revoked CAL holds its place in the quota: the date it would have expired,
    or 89 days after the revocation when that is unknown."""
    return expires_at if expires_at is not None else revoked_at + timedelta(days=QUOTA_HOLD_DAYS)


def revoke_refusal(*, license_pk: int, hostname: str, server_name: str, server_version: str, kind: str,
                   cal_type: str | None, status: str, pending: str | None = None) -> Refusal | None:
    """``pending`` names an open transfer request of the CAL (e.g. "#4 (approved)")."""
    if version_rank(server_version) < version_rank(REVOCATION_FROM):
        return Refusal(
            DomainCode.REVOKE_NOT_SUPPORTED,
            f"License server {server_name} runs {product_label(server_version)}; revocation exists from "
            f"{product_label(REVOCATION_FROM)} on. CAL #{license_pk} on {hostname} moves by the one-time transfer.",
        )
    if kind != LicenseKind.PERMANENT:
        return Refusal(
            DomainCode.REVOKE_NOT_SUPPORTED,
            f"CAL #{license_pk} on {hostname} is temporary; only permanent per-device CALs are revoked.",
        )
    if cal_type == CalType.PER_USER:
        return Refusal(
            DomainCode.REVOKE_NOT_SUPPORTED,
            f"CAL #{license_pk} on {hostname} is per user; only permanent per-device CALs are revoked.",
        )
    if status != LicenseStatus.ACTIVE:
        return Refusal(
            DomainCode.REVOKE_NOT_SUPPORTED,
            f"CAL #{license_pk} on {hostname} is {LicenseStatus(status).label.lower()}; only an active CAL is "
            "revoked.",
        )
    if pending is not None:
        return Refusal(
            DomainCode.TRANSFER_PENDING,
            f"CAL #{license_pk} on {hostname} has open transfer request {pending}; cancel it before revoking the "
            "CAL.",
        )
    return None


def revoke_quota_refusal(*, server_name: str, product_version: str, installed: int, held: int,
                         next_free: date | None) -> Refusal | None:
    """``held``: the revoked CALs that hold a place in the quota at the revocation's time (at
    its busiest point, for one recorded late); ``next_free``: when the first of them frees."""
    quota = revoke_quota(installed)
    if held < quota:
        return None
    when = f" The next place frees on {next_free:%Y-%m-%d}." if next_free else ""
    return Refusal(
        DomainCode.REVOKE_QUOTA_EXCEEDED,
        f"{server_name} has {installed} {product_label(product_version)} per-device CALs installed: at most "
        f"{quota} ({REVOKE_QUOTA_PERCENT}%) may be revoked at one time, and {held} already are.{when}",
    )
