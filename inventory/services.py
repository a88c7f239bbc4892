"""Client machines: added, edited and retired, never deleted (rule 10)."""

from django.db import transaction
from django.utils import timezone

from core.audit import audit_record
from core.errors import DomainCode, DomainError
from core.locks import lock_one
from core.services import create_validated, update_validated
from inventory.models import ClientMachine, MachineStatus

MACHINE_EDITABLE_FIELDS = ("hostname", "os_edition", "hardware_id", "asset_tag", "location", "owner", "notes")


def machine_create(*, actor, **fields) -> ClientMachine:
    fields.pop("status", None)  # a machine starts active; retiring is its own step
    with transaction.atomic():
        return create_validated(
            instance=ClientMachine(**fields), actor=actor, action="machine.created",
            summary=f"Machine {fields.get('hostname')} added.",
        )


def machine_update(*, machine: ClientMachine, actor, data: dict) -> ClientMachine:
    """Edit a machine's details. ``status: retired`` retires it (the only way to change status)."""
    data = dict(data)
    new_status = data.pop("status", None)
    with transaction.atomic():
        machine = lock_one(ClientMachine.objects, machine.pk)
        machine, _ = update_validated(
            instance=machine, data=data, fields=MACHINE_EDITABLE_FIELDS, actor=actor,
            action="machine.updated", summary=f"Machine {machine.hostname} edited.",
        )
        if new_status is not None and new_status != machine.status:
            if new_status != MachineStatus.RETIRED:
                raise DomainError(
                    DomainCode.INVALID_STATE,
                    f"Machine {machine.hostname} is retired; a retired machine is not "
                    "brought back into service.",
                )
            machine = machine_retire(machine=machine, actor=actor)
    return machine


def machine_retire(*, machine: ClientMachine, actor) -> ClientMachine:
    """Retire a machine: it keeps its history, and nothing is issued or transferred to it."""
    with transaction.atomic():
        machine = lock_one(ClientMachine.objects, machine.pk)
        if machine.status == MachineStatus.RETIRED:
            raise DomainError(DomainCode.INVALID_STATE, f"Machine {machine.hostname} is already retired.")
        machine.status = MachineStatus.RETIRED
        machine.retired_at = timezone.now()
        machine.save(update_fields=["status", "retired_at"])
        audit_record(
            actor=actor, action="machine.retired", obj=machine,
            summary=f"Machine {machine.hostname} retired.",
            data={"before": {"status": MachineStatus.ACTIVE}, "after": {"status": machine.status}},
            refs={"machine": [machine.pk]},
        )
    return machine
