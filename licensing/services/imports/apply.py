"""The apply step: writing what the plan decided, each change with its audit event.

New key packs and machines are inserted before the audit chain's head is locked: a service
that inserts the same KeyPackId or host name at the same moment takes the head after its
insert, so holding the head here could close a cycle. Everything the import changes after
that was locked beforehand, in the fixed lock order (``licensing.services.imports``).
"""

from array import array
from datetime import date

from django.db.models import Min
from django.db.models.functions import Lower

from core.audit import AuditBatch
from core.bulk import insert_rows
from inventory.models import ClientMachine, OsEdition
from licensing import rules
from licensing.models import (
    ImportRow,
    KeyPack,
    KeyPackOrigin,
    License,
    LicenseKind,
    LicenseStatus,
    PerUserIssuance,
    Revocation,
    Snapshot,
    WindowsVersion,
)
from licensing.services.imports.plan import ChunkPlan, Planner
from licensing.services.imports.report import ImportReport
from licensing.services.licenses import license_snapshot

WRITE_BATCH = 2000
LICENSE_FIELDS = ("license_id", "machine_id", "key_pack_id", "license_server_id", "product_version", "kind", "status",
                  "issued_at", "expires_at", "ended_at", "end_reason", "hardware_id", "last_seen_snapshot_id")


class ImportAuditBatch(AuditBatch):
    """The chain writer for many events, with the importing user as every actor."""

    def __init__(self, actor):
        super().__init__(batch_size=WRITE_BATCH)
        self.actor = actor

    def add(self, **event):
        return super().add(actor=self.actor, **event)


def source(file, line) -> dict:
    return {"file": file, "line": line}


def write_key_packs(planner: Planner, report: ImportReport, *, installed_on: date) -> list[dict]:
    """Create and update the planned key packs; returns their audit events, written once the
    head is taken."""
    server = planner.server
    events = []
    for key_pack_id, plan in planner.packs.items():
        row = plan.row
        if plan.blocked:
            continue
        if plan.existing is None:
            pack = KeyPack.objects.create(
                license_server=server, key_pack_id=key_pack_id, product_version=row.product_version,
                cal_type=row.cal_type, license_program=row.license_program, total_licenses=row.total_licenses,
                installed_on=installed_on, expires_on=row.expires_on, description=row.description,
                origin=KeyPackOrigin.ORIGINAL,
            )
            report.created["key_pack"] += 1
            report.note(f"create key pack {key_pack_id}: {row.total_licenses} {pack.get_cal_type_display().lower()} "
                        f"CALs, {pack.get_product_version_display()}, {row.license_program}")
            events.append(dict(
                action="import.key_pack_created", obj=pack,
                summary=f"Key pack {key_pack_id} ({row.total_licenses} {pack.get_cal_type_display()} CALs, "
                f"{pack.get_product_version_display()}) imported from {server.name}.",
                data={"after": {
                    "id": pack.pk, "key_pack_id": key_pack_id, "product_version": pack.product_version,
                    "cal_type": pack.cal_type, "license_program": pack.license_program,
                    "total_licenses": pack.total_licenses, "installed_on": installed_on,
                    "expires_on": pack.expires_on, "key_pack_type": row.key_pack_type,
                }, "source": source(plan.file.name, row.line)},
                refs={"key_pack": [pack.pk], "license_server": [server.pk]},
            ))
        elif plan.changes:
            pack = plan.existing
            for name, (_, after) in plan.changes.items():
                setattr(pack, name, after)
            pack.save(update_fields=list(plan.changes))
            report.updated["key_pack"] += 1
            changes = ", ".join(f"{k} {a} -> {b}" for k, (a, b) in plan.changes.items())
            report.note(f"update key pack {key_pack_id}: {changes}")
            events.append(dict(
                action="import.key_pack_updated", obj=pack,
                summary=f"Key pack {key_pack_id} on {server.name} updated by the import.",
                data={"changes": plan.changes, "source": source(plan.file.name, row.line)},
                refs={"key_pack": [pack.pk], "license_server": [server.pk]},
            ))
        else:
            pack = plan.existing
            report.unchanged["key_pack"] += 1
        plan.instance = pack
    return events


