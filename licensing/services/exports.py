"""Exports: checking what is asked, auditing it, and background export jobs.

Background exports are ``ExportJob`` rows (``core.jobs``) worked by the ``run_export``
task in ``licensing.tasks``; their files go to the exports storage (``core.files``).
"""

from collections.abc import Mapping

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from core import files, jobs
from core.audit import actor_name, audit_record
from licensing.models import ExportJob
from licensing.reports import LIST_ONLY_PARAMS, REPORTS, Report, get_report
from licensing.reports.writers import FORMATS, write_report

PARTIAL_SUFFIX = ".part"
def validate_export(*, report: str, format: str, filters: Mapping) -> tuple[Report, dict[str, str]]:
    """Check the report name, the format and the filters; return the report and clean filters.

    Raises ``ValidationError`` naming ``report``, ``format`` or ``filters``, or
    ``InvalidFilters`` with the FilterSet's own errors, keyed by filter name.
    """
    found = get_report(report)
    if found is None:
        raise ValidationError(
            {"report": f"Unknown report {report!r}; choose one of {', '.join(REPORTS)}."}
        )
    if format not in FORMATS:
        raise ValidationError({"format": f"Unknown format {format!r}; choose csv or xlsx."})
    if not isinstance(filters, Mapping):
        raise ValidationError({"filters": "Give the filters as an object of name: value."})
    unknown = sorted(set(filters) - set(found.filter_names) - LIST_ONLY_PARAMS)
    if unknown:
        raise ValidationError(
            {"filters": f"The {found.name} report has no filter {', '.join(unknown)}; its filters are "
             f"{', '.join(found.filter_names)}."}
        )
    cleaned = found.clean_filters(filters)
    found.validate(cleaned)
    return found, cleaned


def _export_summary(report: Report, fmt: str, filters: Mapping[str, str], actor, what: str) -> str:
    shown = ", ".join(f"{k}={v}" for k, v in sorted(filters.items()))
    return (f"{report.title} {what} as {fmt.upper()} by {actor_name(actor)}"
            + (f" with filters {shown}." if shown else " without filters."))


def audit_export(*, actor, report: Report, fmt: str, filters: Mapping[str, str], export_job: int | None = None,
                 output: str | None = None) -> None:
    """The ``report.exported`` event: in its own transaction, or in the background
    export's (then ``export_job`` names the job)."""
    data = {"report": report.name, "format": fmt, "filters": dict(filters)}
    what = "exported"
    if export_job is not None:
        data["export_job"] = export_job
        what = f"export #{export_job} started"
    if output is not None:
        data["output"] = output
    with transaction.atomic():
        audit_record(
            actor=actor,
            action="report.exported",
            object_type="report",
            object_id=report.name,
            summary=_export_summary(report, fmt, filters, actor, what),
            data=data,
        )


def export_start(*, report: str, format: str, filters: Mapping, actor) -> ExportJob:
    """Queue a background export. The job is created, and the export audited, in one
    transaction; the task is sent only after it commits. While the broker is down the
    request is refused (``ServiceUnavailable``) and nothing is written."""
    found, cleaned = validate_export(report=report, format=format, filters=filters)
    jobs.require_broker()
    with transaction.atomic():
        job = ExportJob.objects.create(
            report=found.name, format=format, filters=cleaned, requested_by=actor
        )
        audit_export(actor=actor, report=found, fmt=format, filters=cleaned, export_job=job.pk)
        jobs.enqueue(job)
    return job


def export_file_name(job: ExportJob) -> str:
    return f"export-{job.pk}-{job.report}.{job.format}"


def write_export_job(job: ExportJob, attempt: jobs.Attempt) -> dict:
    """One attempt at an export job: the whole file, written again from the start, then put
    in the exports storage in one step under the job's own name."""
    report = get_report(job.report)
    total = max(report.count(job.filters), 1)

    def on_row(done: int) -> None:
        attempt.set_progress(done * 100 // total)

    name = export_file_name(job)
    rows = files.save_whole(
        files.export_storage(), name,
        lambda path: write_report(report, job.format, job.filters, path, on_row=on_row),
        partial_name=f"{name}.attempt-{attempt.number}{PARTIAL_SUFFIX}",
    )
    finished = timezone.now()
    return {"rows": rows, "file_name": name, "finished_at": finished,
            "expires_at": finished + settings.EXPORT_RETENTION}


def purge_expired_exports(now=None) -> int:
    """Delete the files of finished exports past their retention; the job rows stay.

    Half-written files that a dead worker left, older than the retention, go too.
    """
    now = now or timezone.now()
    store = files.export_storage()
    purged = 0
    expired = ExportJob.objects.filter(expires_at__lte=now).exclude(file_name="")
    for job in expired.only("pk", "file_name").iterator(chunk_size=500):
        store.delete(job.file_name)
        ExportJob.objects.filter(pk=job.pk).update(file_name="")
        purged += 1
    files.purge_partials(store, older_than_seconds=settings.EXPORT_RETENTION.total_seconds())
    return purged


