"""Writing reports to CSV and XLSX, in a response or in the background.

CSV streams, so memory stays flat as rows grow: on PostgreSQL the database writes
the rows itself (COPY, in bounded chunks, cells formatted and neutralised in SQL);
elsewhere rows come from a chunked iterator and go out in small blocks. XLSX is
written by XlsxWriter in ``constant_memory`` mode, row by row, to a file. In both
formats a text cell that a spreadsheet would read as a formula is neutralised
(OWASP: prefix a single quote).

Background exports are ``ExportJob`` rows (``core.jobs``) worked by the ``run_export``
task in ``licensing.tasks``; their files go to the exports storage (``core.files``).
"""

import csv
import io
import logging
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path

import xlsxwriter
from celery import shared_task
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.db import connection, transaction
from django.utils import timezone

from core import files, jobs
from licensing.models import ExportJob
from licensing.reports import LIST_ONLY_PARAMS, REPORTS, Report, get_report, neutralise
from licensing.services.audit import SYSTEM_ACTOR, actor_name, audit_record, audit_verify_chain

logger = logging.getLogger(__name__)

FORMATS = ("csv", "xlsx")
CONTENT_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}
CSV_BLOCK_ROWS = 500
# PostgreSQL's COPY ends lines with LF; the Python writer does the same.
LINE_END = "\n"
# Excel's last row is 1,048,576; longer reports continue on a further sheet.
XLSX_MAX_DATA_ROWS = 1_048_575
PROGRESS_EVERY_ROWS = 2000
PARTIAL_SUFFIX = ".part"
COPY_CHUNK_ROWS = 50_000
# A streamed response holds at most this many rows (a few MB) between writes.
STREAM_CHUNK_ROWS = 5_000
COPY_BUFFER_BYTES = 1 << 20


def export_filename(report: Report, fmt: str, moment=None) -> str:
    moment = moment or timezone.now()
    return f"{report.name}-{moment:%Y%m%d-%H%M%S}.{fmt}"


class _LineBuffer:
    """A file-like object whose ``write`` hands back the line csv.writer formatted."""

    def write(self, value: str) -> str:
        return value


def csv_chunks(report: Report, filters: Mapping[str, str], *, rows: Iterable[tuple] | None = None
               ) -> Iterator[str]:
    """The report as CSV text, in blocks of a few hundred rows (for streaming)."""
    writer = csv.writer(_LineBuffer(), lineterminator=LINE_END)
    yield writer.writerow(report.headers)
    block = []
    for row in rows if rows is not None else report.rows(filters):
        block.append(writer.writerow([neutralise(v) for v in row]))
        if len(block) >= CSV_BLOCK_ROWS:
            yield "".join(block)
            block = []
    if block:
        yield "".join(block)


def _counting(rows: Iterable[tuple], on_row: Callable[[int], None] | None) -> Iterator[tuple]:
    count = 0
    for row in rows:
        yield row
        count += 1
        if on_row is not None and count % PROGRESS_EVERY_ROWS == 0:
            on_row(count)


def _header_bytes(report: Report) -> bytes:
    header = io.StringIO()
    csv.writer(header, lineterminator=LINE_END).writerow(report.headers)
    return header.getvalue().encode()


def _copy_rows(report: Report, filters: Mapping[str, str], target, *, chunk_rows: int | None) -> Iterator[int]:
    """PostgreSQL writes the rows into ``target`` itself (``COPY ... TO STDOUT``): the
    same cells as the Python writer, at the speed of ``psql \\copy``.

    With ``chunk_rows`` it copies that many rows per statement, by ranges of the
    report's unique ordering key, and yields the running row count after each one,
    so the caller can report progress or flush a response between statements (the
    connection is busy during a COPY). Without, one statement copies them all.
    """
    queryset = report.queryset(filters)
    key = report.key
    written = 0
    last = None
    with connection.cursor() as cursor:
        while True:
            chunk = queryset if last is None else queryset.filter(**{f"{key}__gt": last})
            ends = [] if chunk_rows is None else list(
                chunk.values_list(key, flat=True)[chunk_rows - 1:chunk_rows])
            if ends:
                chunk = chunk.filter(**{f"{key}__lte": ends[0]})
            select = report.copy_select(chunk, cursor)
            cursor.cursor.copy_expert(f"COPY ({select}) TO STDOUT WITH (FORMAT csv)", target)
            written += cursor.cursor.rowcount
            yield written
            if not ends:
                return
            last = ends[0]


def csv_stream(report: Report, filters: Mapping[str, str]) -> Iterator[bytes]:
    """The report as CSV bytes for a streamed response. On PostgreSQL, COPY fills a
    buffer of ``STREAM_CHUNK_ROWS`` rows at a time; elsewhere the Python writer runs."""
    if not report.can_copy(connection):
        for block in csv_chunks(report, filters):
            yield block.encode()
        return
    yield _header_bytes(report)
    buffer = io.BytesIO()
    for _ in _copy_rows(report, filters, buffer, chunk_rows=STREAM_CHUNK_ROWS):
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()


