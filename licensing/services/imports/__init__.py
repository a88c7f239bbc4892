"""Importing a license server's ``Export-Csv`` files: every import is a snapshot.

An import is an ``ImportJob`` (``core.jobs``): started from the page, the API or the shell
(``import_start``), it runs in the background (``run_import_job``) in four steps:

1. parse (``stage``): the stored files stream through the parser; issued-license rows go to
   a staging table, so memory stays flat however long the file;
2. plan (``plan``) and 3. apply (``apply``), a chunk of rows at a time, in one transaction,
   with the services' own rules (``licensing.rules``) and one audit event per change;
4. reconcile (``licensing.services.reconciliation``): the drift between the server and the
   portal, and the ``report`` of it all.

- All or nothing: a file set with any problem writes nothing (the transaction is rolled
  back). A preview is the same job with ``dry_run``, always rolled back.
- Idempotent: key packs match on (server, KeyPackId), licenses on (server, LicenseId);
  a second import of one export changes nothing but its own snapshot.
- Lock order, as the services': the license server (one import of a server at a time),
  the machines the files name, the server's key packs, the licenses the import may change,
  and the audit chain's head last (``apply``).
"""

import io
import logging
import uuid
from datetime import date
from pathlib import PurePath

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files import File
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from core import jobs, roles
from core.files import import_storage
from licensing import alerts
from licensing.importers import wmi
from licensing.importers.export_csv import ERROR, Problem
from licensing.models import (
    ImportJob,
    ImportRow,
    KeyPack,
    License,
    LicenseServer,
    Snapshot,
)
from licensing.services import reconciliation
from licensing.services.collectors import collector_server_id
from licensing.services.imports.apply import (
    ImportAuditBatch,
    create_machines,
    machine_events,
    write_chunk,
    write_key_packs,
)
from licensing.services.imports.plan import Planner
from licensing.services.imports.report import ImportReport, counts_text, file_summary
from licensing.services.imports.stage import Staged, stage_files, unstage

__all__ = ["ImportReport", "import_confirm", "import_start", "license_server_import", "run_import_job"]

logger = logging.getLogger(__name__)

CHUNK_ROWS = 2000
STAGES = (ImportRow.ENDED, ImportRow.PERMANENT, ImportRow.TEMPORARY, ImportRow.PER_USER)


def _user(actor):
    return None if actor is None or isinstance(actor, str) else actor


def import_start(*, license_server: LicenseServer, files, actor, date_order: str = "mdy", dry_run: bool = False,
                 installed_on: date | None = None, preview_of: ImportJob | None = None,
                 enqueue: bool = True) -> ImportJob:
    """Store the files and queue their import. ``files`` are (name, binary file) pairs, or
    the stored files of ``preview_of``. Refused (``ValidationError``) for bad options, and
    (``ServiceUnavailable``) while the broker is down; then nothing is stored. Only an
    administrator, or the collector account bound to ``license_server``, may start one
    (``PermissionDenied``); the shell acts as the system."""
    import_permission(actor, license_server)
    if date_order not in wmi.DATE_ORDERS:
        raise ValidationError({"date_order": f"Choose one of {', '.join(wmi.DATE_ORDERS)}."})
    if preview_of is None and not files:
        raise ValidationError({"files": "Give at least one export file."})
    if enqueue:
        jobs.require_broker()
    if preview_of is not None:
        stored = preview_of.files
    else:
        store = import_storage()
        folder = f"import-{uuid.uuid4().hex}"
        stored = []
        for index, (name, handle) in enumerate(files):
            name = PurePath(str(name)).name[:200] or f"file-{index}"
            saved = store.save(f"{folder}/{index}.csv", File(handle, name=name))
            stored.append({"name": name, "stored": saved, "size": store.size(saved)})
    with transaction.atomic():
        job = ImportJob.objects.create(
            license_server=license_server, requested_by=_user(actor), dry_run=dry_run, date_order=date_order,
            installed_on=installed_on, files=stored, preview_of=preview_of,
        )
        if enqueue:
            jobs.enqueue(job)
    return job


def import_permission(actor, license_server: LicenseServer) -> None:
    if actor is None or isinstance(actor, str):
        return  # the shell, a scheduled task
    role = roles.role_of(actor)
    if role == roles.COLLECTOR:
        if collector_server_id(actor) != license_server.pk:
            raise PermissionDenied("A collector account sends the exports of its own license server only.")
    elif role != roles.ADMIN:
        raise PermissionDenied("Only administrators import license server exports.")


def import_confirm(*, preview: ImportJob, actor) -> ImportJob:
    """Import for real the files a finished, clean preview read; once."""
    with transaction.atomic():
        preview = ImportJob.objects.select_for_update().get(pk=preview.pk)  # two confirmations meet here
        return _confirm(preview, actor)


def _confirm(preview: ImportJob, actor) -> ImportJob:
    if not preview.dry_run or preview.status != jobs.JobStatus.DONE or preview.problem_count:
        raise ValidationError("Only a finished preview without problems can be imported.")
    if preview.confirmations.exists():
        raise ValidationError("This preview has been imported already; upload the files again for a new snapshot.")
    return import_start(license_server=preview.license_server, files=None, actor=actor,
                        date_order=preview.date_order, installed_on=preview.installed_on, preview_of=preview)