def create_machines(planner: Planner, job, report: ImportReport) -> tuple[array, array]:
    """Create the machines that rows which may become CALs name and the portal does not know,
    each from the first row naming it. Returns the new machines' keys and those rows' ids."""
    machines, rows = array("q"), array("q")
    for stage in (ImportRow.PERMANENT, ImportRow.TEMPORARY):
        candidates = (
            ImportRow.objects.filter(job=job, stage=stage, key_pack_id__in=planner.licensing_pack_ids(stage))
            .exclude(license_id__in=License.objects.filter(license_server=planner.server, license_id__isnull=False)
                     .values("license_id"))
            .exclude(computer_key__in=ClientMachine.objects.annotate(key=Lower("hostname")).values("key"))
            .values("computer_key").annotate(first=Min("id")).values_list("first", flat=True)
        )
        batch = []
        for first in candidates.iterator(chunk_size=WRITE_BATCH):
            batch.append(first)
            if len(batch) >= WRITE_BATCH:
                _create_machine_batch(batch, machines, rows)
                batch = []
        _create_machine_batch(batch, machines, rows)
    report.created["machine"] += len(machines)
    return machines, rows


def _create_machine_batch(row_ids, machines: array, rows: array) -> None:
    if not row_ids:
        return
    staged = list(ImportRow.objects.filter(pk__in=row_ids).order_by("pk").values_list("pk", "computer", "hardware_id"))
    # A key named in both stages is created once, by the first stage.
    known = set(ClientMachine.objects.annotate(key=Lower("hostname"))
                .filter(key__in=[c.lower() for _, c, _ in staged]).values_list("key", flat=True))
    staged = [s for s in staged if s[1].lower() not in known]
    machines.extend(insert_rows(ClientMachine, ("hostname", "os_edition", "hardware_id"),
                                [(computer, OsEdition.OTHER, hardware_id) for _, computer, hardware_id in staged]))
    rows.extend(pk for pk, _, _ in staged)


def machine_events(audit: ImportAuditBatch, planner: Planner, machines: array, rows: array) -> None:
    server = planner.server
    for start in range(0, len(machines), WRITE_BATCH):
        pks, row_ids = machines[start:start + WRITE_BATCH], rows[start:start + WRITE_BATCH]
        where = {pk: (file, line, computer, hardware_id) for pk, file, line, computer, hardware_id in
                 ImportRow.objects.filter(pk__in=list(row_ids))
                 .values_list("pk", "file", "line", "computer", "hardware_id")}
        for pk, row_id in zip(pks, row_ids, strict=True):
            file, line, hostname, hardware_id = where[row_id]
            planner.report.note(f"create machine {hostname} (OS edition other)")
            audit.add(
                action="import.machine_created", object_type="clientmachine", object_id=pk,
                summary=f"Machine {hostname} added by the import from {server.name} (OS edition unknown: other).",
                data={"after": {"id": pk, "hostname": hostname, "os_edition": OsEdition.OTHER.value,
                                "hardware_id": hardware_id},
                      "source": source(planner.file_names[file], line)},
                refs={"machine": [pk], "license_server": [server.pk]},
            )


def write_updates(planner: Planner, updates: dict, audit: ImportAuditBatch, *, now, snapshot: Snapshot) -> None:
    """Apply planned license updates (to rows locked beforehand), each with its event."""
    if not updates:
        return
    server = planner.server
    report = planner.report
    changed = []
    licenses = License.objects.in_bulk(sorted(updates))
    for pk, update in sorted(updates.items()):
        lic = licenses[pk]
        ends = "status" in update.changes
        if ends and lic.status != LicenseStatus.ACTIVE:
            continue  # ended meanwhile: nothing left to end
        for name, (_, after) in update.changes.items():
            if name not in ("status", "end_reason"):
                setattr(lic, name, after)
        if ends:
            lic.end(status=update.changes["status"][1], reason=update.changes["end_reason"][1], at=now, save=False)
            update.changes["ended_at"] = [None, now]
            report.ended["license"] += 1
        else:
            report.updated["license"] += 1
        report.note(f"update CAL #{pk}: {update.why}")
        changed.append((lic, update))
    fields = sorted({name for _, u in changed for name in u.changes})
    License.objects.bulk_update([lic for lic, _ in changed], fields, batch_size=WRITE_BATCH)
    Revocation.objects.bulk_create([
        Revocation(license=lic, license_server=server, product_version=lic.product_version, key_pack_id=lic.key_pack_id,
                   revoked_at=now, holds_quota_until=rules.quota_holds_until(revoked_at=now, expires_at=lic.expires_at),
                   snapshot=snapshot, note=f"Revoked on {server.name}, seen in snapshot #{snapshot.pk}.")
        for lic, _ in changed if lic.status == LicenseStatus.REVOKED
    ])
    for lic, update in changed:
        audit.add(
            action="import.license_updated", obj=lic,
            summary=f"CAL #{lic.pk} (LicenseId {lic.license_id}) updated by the import from {server.name}: "
            f"{update.why}.",
            data={"changes": update.changes, "source": source(update.file, update.line)},
            refs={"license": [lic.pk], "machine": [lic.machine_id], "key_pack": [lic.key_pack_id],
                  "license_server": [server.pk]},
        )


