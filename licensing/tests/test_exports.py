import csv
import io
import os
import time
from datetime import timedelta

import openpyxl
import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient

from core.files import PARTIAL_DIR
from core.jobs import JobStatus as ExportStatus
from core.models import AuditEvent
from licensing.models import ExportJob
from licensing.reports import AUDIT_TRAIL, REPORTS, neutralise, writers
from licensing.services import exports
from licensing.services.exports import export_start, purge_expired_exports
from licensing.services.servers import csc_contact_create
from licensing.tasks import run_export


@pytest.fixture(autouse=True)
def export_root(file_store):
    return file_store / "exports"


@pytest.fixture
def trail(admin_user):
    """A few audited changes, one of them with a formula in its text."""
    for i in range(5):
        csc_contact_create(actor=admin_user, location=f"=Site {i}", phone_number=f"+1 800 555 010{i}")


def api(user=None) -> APIClient:
    client = APIClient()
    if user is not None:
        client.force_authenticate(user)
    return client


@pytest.mark.parametrize(
    "value, expected",
    [
        ("=1+2", "'=1+2"), ("+1 888", "'+1 888"), ("-2", "'-2"), ("@SUM(A1)", "'@SUM(A1)"),
        ("\tx", "'\tx"), ("\rx", "'\rx"), ("plain", "plain"), ("a=b", "a=b"), ("", ""),
        (-5, -5), (3, 3), (None, None),
    ],
)
def test_neutralise(value, expected):
    assert neutralise(value) == expected


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_background_export_reaches_done_with_a_downloadable_file(
    trail, auditor, fmt, django_capture_on_commit_callbacks
):
    client = api(auditor)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/api/v1/exports/", {"report": "audit-trail", "format": fmt,
                                                     "filters": {"action": "csc_contact"}}, format="json")
    assert response.status_code == 202, response.json()
    body = response.json()
    assert {"id", "report", "format", "filters", "status", "progress", "download_url", "rows",
            "created_at", "finished_at", "error"} <= set(body)
    assert body["filters"] == {"action": "csc_contact"}

    job = client.get(f"/api/v1/exports/{body['id']}/").json()
    assert (job["status"], job["progress"], job["rows"], job["error"]) == ("done", 100, 5, "")
    assert job["finished_at"] and job["download_url"].endswith(f"/api/v1/exports/{body['id']}/download/")

    download = client.get(job["download_url"])
    assert download.status_code == 200
    assert download["Content-Disposition"].startswith("attachment; filename=")
    content = b"".join(download.streaming_content)
    if fmt == "csv":
        rows = list(csv.reader(io.StringIO(content.decode())))
    else:
        sheet = openpyxl.load_workbook(io.BytesIO(content), read_only=True).worksheets[0]
        rows = [[str(v) for v in row] for row in sheet.iter_rows(values_only=True)]
    assert rows[0] == AUDIT_TRAIL.headers
    assert [r[3] for r in rows[1:]] == ["csc_contact.created"] * 5
    assert all(r[6].startswith("CSC contact =Site") for r in rows[1:])

    stored = ExportJob.objects.get(pk=body["id"])
    assert stored.expires_at == stored.finished_at + timedelta(hours=24)
    event = AuditEvent.objects.get(action="report.exported")
    assert (event.actor, event.object_type, event.object_id) == ("audrey", "report", "audit-trail")
    assert event.data == {"report": "audit-trail", "format": fmt, "filters": {"action": "csc_contact"},
                          "export_job": stored.pk}


def test_download_before_done_is_404(admin_user):
    job = ExportJob.objects.create(report="licenses", format="csv", requested_by=admin_user)
    response = api(admin_user).get(f"/api/v1/exports/{job.pk}/download/")
    assert response.status_code == 404
    assert "pending" in response.json()["detail"]


@pytest.mark.parametrize(
    "payload, field",
    [
        ({"report": "payroll", "format": "csv"}, "report"),
        ({"report": "licenses", "format": "pdf"}, "format"),
        ({"report": "audit-trail", "format": "csv", "filters": {"since": "yesterday"}}, "filters"),
        ({"report": "licenses", "format": "csv", "filters": {"colour": "red"}}, "filters"),
    ],
)
def test_bad_export_requests_are_400_and_change_nothing(admin_user, payload, field):
    before = AuditEvent.objects.count()
    response = api(admin_user).post("/api/v1/exports/", payload, format="json")
    assert response.status_code == 400
    assert field in response.json()
    assert not ExportJob.objects.exists()
    assert AuditEvent.objects.count() == before


def test_bad_filter_errors_name_the_filter(admin_user):
    response = api(admin_user).post(
        "/api/v1/exports/", {"report": "audit-trail", "format": "csv", "filters": {"since": "x"}}, format="json"
    )
    assert list(response.json()["filters"]) == ["since"]


