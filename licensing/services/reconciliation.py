"""Reconciliation: after each snapshot, where does the license server disagree with the portal?

DOMAIN.md "Snapshots and reconciliation". It runs inside the import's transaction, with the
snapshot's rows still staged (``ImportRow``), and keeps one ``DriftItem`` per disagreement:
new ones are opened (and alerted once), ones seen again keep their state and move their
last snapshot on, and ones a snapshot no longer shows are resolved. Only the kinds the
snapshot can tell are judged: pack kinds need its key pack export, the others its
issued-license export.
"""

from collections import defaultdict
from dataclasses import dataclass
from datetime import timedelta

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Count, Exists, OuterRef, Subquery, Sum
from django.db.models.functions import Lower
from django.utils import timezone

from core.audit import audit_record
from core.errors import DomainCode, DomainError
from core.locks import lock_one
from inventory.models import ClientMachine
from licensing.choices import LicenseEndReason, LicenseStatus, WindowsVersion
from licensing.models import CalType, DriftItem, DriftKind, DriftState, ImportRow, KeyPack, License
from licensing.services.licenses import TEMPORARY_CAL_DAYS

PACK_KINDS = (DriftKind.PACK_MISSING_ON_SERVER, DriftKind.PACK_COUNT_MISMATCH)
LICENSE_KINDS = (
    DriftKind.LICENSE_MISSING_ON_SERVER, DriftKind.TRANSFERRED_SOURCE_STILL_ISSUED, DriftKind.DUPLICATE_ISSUANCE,
    DriftKind.TEMPORARY_OVERDUE, DriftKind.PER_USER_OVER_ALLOCATED,
)
BATCH = 2000


@dataclass
class Finding:
    kind: str
    subject: str
    detail: str
    key_pack_id: int | None = None  # KeyPack pk
    license_id: int | None = None  # License pk
    machine_id: int | None = None
    product_version: str = ""


def listed(job):
    """The staged rows of the snapshot's issued-license export."""
    return ImportRow.objects.filter(job=job).exclude(stage=ImportRow.IGNORED)


def end_absent_licenses(*, server, job, audit, now, report) -> list[Finding]:
    """End the CALs an earlier snapshot listed and this one does not: the server has ended
    them (expired or revoked there). Returns them as findings. The rows are locked already."""
    absent = (
        License.objects.filter(license_server=server, status=LicenseStatus.ACTIVE, last_seen_snapshot__isnull=False,
                               license_id__isnull=False)
        .exclude(Exists(listed(job).filter(license_id=OuterRef("license_id"))))
        .select_related("machine").order_by("pk")
    )
    findings, ended = [], []
    for lic in absent.iterator(chunk_size=BATCH):
        lic.end(status=LicenseStatus.EXPIRED, reason=LicenseEndReason.ABSENT_ON_SERVER, at=now, save=False)
        ended.append(lic)
        report.ended["license"] += 1
        report.note(f"end CAL #{lic.pk} (LicenseId {lic.license_id}): no longer listed by the server")
        audit.add(
            action="import.license_ended", obj=lic,
            summary=f"CAL #{lic.pk} (LicenseId {lic.license_id}) on {lic.machine.hostname} ended: {server.name} no "
            "longer lists it.",
            data={"before": {"status": LicenseStatus.ACTIVE},
                  "after": {"status": lic.status, "end_reason": lic.end_reason, "ended_at": now}},
            refs={"license": [lic.pk], "machine": [lic.machine_id], "key_pack": [lic.key_pack_id],
                  "license_server": [server.pk]},
        )
        findings.append(Finding(
            DriftKind.LICENSE_MISSING_ON_SERVER, f"license:{lic.pk}",
            f"CAL #{lic.pk} (LicenseId {lic.license_id}) of {lic.machine.hostname} was listed by an earlier snapshot "
            "and is no longer: the server has ended it, and the portal ended it too (absent on server).",
            key_pack_id=lic.key_pack_id, license_id=lic.pk, machine_id=lic.machine_id,
            product_version=lic.product_version,
        ))
        if len(ended) >= BATCH:
            License.objects.bulk_update(ended, ["status", "end_reason", "ended_at"])
            ended = []
    License.objects.bulk_update(ended, ["status", "end_reason", "ended_at"])
    return findings