def run_import_job(job: ImportJob, attempt: jobs.Attempt) -> dict:
    """The job's work (``core.jobs.run``): returns the fields it finishes with."""
    return job_fields(job, run_import(job, attempt))


def job_fields(job: ImportJob, report: ImportReport) -> dict:
    """What a finished job records: a real import with problems fails, with the reason."""
    fields = {"summary": report.summary(), "problems": report.problems_json(), "problem_count": report.error_count}
    if report.refused and not job.dry_run:
        fields.update(status=jobs.JobStatus.FAILED,
                      error=f"The files have {report.error_count} problem(s); nothing was imported.")
    return fields


def run_import(job: ImportJob, attempt: jobs.Attempt | None = None) -> ImportReport:
    report = ImportReport(server=job.license_server.name, dry_run=job.dry_run)

    def progress(percent):
        if attempt is not None:
            attempt.set_progress(percent)

    try:
        staged = stage_files(job, on_bytes=lambda done, total: progress(done * 40 // total))
        report.files = staged.exports
        for export in staged.exports:
            report.extend(export.problems)
        if not any(not e.readable for e in staged.exports):
            _import_staged(job, staged, report, progress)
    finally:
        unstage(job)
    report.sort()
    return report


LOCK_MACHINES = """
SELECT count(*) FROM (
    SELECT m.id FROM inventory_clientmachine m
    WHERE lower(m.hostname) IN (SELECT computer_key FROM licensing_importrow WHERE job_id = %(job)s)
    ORDER BY m.id FOR NO KEY UPDATE OF m
) locked"""
# The licenses the import may change: those the files list, those it may end as absent
# from the server, and the temporary CALs of the machines the files name.
LOCK_LICENSES = """
SELECT count(*) FROM (
    SELECT l.id FROM licensing_license l WHERE l.id IN (
        SELECT l2.id FROM licensing_license l2 JOIN licensing_importrow r
            ON r.job_id = %(job)s AND r.license_id = l2.license_id WHERE l2.license_server_id = %(server)s
        UNION
        SELECT l3.id FROM licensing_license l3 WHERE l3.license_server_id = %(server)s AND l3.status = 'active'
            AND l3.last_seen_snapshot_id IS NOT NULL
        UNION
        SELECT l4.id FROM licensing_license l4 JOIN inventory_clientmachine m ON m.id = l4.machine_id
            WHERE l4.kind = 'temporary' AND l4.status = 'active'
            AND lower(m.hostname) IN (SELECT computer_key FROM licensing_importrow WHERE job_id = %(job)s)
    ) ORDER BY l.id FOR NO KEY UPDATE OF l
) locked"""


def _lock(server: LicenseServer, job: ImportJob) -> dict[int, KeyPack]:
    """Take the import's row locks in the fixed order; returns the server's key packs."""
    postgres = connection.vendor == "postgresql"  # elsewhere, a writer locks the whole database
    with connection.cursor() as cursor:
        if postgres:
            cursor.execute("ANALYZE licensing_importrow")  # fresh rows: plan the joins with their numbers
            cursor.execute(LOCK_MACHINES, {"job": job.pk})
        packs = {p.key_pack_id: p
                 for p in KeyPack.objects.select_for_update(no_key=True).filter(license_server=server).order_by("pk")}
        if postgres:
            cursor.execute(LOCK_LICENSES, {"job": job.pk, "server": server.pk})
    return packs


def _chunks(job: ImportJob):
    for stage in STAGES:
        last = 0
        while True:
            rows = list(ImportRow.objects.filter(job=job, stage=stage, id__gt=last).order_by("id")[:CHUNK_ROWS])
            if not rows:
                break
            last = rows[-1].id
            yield rows


def _import_staged(job: ImportJob, staged: Staged, report: ImportReport, progress) -> None:
    now = timezone.now()
    installed_on = job.installed_on or timezone.localdate()
    actor = job.requested_by
    try:
        with transaction.atomic():
            server = LicenseServer.objects.select_for_update(no_key=True).get(pk=job.license_server_id)
            report.server = server.name
            planner = Planner(server=server, report=report, staged=staged,
                              file_names=[e.name for e in staged.exports], now=now)
            planner.ignore_duplicate_license_ids(job)
            planner.plan_key_packs(_lock(server, job))
            pack_events = write_key_packs(planner, report, installed_on=installed_on)
            machines, first_rows = create_machines(planner, job, report)
            snapshot = Snapshot.objects.create(
                license_server=server, taken_at=now, sent_by=actor, import_job=job,
                files=[file_summary(e) for e in staged.exports],
                lists_key_packs=staged.lists_key_packs, lists_licenses=staged.lists_licenses,
            )
            audit = ImportAuditBatch(actor)  # the chain's head, locked until the import commits
            for event in pack_events:
                audit.add(**event)
            machine_events(audit, planner, machines, first_rows)
            ended = (reconciliation.end_absent_licenses(server=server, job=job, audit=audit, now=now, report=report)
                     if staged.lists_licenses else [])
            done = 0
            for rows in _chunks(job):
                write_chunk(planner, planner.plan_chunk(rows), audit, snapshot=snapshot, now=now)
                done += len(rows)
                progress(40 + done * 50 // max(staged.staged_rows, 1))
            planner.check_packs(job, lists_licenses=staged.lists_licenses)
            _mark_seen(server, job, staged, snapshot)
            reconciliation.reconcile(
                server=server, snapshot=snapshot, job=job, key_pack_rows=staged.key_pack_rows,
                lists_key_packs=staged.lists_key_packs, lists_licenses=staged.lists_licenses, ended=ended,
                audit=audit, now=now, report=report,
            )
            progress(95)
            audit.add(
                action="import.completed", obj=server,
                summary=f"Snapshot #{snapshot.pk} of {server.name}: {counts_text(report.created)} created, "
                f"{counts_text(report.updated)} updated, {counts_text(report.ended)} ended; drift "
                f"{report.drift.get('opened', 0)} opened, {report.drift.get('resolved', 0)} resolved.",
                data={"snapshot": snapshot.pk, "import_job": job.pk, "files": snapshot.files,
                      "created": dict(report.created), "updated": dict(report.updated), "ended": dict(report.ended),
                      "skipped": dict(report.skipped_codes), "drift": dict(report.drift),
                      "options": {"date_order": job.date_order, "installed_on": installed_on}},
                refs={"license_server": [server.pk]},
            )
            audit.close()
            report.events_written = audit.count
            if report.refused or job.dry_run:
                transaction.set_rollback(True)
                return
            report.committed = True
            report.snapshot_id = snapshot.pk
            transaction.on_commit(_alert_new_drift)
    except IntegrityError as exc:
        report.committed = False
        report.add(Problem(ERROR, "", None, "", f"The database refused the import ({exc}); nothing was imported.",
                           "integrity"))


def _mark_seen(server, job, staged: Staged, snapshot: Snapshot) -> None:
    """What the snapshot listed, it has now seen last."""
    if staged.lists_licenses:
        License.objects.filter(
            license_server=server, license_id__in=ImportRow.objects.filter(job=job).values("license_id")
        ).update(last_seen_snapshot=snapshot)
    if staged.lists_key_packs:
        KeyPack.objects.filter(
            license_server=server, key_pack_id__in=[row.key_pack_id for _, row in staged.key_pack_rows]
        ).update(last_seen_snapshot=snapshot)


def _alert_new_drift() -> None:
    """After the commit, the new drift items' alert; the beat's run sends what this misses."""
    try:
        alerts.alert_new_drift()
    except Exception:
        logger.exception("The drift alert failed; the beat sends it again.")


def license_server_import(*, server_name: str, files: list[tuple[str, bytes]], actor, date_order: str = "mdy",
                          dry_run: bool = False, installed_on: date | None = None) -> ImportReport:
    """Import in this process, as ``manage.py import_license_server`` does: the same job,
    run at once. Raises ValidationError for bad options or an unknown server."""
    if date_order not in wmi.DATE_ORDERS:
        raise ValidationError({"date_order": f"Choose one of {', '.join(wmi.DATE_ORDERS)}."})
    server = LicenseServer.objects.filter(name__iexact=server_name).first()
    if server is None:
        raise ValidationError({"server": f"There is no license server named {server_name!r}; add it first."})
    job = import_start(license_server=server, files=[(name, io.BytesIO(data)) for name, data in files],
                       actor=actor, date_order=date_order, dry_run=dry_run, installed_on=installed_on,
                       enqueue=False)
    return run_now(job)


def run_now(job: ImportJob, on_progress=None) -> ImportReport:
    """Run a job in this process, through the same job machinery as a worker."""
    result = {}

    def work(job, attempt):
        if on_progress is not None:
            attempt.on_progress = on_progress
        result["report"] = report = run_import(job, attempt)
        return job_fields(job, report)

    jobs.run(ImportJob, job.pk, task=None, work=work)
    return result["report"]


def purge_import_files(now=None) -> int:
    """Delete the stored files of imports finished more than PORTAL_EXPORT_RETENTION ago; the
    snapshot keeps each file's name, SHA-256 and row count. Files an unfinished job still
    reads (a confirmation shares its preview's) stay."""
    now = now or timezone.now()
    store = import_storage()
    in_use = {
        entry.get("stored")
        for files in ImportJob.objects.filter(finished_at__isnull=True).values_list("files", flat=True)
        for entry in files
    }
    purged = 0
    finished = ImportJob.objects.filter(finished_at__lte=now - settings.EXPORT_RETENTION).exclude(files=[])
    for job in finished.only("pk", "files").iterator(chunk_size=200):
        if not any(entry.get("stored") for entry in job.files):
            continue
        for entry in job.files:
            if entry.get("stored") and entry["stored"] not in in_use:
                store.delete(entry["stored"])
        ImportJob.objects.filter(pk=job.pk).update(files=[{**e, "stored": ""} for e in job.files])
        purged += 1
    return purged