def test_requesters_cannot_export(requester, admin_user):
    job = ExportJob.objects.create(report="licenses", format="csv", requested_by=admin_user)
    client = api(requester)
    assert client.post("/api/v1/exports/", {"report": "licenses", "format": "csv"},
                       format="json").status_code == 403
    assert client.get(f"/api/v1/exports/{job.pk}/").status_code == 403
    assert api().get(f"/api/v1/exports/{job.pk}/").status_code == 401


def test_auditor_sees_only_own_jobs_admin_sees_all(admin_user, auditor):
    theirs = ExportJob.objects.create(report="licenses", format="csv", requested_by=admin_user)
    mine = ExportJob.objects.create(report="licenses", format="csv", requested_by=auditor)
    assert api(auditor).get(f"/api/v1/exports/{theirs.pk}/").status_code == 404
    assert [j["id"] for j in api(auditor).get("/api/v1/exports/").json()["results"]] == [mine.pk]
    assert {j["id"] for j in api(admin_user).get("/api/v1/exports/").json()["results"]} == {mine.pk, theirs.pk}


def test_rerunning_a_done_job_does_nothing(trail, admin_user, export_root):
    job = export_start(report="audit-trail", format="csv", filters={}, actor=admin_user)
    assert run_export(job.pk) == "done"
    job.refresh_from_db()
    path = export_root / job.file_name
    path.write_text("kept")
    assert run_export(job.pk) == "skipped"
    assert path.read_text() == "kept"
    job.refresh_from_db()
    assert job.status == ExportStatus.DONE


def test_retried_running_job_rewrites_the_file_from_scratch(trail, admin_user, export_root):
    job = export_start(report="audit-trail", format="csv", filters={}, actor=admin_user)
    # A worker died mid-way: the job is running, with progress, and a stale file in place.
    ExportJob.objects.filter(pk=job.pk).update(status=ExportStatus.RUNNING, progress=40, rows=2)
    export_root.mkdir(parents=True)
    (export_root / exports.export_file_name(job)).write_text("half a file\n" * 1000)
    assert run_export(job.pk) == "done"
    job.refresh_from_db()
    assert (job.status, job.progress, job.rows) == (ExportStatus.DONE, 100, 6)
    lines = (export_root / job.file_name).read_text().splitlines()
    assert lines[0].startswith("Sequence,") and len(lines) == 7
    assert [p.name for p in export_root.iterdir() if p.is_file()] == [job.file_name]
    assert list((export_root / PARTIAL_DIR).iterdir()) == []


def test_purge_removes_stale_half_written_files(db, export_root, settings):
    (export_root / PARTIAL_DIR).mkdir(parents=True)
    stale = export_root / PARTIAL_DIR / "export-1-licenses.csv.attempt-1.part"
    fresh = export_root / PARTIAL_DIR / "export-2-licenses.csv.attempt-1.part"
    stale.write_text("x")
    fresh.write_text("x")
    old = time.time() - settings.EXPORT_RETENTION.total_seconds() - 60
    os.utime(stale, (old, old))
    purge_expired_exports()
    assert (stale.exists(), fresh.exists()) == (False, True)


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_progress_moves_from_0_to_100(trail, admin_user, monkeypatch, fmt):
    monkeypatch.setattr(writers, "PROGRESS_EVERY_ROWS", 1)
    monkeypatch.setattr(writers, "COPY_CHUNK_ROWS", 2)
    seen = []
    write = exports.write_report

    def spying_write(report, fmt, filters, path, *, on_row=None):
        def record(done):
            on_row(done)
            seen.append(ExportJob.objects.values_list("progress", "status").get())
        return write(report, fmt, filters, path, on_row=record)

    monkeypatch.setattr(exports, "write_report", spying_write)
    job = export_start(report="audit-trail", format=fmt, filters={}, actor=admin_user)
    assert run_export(job.pk) == "done"
    job.refresh_from_db()
    progress = [p for p, _ in seen]
    assert progress and progress == sorted(progress) and 0 < progress[0] and progress[-1] <= 99
    assert all(status == ExportStatus.RUNNING for _, status in seen)
    assert job.progress == 100


def test_failed_export_records_the_error_and_leaves_no_file(admin_user, monkeypatch):
    job = export_start(report="licenses", format="csv", filters={}, actor=admin_user)

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(exports, "write_report", broken)
    assert run_export(job.pk) == "failed"
    job.refresh_from_db()
    assert job.status == ExportStatus.FAILED and "disk full" in job.error and job.file_name == ""


def test_purge_deletes_expired_files_and_keeps_the_rows(trail, admin_user, export_root):
    old = export_start(report="audit-trail", format="csv", filters={}, actor=admin_user)
    new = export_start(report="audit-trail", format="csv", filters={}, actor=admin_user)
    run_export(old.pk)
    run_export(new.pk)
    ExportJob.objects.filter(pk=old.pk).update(expires_at=timezone.now() - timedelta(minutes=1))
    old.refresh_from_db()
    old_path = export_root / old.file_name
    assert purge_expired_exports() == 1
    old.refresh_from_db()
    new.refresh_from_db()
    assert not old_path.exists() and old.file_name == "" and old.status == ExportStatus.DONE
    assert (export_root / new.file_name).exists()
    assert api(admin_user).get(f"/api/v1/exports/{old.pk}/download/").status_code == 404
    assert purge_expired_exports() == 0