def _pack_findings(server, key_pack_rows) -> list[Finding]:
    listed_packs = {row.key_pack_id: row for _, row in key_pack_rows if not row.pseudo}
    findings = []
    for pack in KeyPack.objects.with_counts().filter(license_server=server).order_by("pk"):
        row = listed_packs.get(pack.key_pack_id)
        if row is None:
            findings.append(Finding(
                DriftKind.PACK_MISSING_ON_SERVER, f"pack:{pack.key_pack_id}",
                f"Key pack {pack.key_pack_id} ({pack.total_licenses} {pack.get_product_version_display()} "
                f"{pack.get_cal_type_display().lower()} CALs) is recorded in the portal but not installed on "
                f"{server.name}; the portal's record is the evidence for installing it again.",
                key_pack_id=pack.pk, product_version=pack.product_version,
            ))
            continue
        differences = []
        if row.total_licenses != pack.total_licenses:
            differences.append(f"TotalLicenses {row.total_licenses} on the server, {pack.total_licenses} in the "
                               "portal")
        if pack.cal_type == CalType.PER_DEVICE and row.issued_licenses is not None and (
                row.issued_licenses != pack.issued_count):
            differences.append(f"IssuedLicenses {row.issued_licenses} on the server, {pack.issued_count} issued in "
                               "the portal")
        if differences:
            findings.append(Finding(
                DriftKind.PACK_COUNT_MISMATCH, f"pack:{pack.key_pack_id}",
                f"Key pack {pack.key_pack_id} on {server.name}: " + "; ".join(differences) + ".",
                key_pack_id=pack.pk, product_version=pack.product_version,
            ))
    return findings


def _license_findings(server, job, now) -> list[Finding]:
    findings = []
    never_seen = (License.objects.filter(license_server=server, status=LicenseStatus.ACTIVE,
                                         last_seen_snapshot__isnull=True)
                  .select_related("machine").order_by("pk"))
    for lic in never_seen.iterator(chunk_size=BATCH):
        findings.append(Finding(
            DriftKind.LICENSE_MISSING_ON_SERVER, f"license:{lic.pk}",
            f"{lic.get_kind_display()} CAL #{lic.pk} of {lic.machine.hostname} is active in the portal but "
            f"{server.name} has never listed it.",
            key_pack_id=lic.key_pack_id, license_id=lic.pk, machine_id=lic.machine_id,
            product_version=lic.product_version,
        ))
    still_issued = (
        License.objects.filter(license_server=server, status=LicenseStatus.TRANSFERRED)
        .filter(Exists(listed(job).filter(license_id=OuterRef("license_id"), expires_at__lt=now)))
        .select_related("machine").order_by("pk")
    )
    for lic in still_issued.iterator(chunk_size=BATCH):
        findings.append(Finding(
            DriftKind.TRANSFERRED_SOURCE_STILL_ISSUED, f"license:{lic.pk}",
            f"CAL #{lic.pk} (LicenseId {lic.license_id}) of {lic.machine.hostname} was transferred away, and "
            f"{server.name} still lists it after its expiry date.",
            key_pack_id=lic.key_pack_id, license_id=lic.pk, machine_id=lic.machine_id,
            product_version=lic.product_version,
        ))
    products = dict(KeyPack.objects.filter(license_server=server).values_list("key_pack_id", "product_version"))
    # Counted by the database: only the hosts listed more than once come back, however long the file.
    product_of = KeyPack.objects.filter(license_server=server, key_pack_id=OuterRef("key_pack_id"))
    listed_per_host = dict(
        ((key, product), n) for key, product, n in
        listed(job).filter(stage=ImportRow.PERMANENT)
        .annotate(product=Subquery(product_of.values("product_version")[:1])).filter(product__isnull=False)
        .values("computer_key", "product").annotate(n=Count("id")).filter(n__gt=1)
        .values_list("computer_key", "product", "n")
    )
    duplicates = sorted(listed_per_host)
    machines = dict(ClientMachine.objects.annotate(key=Lower("hostname"))
                    .filter(key__in=[key for key, _ in duplicates]).values_list("key", "pk"))
    for key, product in duplicates:
        findings.append(Finding(
            DriftKind.DUPLICATE_ISSUANCE, f"host:{key}|{product}",
            f"{server.name} lists {listed_per_host[(key, product)]} active {WindowsVersion(product).label} "
            f"per-device CALs for {key} (a re-imaged PC with a new hardware ID burns a second CAL).",
            machine_id=machines.get(key), product_version=product,
        ))
    overdue = (listed(job).filter(stage=ImportRow.TEMPORARY, issued_at__lt=now - timedelta(days=TEMPORARY_CAL_DAYS))
               .order_by("id").values_list("license_id", "computer", "issued_at"))
    batch = []
    for row in overdue.iterator(chunk_size=BATCH):
        batch.append(row)
        if len(batch) >= BATCH:
            findings += _overdue(server, batch)
            batch = []
    findings += _overdue(server, batch)
    installed = dict(
        KeyPack.objects.filter(license_server=server, cal_type=CalType.PER_USER).values("product_version")
        .annotate(n=Sum("total_licenses")).values_list("product_version", "n")
    )
    issued = defaultdict(int)
    for key_pack_id, n in (listed(job).filter(stage=ImportRow.PER_USER).values("key_pack_id")
                           .annotate(n=Count("id")).values_list("key_pack_id", "n")):
        if key_pack_id in products:
            issued[products[key_pack_id]] += n
    for product, n in sorted(issued.items()):
        if n > installed.get(product, 0):
            findings.append(Finding(
                DriftKind.PER_USER_OVER_ALLOCATED, f"product:{product}",
                f"{server.name} lists {n} {WindowsVersion(product).label} per-user CALs, but "
                f"{installed.get(product, 0)} are installed: the server does not enforce per-user CALs.",
                product_version=product,
            ))
    return findings