def _copy_csv(report: Report, filters: Mapping[str, str], path: Path,
              on_row: Callable[[int], None] | None) -> int:
    """The CSV file by COPY, in ``COPY_CHUNK_ROWS`` chunks only when progress is wanted."""
    written = 0
    with open(path, "wb", buffering=COPY_BUFFER_BYTES) as handle:
        handle.write(_header_bytes(report))
        chunk_rows = COPY_CHUNK_ROWS if on_row is not None else None
        for written in _copy_rows(report, filters, handle, chunk_rows=chunk_rows):
            if on_row is not None:
                on_row(written)
    return written


def write_csv(report: Report, filters: Mapping[str, str], path: Path, *,
              on_row: Callable[[int], None] | None = None, use_copy: bool | None = None) -> int:
    """Write the report to ``path`` as CSV; returns the number of data rows.

    On PostgreSQL, reports whose cells the database can compute go through COPY.
    """
    if use_copy is None:
        use_copy = report.can_copy(connection)
    if use_copy:
        return _copy_csv(report, filters, path, on_row)
    written = 0

    def rows():
        nonlocal written
        for row in _counting(report.rows(filters), on_row):
            written += 1
            yield row

    with open(path, "w", encoding="utf-8", newline="") as handle:
        for chunk in csv_chunks(report, filters, rows=rows()):
            handle.write(chunk)
    return written


def write_xlsx(report: Report, filters: Mapping[str, str], path: Path, *,
               on_row: Callable[[int], None] | None = None) -> int:
    """Write the report to ``path`` as XLSX, row by row (constant memory)."""
    workbook = xlsxwriter.Workbook(
        str(path), {"constant_memory": True, "strings_to_formulas": False, "strings_to_urls": False}
    )
    try:
        header_format = workbook.add_format({"bold": True, "bg_color": "#DDE4EE", "border": 1})
        sheet_number = 0
        sheet = None
        sheet_row = XLSX_MAX_DATA_ROWS
        written = 0
        for row in _counting(report.rows(filters), on_row):
            if sheet_row >= XLSX_MAX_DATA_ROWS:
                sheet_number += 1
                sheet = _new_sheet(workbook, report, sheet_number, header_format)
                sheet_row = 0
            sheet_row += 1
            for col, value in enumerate(row):
                value = neutralise(value)
                if isinstance(value, str):
                    sheet.write_string(sheet_row, col, value)
                elif value is not None:
                    sheet.write_number(sheet_row, col, value)
            written += 1
        if sheet is None:
            _new_sheet(workbook, report, 1, header_format)
    finally:
        workbook.close()
    return written


def _new_sheet(workbook, report: Report, number: int, header_format):
    # Sheet names are at most 31 characters and may not hold []:*?/\
    base = report.title[:24]
    sheet = workbook.add_worksheet(base if number == 1 else f"{base} ({number})")
    for col, column in enumerate(report.columns):
        sheet.set_column(col, col, column.width)
        sheet.write_string(0, col, column.header, header_format)
    sheet.freeze_panes(1, 0)
    return sheet


WRITERS = {"csv": write_csv, "xlsx": write_xlsx}


def write_report(report: Report, fmt: str, filters: Mapping[str, str], path: Path, *,
                 on_row: Callable[[int], None] | None = None) -> int:
    return WRITERS[fmt](report, filters, path, on_row=on_row)


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


@shared_task(name="licensing.tasks.verify_audit_chain")
def verify_audit_chain() -> dict:
    """The daily check of the audit chain. A break is mailed to the alert recipients
    and recorded in the trail itself."""
    result = audit_verify_chain()
    if result.ok:
        # Recorded too, so the dashboard can say when the chain was last confirmed intact.
        with transaction.atomic():
            audit_record(
                actor=SYSTEM_ACTOR, action="audit.verified", object_type="auditevent",
                object_id=str(result.events),
                summary=f"The audit chain verified: {result.events} events intact.",
                data={"events": result.events},
            )
        return {"ok": True, "events": result.events}
    message = (
        f"The audit trail does not verify: {result.reason}. "
        f"First event that does not verify: #{result.first_bad_sequence}. "
        f"{result.events} events were checked. Run `python manage.py verify_audit` for details."
    )
    recipients = list(settings.PORTAL_ALERT_RECIPIENTS)
    if recipients:
        send_mail(
            subject=f"[TS CAL portal] Audit chain broken at event #{result.first_bad_sequence}",
            message=message,
            from_email=None,
            recipient_list=recipients,
        )
    with transaction.atomic():
        audit_record(
            actor=SYSTEM_ACTOR,
            action="audit.verification_failed",
            object_type="auditevent",
            object_id=str(result.first_bad_sequence),
            summary=message,
            data={"first_bad_sequence": result.first_bad_sequence, "events": result.events,
                  "reason": result.reason, "alerted": recipients},
        )
    logger.error(message)
    return {"ok": False, "events": result.events, "first_bad_sequence": result.first_bad_sequence}