def test_long_reports_continue_on_another_sheet(trail, tmp_path, monkeypatch):
    monkeypatch.setattr(writers, "XLSX_MAX_DATA_ROWS", 2)
    path = tmp_path / "trail.xlsx"
    assert writers.write_xlsx(AUDIT_TRAIL, {}, path) == 5
    workbook = openpyxl.load_workbook(path, read_only=True)
    assert [ws.max_row for ws in workbook.worksheets] == [3, 3, 2]
    assert workbook.worksheets[1].title == "Audit trail (2)"


def test_empty_report_still_has_its_header_row(db, tmp_path):
    path = tmp_path / "empty.xlsx"
    assert writers.write_xlsx(REPORTS["transfers"], {}, path) == 0
    sheet = openpyxl.load_workbook(path, read_only=True).worksheets[0]
    assert [list(r) for r in sheet.iter_rows(values_only=True)] == [REPORTS["transfers"].headers]


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_export_report_command_writes_the_file_and_is_audited_as_system(trail, tmp_path, fmt):
    output = tmp_path / f"trail.{fmt}"
    today = timezone.now().date().isoformat()
    out = io.StringIO()
    call_command("export_report", "audit-trail", "--format", fmt, "--output", str(output),
                 "--since", today, "--until", today, "--filter", "action=csc_contact", stdout=out)
    assert "Wrote 5 rows" in out.getvalue()
    if fmt == "csv":
        rows = list(csv.reader(output.open(encoding="utf-8")))
    else:
        rows = list(openpyxl.load_workbook(output, read_only=True).worksheets[0].iter_rows(values_only=True))
    assert len(rows) == 6
    event = AuditEvent.objects.get(action="report.exported")
    assert event.actor == "system"
    assert event.data["filters"]["action"] == "csc_contact"
    assert set(event.data["filters"]) == {"action", "since", "until"}


def test_export_report_command_until_includes_the_whole_day(trail, tmp_path):
    output = tmp_path / "t.csv"
    yesterday = (timezone.now() - timedelta(days=1)).date().isoformat()
    call_command("export_report", "audit-trail", "--format", "csv", "--output", str(output),
                 "--until", yesterday, stdout=io.StringIO())
    assert len(output.read_text().splitlines()) == 1


def test_export_report_command_refuses_bad_input(db, tmp_path):
    output = str(tmp_path / "x.csv")
    with pytest.raises(CommandError, match="no time filter"):
        call_command("export_report", "compliance", "--format", "csv", "--output", output, "--since", "2024-01-01")
    with pytest.raises(CommandError, match="status"):
        call_command("export_report", "licenses", "--format", "csv", "--output", output, "--filter", "status=x")
    with pytest.raises(CommandError):
        call_command("export_report", "payroll", "--format", "csv", "--output", output)
    assert not AuditEvent.objects.filter(action="report.exported").exists()


def test_export_report_command_takes_a_moment_for_since(trail, tmp_path):
    third = AuditEvent.objects.get(sequence=3).occurred_at
    out = io.StringIO()
    call_command("export_report", "audit-trail", "--format", "csv", "--output", str(tmp_path / "t.csv"),
                 "--since", third.isoformat(), stdout=out)
    # Events 3 to 5, and the export's own event, written before the rows are read.
    assert "Wrote 4 rows" in out.getvalue()
    with pytest.raises(CommandError, match="neither a date"):
        call_command("export_report", "audit-trail", "--format", "csv", "--output", str(tmp_path / "t.csv"),
                     "--since", "last tuesday")


@pytest.mark.postgres
@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_a_background_export_whose_search_matches_nothing_is_done_with_no_rows(
    trail, machine, auditor, fmt, django_capture_on_commit_callbacks
):
    if connection.vendor != "postgresql":
        pytest.skip("COPY is PostgreSQL's")
    with django_capture_on_commit_callbacks(execute=True):
        job = export_start(report="licenses", format=fmt, filters={"q": "no-such-host"}, actor=auditor)
    job.refresh_from_db()
    assert (job.status, job.rows, job.error) == (ExportStatus.DONE, 0, "")
    content = b"".join(api(auditor).get(f"/api/v1/exports/{job.pk}/download/").streaming_content)
    if fmt == "csv":
        assert list(csv.reader(io.StringIO(content.decode()))) == [REPORTS["licenses"].headers]
    else:
        sheet = openpyxl.load_workbook(io.BytesIO(content), read_only=True).worksheets[0]
        assert [list(row) for row in sheet.iter_rows(values_only=True)] == [REPORTS["licenses"].headers]
