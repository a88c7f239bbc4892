"""The rules of DOMAIN.md as plain functions over values.

Each function returns a ``Refusal`` (the rule's code and a sentence naming the objects
involved) or None. The services call them on rows they hold under lock and raise the
refusal; the import planner calls them on the rows it plans in memory and reports the
refusal against a line of the file. Neither needs the other, and these need no database.
"""

from dataclasses import dataclass

from core.errors import DomainCode, DomainError
from inventory.models import OS_EDITIONS_WITH_BUILTIN_CAL, OsEdition
from licensing.choices import CalType, LicenseKind, LicenseStatus, WindowsVersion


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