def _overdue(server, rows) -> list[Finding]:
    recorded = {
        license_id: (pk, machine_id, product)
        for license_id, pk, machine_id, product in License.objects.filter(
            license_server=server, license_id__in=[r[0] for r in rows]
        ).values_list("license_id", "pk", "machine_id", "product_version")
    }
    findings = []
    for license_id, computer, issued_at in rows:
        pk, machine_id, product = recorded.get(license_id, (None, None, ""))
        findings.append(Finding(
            DriftKind.TEMPORARY_OVERDUE, f"licenseid:{license_id}",
            f"Temporary CAL LicenseId {license_id} of {computer} was issued on {issued_at:%Y-%m-%d} and "
            f"{server.name} still lists it, more than {TEMPORARY_CAL_DAYS} days later.",
            license_id=pk, machine_id=machine_id, product_version=product,
        ))
    return findings


def reconcile(*, server, snapshot, job, key_pack_rows, lists_key_packs: bool, lists_licenses: bool, ended,
              audit, now, report) -> list[DriftItem]:
    """Bring the server's drift items in step with this snapshot. ``ended`` are the findings
    of ``end_absent_licenses``. Returns the items it opened."""
    kinds = (PACK_KINDS if lists_key_packs else ()) + (LICENSE_KINDS if lists_licenses else ())
    findings = list(ended)
    if lists_key_packs:
        findings += _pack_findings(server, key_pack_rows)
    if lists_licenses:
        findings += _license_findings(server, job, now)
    live = {
        (item.kind, item.subject): item
        for item in DriftItem.objects.select_for_update()
        .filter(license_server=server, kind__in=kinds).exclude(state=DriftState.RESOLVED)
    }
    opened, seen_again = [], []
    for finding in findings:
        item = live.pop((finding.kind, finding.subject), None)
        if item is not None:
            item.last_seen_snapshot = snapshot
            item.detail = finding.detail
            seen_again.append(item)
            continue
        opened.append(DriftItem(
            kind=finding.kind, license_server=server, subject=finding.subject, key_pack_id=finding.key_pack_id,
            license_id=finding.license_id, machine_id=finding.machine_id, product_version=finding.product_version,
            detail=finding.detail, first_seen_snapshot=snapshot, last_seen_snapshot=snapshot,
        ))
    DriftItem.objects.bulk_update(seen_again, ["last_seen_snapshot", "detail"], batch_size=BATCH)
    DriftItem.objects.bulk_create(opened, batch_size=BATCH)
    for item in opened:
        audit.add(
            action="drift.opened", obj=item, summary=f"Drift #{item.pk} opened on {server.name}: {item.detail}",
            data={"kind": item.kind, "subject": item.subject, "snapshot": snapshot.pk},
            refs=_refs(item),
        )
    resolved = list(live.values())
    for item in resolved:
        item.state, item.resolved_snapshot = DriftState.RESOLVED, snapshot
        audit.add(
            action="drift.resolved", obj=item,
            summary=f"Drift #{item.pk} on {server.name} resolved: snapshot #{snapshot.pk} no longer shows it.",
            data={"kind": item.kind, "subject": item.subject, "snapshot": snapshot.pk},
            refs=_refs(item),
        )
    DriftItem.objects.bulk_update(resolved, ["state", "resolved_snapshot"], batch_size=BATCH)
    report.drift.update({"opened": len(opened), "seen_again": len(seen_again), "resolved": len(resolved)})
    return opened


def _refs(item: DriftItem) -> dict:
    return {"license_server": [item.license_server_id], "key_pack": [item.key_pack_id],
            "license": [item.license_id], "machine": [item.machine_id]}


def drift_acknowledge(*, item: DriftItem, actor, note: str) -> DriftItem:
    """An admin accepts an open drift item, with a note. A later snapshot still resolves it."""
    note = (note or "").strip()
    if not note:
        raise ValidationError({"note": "Say why the drift is accepted."})
    with transaction.atomic():
        item = lock_one(DriftItem.objects.select_related("license_server"), item.pk)
        if item.state != DriftState.OPEN:
            raise DomainError(
                DomainCode.INVALID_STATE,
                f"Drift #{item.pk} is {item.get_state_display().lower()}; only an open item can be acknowledged.",
            )
        item.state = DriftState.ACKNOWLEDGED
        item.acknowledged_by = actor
        item.acknowledged_at = timezone.now()
        item.note = note
        item.save(update_fields=["state", "acknowledged_by", "acknowledged_at", "note"])
        audit_record(
            actor=actor, action="drift.acknowledged", obj=item,
            summary=f"Drift #{item.pk} on {item.license_server.name} acknowledged by {actor.get_username()}: {note}",
            data={"before": {"state": DriftState.OPEN}, "after": {"state": item.state}, "note": note},
            refs=_refs(item),
        )
    return item