def write_chunk(planner: Planner, chunk: ChunkPlan, audit: ImportAuditBatch, *, snapshot: Snapshot, now) -> None:
    """Write one chunk's plan: its updates, its new CALs and its per-user CALs."""
    server = planner.server
    report = planner.report
    write_updates(planner, chunk.updates, audit, now=now, snapshot=snapshot)
    instances = [
        License(
            license_id=new.row.license_id, machine_id=new.machine.pk, key_pack=new.pack, license_server=server,
            product_version=new.product_version, kind=new.kind, status=new.status, issued_at=new.row.issued_at,
            expires_at=new.expires_at, ended_at=new.ended_at, end_reason=new.end_reason,
            hardware_id=new.row.hardware_id, last_seen_snapshot=snapshot,
        )
        for new in chunk.new_licenses
    ]
    ids = insert_rows(License, LICENSE_FIELDS, [tuple(getattr(lic, f) for f in LICENSE_FIELDS) for lic in instances])
    for pk, new, lic in zip(ids, chunk.new_licenses, instances, strict=True):
        lic.pk = pk
        permanent = lic.kind == LicenseKind.PERMANENT
        pack = f"from key pack {new.row.key_pack_id} " if permanent else ""
        ended = "" if lic.status == LicenseStatus.ACTIVE else f", already {lic.status}"
        product = WindowsVersion(lic.product_version).label
        report.note(f"create {new.kind} CAL LicenseId {new.row.license_id} for {new.row.computer} ({product})"
                    + ("" if new.status == LicenseStatus.ACTIVE else f", {new.status}"))
        audit.add(
            action="import.license_created", obj=lic,
            summary=f"{'Permanent' if permanent else 'Temporary'} CAL #{pk} (LicenseId {lic.license_id}, {product}) "
            f"on {new.machine.hostname} imported {pack}from {server.name}{ended}.",
            data={"after": license_snapshot(lic),
                  "source": source(new.file, new.row.line) | {"license_status": new.row.status}},
            refs={"license": [pk], "machine": [lic.machine_id], "key_pack": [lic.key_pack_id],
                  "license_server": [server.pk]},
        )
    report.created["license"] += len(ids)
    write_per_user(planner, chunk, audit, snapshot=snapshot)


def write_per_user(planner: Planner, chunk: ChunkPlan, audit: ImportAuditBatch, *, snapshot: Snapshot) -> None:
    if not chunk.new_per_user:
        return
    server = planner.server
    report = planner.report
    known = {
        issuance.license_id: issuance
        for issuance in PerUserIssuance.objects.filter(
            license_server=server, license_id__in=[n.row.license_id for n in chunk.new_per_user])
    }
    created, seen = [], []
    for new in chunk.new_per_user:
        issuance = known.get(new.row.license_id)
        if issuance is not None:
            issuance.snapshot = snapshot
            issuance.expires_at = new.row.expires_at
            seen.append(issuance)
            continue
        created.append((new, PerUserIssuance(
            license_server=server, key_pack=new.pack, product_version=new.pack.product_version, user=new.row.user,
            license_id=new.row.license_id, issued_at=new.row.issued_at, expires_at=new.row.expires_at,
            first_snapshot=snapshot, snapshot=snapshot,
        )))
    PerUserIssuance.objects.bulk_update(seen, ["snapshot", "expires_at"], batch_size=WRITE_BATCH)
    report.unchanged["per_user_issuance"] += len(seen)
    PerUserIssuance.objects.bulk_create([issuance for _, issuance in created], batch_size=WRITE_BATCH)
    for new, issuance in created:
        audit.add(
            action="import.per_user_issuance_recorded", object_type="peruserissuance", object_id=issuance.pk,
            summary=f"Per-user CAL LicenseId {issuance.license_id} ({issuance.get_product_version_display()}) of "
            f"{issuance.user} recorded from {server.name}.",
            data={"after": {"id": issuance.pk, "license_id": issuance.license_id, "user": issuance.user,
                            "key_pack": new.pack.pk, "issued_at": issuance.issued_at,
                            "expires_at": issuance.expires_at},
                  "source": source(new.file, new.row.line)},
            refs={"key_pack": [new.pack.pk], "license_server": [server.pk]},
        )
    report.created["per_user_issuance"] += len(created)
