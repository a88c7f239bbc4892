"""Writing an import's plan: new machines and key packs first, then licenses, each change
with its audit event, chained by one batch writer."""

from datetime import date

from core.audit import AuditBatch
from inventory.models import (
    ClientMachine,
    OsEdition,
)
from licensing.models import (
    KeyPack,
    KeyPackOrigin,
    License,
    LicenseKind,
    LicenseStatus,
)
from licensing.services.imports.plan import Planner
from licensing.services.imports.planned import NewMachine, PackPlan
from licensing.services.imports.report import ImportReport
from licensing.services.licenses import license_snapshot

WRITE_BATCH = 2000


class ImportAuditBatch(AuditBatch):
    """The chain writer for many events, with the importing administrator as every actor."""

    def __init__(self, actor):
        super().__init__(batch_size=WRITE_BATCH)
        self.actor = actor

    def add(self, **event):
        return super().add(actor=self.actor, **event)


def _source(file, line):
    return {"file": file, "line": line}


def apply_plan(planner: Planner, report: ImportReport, actor, installed_on: date) -> ImportAuditBatch:
    """Write the plan. New machines and key packs are inserted before the audit chain head
    is locked: a concurrent service inserting the same host name or KeyPackId takes the
    head after its insert, so holding the head here could close a cycle."""
    server = planner.server
    now = planner.now
    # Machines first, then key packs, then licenses (the fixed lock order).
    needed = {
        new.machine.hostname.lower()
        for new in planner.new_licenses
        if isinstance(new.machine, NewMachine)
    }
    new_machines = [m for key, m in planner.new_machines.items() if key in needed]
    for start in range(0, len(new_machines), WRITE_BATCH):
        batch = new_machines[start:start + WRITE_BATCH]
        instances = ClientMachine.objects.bulk_create([
            ClientMachine(hostname=m.hostname, os_edition=OsEdition.OTHER, hardware_id=m.hardware_id)
            for m in batch
        ])
        for plan, machine in zip(batch, instances, strict=True):
            plan.pk = machine.pk
    report.created["machine"] += len(new_machines)

    pack_events = []
    for key_pack_id, plan in planner.packs.items():
        if plan.blocked:
            continue
        row = plan.row
        if plan.existing is None:
            pack = KeyPack.objects.create(
                license_server=server, key_pack_id=key_pack_id,
                product_version=row.product_version, cal_type=row.cal_type,
                license_program=row.license_program, total_licenses=row.total_licenses,
                installed_on=installed_on, expires_on=row.expires_on,
                description=row.description, origin=KeyPackOrigin.ORIGINAL,
            )
            plan.instance = pack
            report.created["key_pack"] += 1
            pack_events.append(dict(
                action="import.key_pack_created", obj=pack,
                summary=f"Key pack {key_pack_id} ({row.total_licenses} "
                f"{pack.get_cal_type_display()} CALs, {pack.get_product_version_display()}) "
                f"imported from {server.name}.",
                data={"after": {
                    "id": pack.pk, "key_pack_id": key_pack_id,
                    "product_version": pack.product_version, "cal_type": pack.cal_type,
                    "license_program": pack.license_program,
                    "total_licenses": pack.total_licenses, "installed_on": installed_on,
                    "expires_on": pack.expires_on, "key_pack_type": row.key_pack_type,
                }, "source": _source(plan.file.name, row.line)},
                refs={"key_pack": [pack.pk], "license_server": [server.pk]},
            ))
        elif plan.changes:
            pack = plan.existing
            for name, (_, after) in plan.changes.items():
                setattr(pack, name, after)
            pack.save(update_fields=list(plan.changes))
            plan.instance = pack
            report.updated["key_pack"] += 1
            pack_events.append(dict(
                action="import.key_pack_updated", obj=pack,
                summary=f"Key pack {key_pack_id} on {server.name} updated by the import.",
                data={"changes": plan.changes, "source": _source(plan.file.name, row.line)},
                refs={"key_pack": [pack.pk], "license_server": [server.pk]},
            ))
        else:
            plan.instance = plan.existing
            report.unchanged["key_pack"] += 1

    # Licenses are locked before the audit head: a service holding a license row takes the
    # head last too.
    locked = {
        lic.pk: lic
        for lic in License.objects.select_for_update()
        .filter(pk__in=sorted(planner.license_updates))
        .order_by("pk")
    } if planner.license_updates else {}
    audit = ImportAuditBatch(actor)
    for plan in new_machines:
        audit.add(
            action="import.machine_created", object_type="clientmachine", object_id=plan.pk,
            summary=f"Machine {plan.hostname} added by the import from {server.name} "
            "(OS edition unknown: other).",
            data={"after": {"id": plan.pk, "hostname": plan.hostname,
                            "os_edition": OsEdition.OTHER, "hardware_id": plan.hardware_id},
                  "source": _source(plan.file, plan.line)},
            refs={"machine": [plan.pk], "license_server": [server.pk]},
        )
    for event in pack_events:
        audit.add(**event)

    if planner.license_updates:
        changed = []
        for pk, update in sorted(planner.license_updates.items()):
            lic = locked[pk]
            ends = "status" in update.changes
            if ends and lic.status != LicenseStatus.ACTIVE:
                continue  # ended meanwhile: nothing left to end
            for name, (_, after) in update.changes.items():
                if name not in ("status", "end_reason"):
                    setattr(lic, name, after)
            if ends:
                lic.end(status=update.changes["status"][1], reason=update.changes["end_reason"][1], at=now,
                        save=False)
                update.changes["ended_at"] = [None, now]
            changed.append((lic, update))
        fields = sorted({name for _, u in changed for name in u.changes})
        for start in range(0, len(changed), WRITE_BATCH):
            License.objects.bulk_update([lic for lic, _ in changed[start:start + WRITE_BATCH]], fields)
        for lic, update in changed:
            audit.add(
                action="import.license_updated", obj=lic,
                summary=f"CAL #{lic.pk} (LicenseId {lic.license_id}) updated by the import from "
                f"{server.name}: {update.why}.",
                data={"changes": update.changes, "source": _source(update.file, update.line)},
                refs={"license": [lic.pk], "machine": [lic.machine_id],
                      "key_pack": [lic.key_pack_id], "license_server": [server.pk]},
            )
        report.updated["license"] += len(changed)

    for start in range(0, len(planner.new_licenses), WRITE_BATCH):
        batch = planner.new_licenses[start:start + WRITE_BATCH]
        instances, hostnames = [], []
        for new in batch:
            machine = new.machine
            hostnames.append(machine.hostname)
            pack = new.pack.instance if isinstance(new.pack, PackPlan) else new.pack
            instances.append(License(
                license_id=new.row.license_id, machine_id=machine.pk, key_pack=pack,
                license_server=server, product_version=new.product_version, kind=new.kind,
                status=new.status, issued_at=new.row.issued_at, expires_at=new.expires_at,
                ended_at=new.ended_at, end_reason=new.end_reason,
                hardware_id=new.row.hardware_id,
            ))
        License.objects.bulk_create(instances)
        for new, lic, hostname in zip(batch, instances, hostnames, strict=True):
            what = "Permanent" if lic.kind == LicenseKind.PERMANENT else "Temporary"
            source = (f"from key pack {new.row.key_pack_id} " if lic.kind == LicenseKind.PERMANENT
                      else "")
            ended = "" if lic.status == LicenseStatus.ACTIVE else f", already {lic.status}"
            audit.add(
                action="import.license_created", obj=lic,
                summary=f"{what} CAL #{lic.pk} (LicenseId {lic.license_id}, "
                f"{lic.get_product_version_display()}) on {hostname} imported "
                f"{source}from {server.name}{ended}.",
                data={"after": license_snapshot(lic),
                      "source": _source(new.file, new.row.line) | {"license_status": new.row.status}},
                refs={"license": [lic.pk], "machine": [lic.machine_id],
                      "key_pack": [lic.key_pack_id], "license_server": [server.pk]},
            )
    report.created["license"] += len(planner.new_licenses)
    return audit
