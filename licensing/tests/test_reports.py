import csv
import io
from datetime import UTC, timedelta
from pathlib import Path

import openpyxl
import pytest
from django.db import connection, transaction
from django.utils import timezone
from rest_framework.test import APIClient

from core.audit import audit_record
from core.models import AuditEvent
from licensing.models import RemovalMethod, WindowsVersion
from licensing.reports import REPORTS, writers
from licensing.reports.writers import write_csv
from licensing.services.imports import license_server_import
from licensing.services.licenses import license_issue_permanent, license_issue_temporary
from licensing.services.reissue import reissue_log_call
from licensing.services.revocations import license_revoke
from licensing.services.transfers import (
    transfer_approve,
    transfer_confirm_removal,
    transfer_file,
    transfer_reject,
)
from licensing.tests.factories import KeyPackFactory, LicenseServerFactory, MachineFactory

INJECTION = "=HYPERLINK(\"http://evil.example/\",\"click\")"


def client_for(user=None) -> APIClient:
    client = APIClient()
    if user is not None:
        client.force_authenticate(user)
    return client


def download(client, name, fmt, **params):
    response = client.get(f"/api/v1/reports/{name}.{fmt}", params)
    assert response.status_code == 200, getattr(response, "data", response)
    assert response["Content-Disposition"].startswith("attachment; filename=")
    assert f".{fmt}" in response["Content-Disposition"]
    body = b"".join(response.streaming_content)
    return read_table(body, fmt)


def read_table(body: bytes, fmt: str) -> list[list[str]]:
    """The file's header and rows, every cell as text (empty cells as '')."""
    if fmt == "csv":
        return list(csv.reader(io.StringIO(body.decode("utf-8"))))
    workbook = openpyxl.load_workbook(io.BytesIO(body), read_only=True)
    sheet = workbook.worksheets[0]
    rows = [["" if v is None else str(v) for v in row] for row in sheet.iter_rows(values_only=True)]
    workbook.close()
    return rows


def as_dicts(table):
    header, *rows = table
    return [dict(zip(header, row, strict=True)) for row in rows]


@pytest.fixture
def portfolio(admin_user, second_admin, requester, server, key_pack, machine):
    """Licenses on two servers, a temporary CAL, a transfer on a CSC call and a rejected one."""
    other_server = LicenseServerFactory(name="TSLS-BRANCH", windows_version=WindowsVersion.WINDOWS_SERVER_2008,
                                        builtin_cal_for_pro_clients=False)
    other_pack = KeyPackFactory(license_server=other_server, key_pack_id=9001,
                                product_version=WindowsVersion.WINDOWS_SERVER_2008, total_licenses=3)
    m2, m3, m4, m5, m6 = (MachineFactory(hostname=f"ws-report-{i}") for i in range(2, 7))
    lic1 = license_issue_permanent(machine=machine, key_pack=key_pack, actor=admin_user)
    lic2 = license_issue_permanent(machine=m2, key_pack=key_pack, actor=admin_user)
    lic3 = license_issue_permanent(machine=m3, key_pack=other_pack, actor=second_admin)
    temp = license_issue_temporary(machine=m4, license_server=server,
                                   product_version=WindowsVersion.WINDOWS_SERVER_2003, actor=admin_user)
    moving = transfer_file(license=lic1, target_machine=m5, reason=INJECTION, actor=requester)
    transfer_approve(transfer=moving, actor=admin_user)
    transfer_confirm_removal(transfer=moving, actor=admin_user, method=RemovalMethod.REGISTRY_KEY_DELETED)
    call = reissue_log_call(
        actor=admin_user, called_at=timezone.now(), license_server=server,
        product_version=WindowsVersion.WINDOWS_SERVER_2003, license_program="select",
        quantity_requested=1, transfers=[moving], csc_location="North America",
        csc_phone_number="+1 888 571 2048", confirmation_number="C-1",
    )
    refused = transfer_file(license=lic2, target_machine=m6, reason="Replaced", actor=admin_user)
    transfer_reject(transfer=refused, actor=second_admin, note="Not needed")
    return {
        "licenses": (lic1, lic2, lic3), "temporary": temp, "other_server": other_server,
        "other_pack": other_pack, "transfer": moving, "rejected": refused, "call": call,
    }


@pytest.fixture
def drifted(admin_user):
    """A snapshot of a server's key packs, which lacks the pack the portal records: drift."""
    snapped = LicenseServerFactory(name="TSLS-SNAP", windows_version=WindowsVersion.WINDOWS_SERVER_2003)
    KeyPackFactory(license_server=snapped, key_pack_id=777, product_version=WindowsVersion.WINDOWS_SERVER_2003)
    imported = license_server_import(server_name=snapped.name, actor=admin_user, files=[
        ("keypacks.csv", (Path(__file__).parent / "import_files" / "keypacks_ps51.csv").read_bytes())])
    assert imported.committed
    return imported


@pytest.fixture
def revoked(admin_user):
    """A CAL revoked on a Windows Server 2019 license server (rule 12)."""
    server = LicenseServerFactory(name="TSLS-2019", windows_version=WindowsVersion.WINDOWS_SERVER_2019)
    pack = KeyPackFactory(license_server=server, product_version=WindowsVersion.WINDOWS_SERVER_2019, total_licenses=10)
    lic = license_issue_permanent(machine=MachineFactory(hostname="ws-revoked"), key_pack=pack, actor=admin_user)
    return license_revoke(license=lic, actor=admin_user, note="Reimaged")


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
@pytest.mark.parametrize("name", list(REPORTS))
def test_each_report_downloads_with_human_headers(portfolio, drifted, revoked, auditor, name, fmt):
    table = download(client_for(auditor), name, fmt)
    assert table[0] == REPORTS[name].headers
    assert len(table) > 1


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_licenses_report_lists_active_licenses_and_filters(portfolio, admin_user, fmt):
    client = client_for(admin_user)
    rows = as_dicts(download(client, "licenses", fmt))
    lic1, lic2, lic3 = portfolio["licenses"]
    assert sorted(int(r["License"]) for r in rows) == sorted(
        [lic1.pk, lic2.pk, lic3.pk, portfolio["temporary"].pk]
    )
    rows = as_dicts(download(client, "licenses", fmt, license_server=portfolio["other_server"].pk))
    assert [r["Host name"] for r in rows] == ["ws-report-3"]
    assert rows[0]["Product version"] == "Windows Server 2008"
    assert rows[0]["KeyPackId"] == "9001"
    assert rows[0]["Issued at"] == lic3.issued_at.astimezone(UTC).isoformat(timespec="seconds")
    rows = as_dicts(download(client, "licenses", fmt, kind="temporary"))
    assert [r["Kind"] for r in rows] == ["Temporary (90 days)"]
    assert rows[0]["Expires at"].startswith(portfolio["temporary"].expires_at.date().isoformat())


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_audit_trail_report_filters_by_action_and_actor(portfolio, admin_user, fmt):
    client = client_for(admin_user)
    rows = as_dicts(download(client, "audit-trail", fmt, action="transfer", actor="bob"))
    assert [r["Action"] for r in rows] == ["transfer.rejected"]
    rows = as_dicts(download(client, "audit-trail", fmt, key_pack=portfolio["other_pack"].pk))
    assert [r["Action"] for r in rows] == ["license.issued"]
    event = AuditEvent.objects.get(action="license.issued", data__refs__key_pack=[portfolio["other_pack"].pk])
    assert rows[0]["Hash"] == event.hash
    assert rows[0]["Occurred at"] == event.occurred_at.astimezone(UTC).isoformat(
        timespec="microseconds")


def test_audit_trail_report_time_window(portfolio, admin_user):
    future = (timezone.now() + timedelta(days=1)).isoformat()
    table = download(client_for(admin_user), "audit-trail", "csv", since=future)
    assert table == [REPORTS["audit-trail"].headers]


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_compliance_report_per_server_and_product(portfolio, admin_user, fmt):
    client = client_for(admin_user)
    rows = as_dicts(download(client, "compliance", fmt))
    assert [(r["License server"], r["Product version"]) for r in rows] == [
        ("TSLS-BRANCH", "Windows Server 2008"), ("TSLS-HQ", "Windows Server 2003"),
    ]
    rows = as_dicts(download(client, "compliance", fmt, product_version="windows_server_2003"))
    assert len(rows) == 1
    hq = rows[0]
    assert (hq["Installed"], hq["Issued"], hq["Available"]) == ("5", "2", "3")
    assert (hq["Temporary CALs active"], hq["Temporary CALs expiring within 14 days"]) == ("1", "0")


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_transfers_report_filters_by_status(portfolio, admin_user, fmt):
    client = client_for(admin_user)
    rows = as_dicts(download(client, "transfers", fmt))
    assert [int(r["Transfer"]) for r in rows] == [portfolio["transfer"].pk, portfolio["rejected"].pk]
    rows = as_dicts(download(client, "transfers", fmt, status="rejected"))
    assert len(rows) == 1
    row = rows[0]
    assert (row["Status"], row["Source host name"], row["Target host name"]) == (
        "Rejected", "ws-report-2", "ws-report-6")
    assert (row["Requested by"], row["Closed by"], row["Decision note"]) == ("alice", "bob", "Not needed")


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_reissue_requests_report_lists_covered_transfers(portfolio, admin_user, fmt):
    client = client_for(admin_user)
    rows = as_dicts(download(client, "reissue-requests", fmt, status="open"))
    assert len(rows) == 1
    row = rows[0]
    assert row["CSC call"] == str(portfolio["call"].pk)
    assert row["Transfers covered"] == str(portfolio["transfer"].pk)
    assert row["Channel"] == "Telephone"
    # A leading '+' is a formula trigger: the phone number is neutralised too.
    assert row["CSC phone number"] == "'+1 888 571 2048"
    assert as_dicts(download(client, "reissue-requests", fmt, status="denied")) == []


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_formula_injection_is_neutralised(portfolio, admin_user, fmt):
    client = client_for(admin_user)
    rows = as_dicts(download(client, "transfers", fmt, status="awaiting_reissue"))
    assert rows[0]["Reason"] == "'" + INJECTION
    audit = as_dicts(download(client, "audit-trail", fmt, action="transfer.requested"))
    assert all(not cell.startswith(("=", "+", "-", "@")) for row in audit for cell in row.values())


def test_xlsx_cells_are_text_not_formulas(portfolio, admin_user):
    response = client_for(admin_user).get("/api/v1/reports/transfers.xlsx")
    workbook = openpyxl.load_workbook(io.BytesIO(b"".join(response.streaming_content)))
    sheet = workbook.worksheets[0]
    reasons = [cell.value for cell in sheet["H"][1:]]
    assert "'" + INJECTION in reasons
    assert all(cell.data_type != "f" for row in sheet.iter_rows() for cell in row)


def test_export_is_audited_with_actor_and_filters(portfolio, auditor):
    before = AuditEvent.objects.count()
    download(client_for(auditor), "transfers", "csv", status="rejected", page_size="10")
    event = AuditEvent.objects.order_by("-sequence").first()
    assert AuditEvent.objects.count() == before + 1
    assert (event.action, event.actor, event.object_type, event.object_id) == (
        "report.exported", "audrey", "report", "transfers")
    assert event.data == {"report": "transfers", "format": "csv", "filters": {"status": "rejected"}}


@pytest.mark.parametrize("path", ["/api/v1/reports/licenses.csv", "/api/v1/reports/licenses.xlsx"])
def test_requester_is_refused_and_anonymous_must_authenticate(requester, path):
    before = AuditEvent.objects.count()
    assert client_for(requester).get(path).status_code == 403
    assert client_for().get(path).status_code == 401
    assert AuditEvent.objects.count() == before


def test_unknown_report_is_404(admin_user):
    client = client_for(admin_user)
    assert client.get("/api/v1/reports/secrets.csv").status_code == 404
    assert client.get("/api/v1/reports/licenses.pdf").status_code == 404


def test_bad_filter_values_are_400_with_field_errors(admin_user):
    before = AuditEvent.objects.count()
    client = client_for(admin_user)
    response = client.get("/api/v1/reports/audit-trail.csv", {"since": "not-a-date"})
    assert response.status_code == 400
    assert "since" in response.json()
    response = client.get("/api/v1/reports/licenses.xlsx", {"status": "borrowed"})
    assert response.status_code == 400
    assert "status" in response.json()
    assert AuditEvent.objects.count() == before


def test_csv_export_runs_a_fixed_number_of_queries(portfolio, admin_user, django_assert_max_num_queries):
    client = client_for(admin_user)
    with django_assert_max_num_queries(12):
        b"".join(client.get("/api/v1/reports/reissue-requests.csv").streaming_content)
    with django_assert_max_num_queries(12):
        b"".join(client.get("/api/v1/reports/transfers.csv").streaming_content)


@pytest.mark.postgres
@pytest.mark.parametrize("name", ["audit-trail", "licenses", "transfers"])
@pytest.mark.parametrize("chunk_rows", [2, 50_000])
def test_copy_writes_the_same_cells_as_the_python_writer(portfolio, tmp_path, name, chunk_rows, monkeypatch):
    if connection.vendor != "postgresql":
        pytest.skip("COPY is PostgreSQL's")
    monkeypatch.setattr(writers, "COPY_CHUNK_ROWS", chunk_rows)
    monkeypatch.setattr(writers, "STREAM_BLOCK_BYTES", 64 if chunk_rows == 2 else 1 << 20)
    report = REPORTS[name]
    assert report.can_copy(connection)
    with transaction.atomic():
        for attempted in ("-2+3", "@SUM(A1)", "=cmd|' /C calc'!A0", "\tx"):
            # actor cells that start like formulas (names typed at a sign-in)
            audit_record(actor=attempted, action="auth.locked_out", object_type="user", summary="Locked.")
    by_copy, by_python = tmp_path / "copy.csv", tmp_path / "python.csv"
    assert write_csv(report, {}, by_copy, use_copy=True) == write_csv(report, {}, by_python, use_copy=False)
    copied = read_table(by_copy.read_bytes(), "csv")
    assert copied == read_table(by_python.read_bytes(), "csv")
    assert read_table(b"".join(writers.csv_stream(report, {})), "csv") == copied
    assert len(copied) > 2
    if name == "transfers":
        assert "'" + INJECTION in copied[1]
    if name == "audit-trail":
        actors = [row[2] for row in copied[1:]]
        assert {"'-2+3", "'@SUM(A1)", "'=cmd|' /C calc'!A0", "'\tx"} <= set(actors)


@pytest.mark.postgres
def test_copy_takes_the_filters(portfolio, tmp_path):
    if connection.vendor != "postgresql":
        pytest.skip("COPY is PostgreSQL's")
    path = tmp_path / "trail.csv"
    assert write_csv(REPORTS["audit-trail"], {"action": "transfer", "actor": "bob"}, path, use_copy=True) == 1
    assert [r["Action"] for r in as_dicts(read_table(path.read_bytes(), "csv"))] == ["transfer.rejected"]


@pytest.mark.postgres
@pytest.mark.parametrize("name", ["licenses", "transfers"])
def test_a_search_that_matches_no_host_gives_a_whole_header_only_csv(portfolio, admin_user, tmp_path, name):
    # The search's subquery finds no machine, so Django knows the filter matches nothing and
    # cannot write it as SQL; COPY used to fail mid-response.
    if connection.vendor != "postgresql":
        pytest.skip("COPY is PostgreSQL's")
    report = REPORTS[name]
    assert report.can_copy(connection)
    table = download(client_for(admin_user), name, "csv", q="no-such-host")
    assert table == [report.headers]
    path = tmp_path / "empty.csv"
    assert write_csv(report, {"q": "no-such-host"}, path, use_copy=True, on_row=lambda n: None) == 0
    assert read_table(path.read_bytes(), "csv") == [report.headers]
    # The same search with a host that exists still finds it.
    assert len(download(client_for(admin_user), name, "csv", q="ws-report")) > 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_download_closed_early_cancels_its_copy_and_leaves_the_connection_usable(monkeypatch):
    import threading
    import time

    if connection.vendor != "postgresql":
        pytest.skip("COPY is PostgreSQL's")
    monkeypatch.setattr(writers, "STREAM_BLOCK_BYTES", 16)
    monkeypatch.setattr(writers, "STREAM_QUEUE_BLOCKS", 1)
    # About 1.2 GB, more than a minute to write out: only a cancelled COPY ends at once.
    stream = writers._copy_stream("COPY (SELECT g, repeat('x', 50) FROM generate_series(1, 20000000) g) TO STDOUT")
    first = next(stream)
    assert first.startswith(b"1\t")
    started = time.monotonic()
    stream.close()  # the client went away
    assert not [t for t in threading.enumerate() if t.name == "report-copy"]
    with connection.cursor() as cursor:
        cursor.execute("SELECT 2")
        assert cursor.fetchone() == (2,)
    assert time.monotonic() - started < 5


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_copy_that_fails_fails_the_download():
    import psycopg2

    if connection.vendor != "postgresql":
        pytest.skip("COPY is PostgreSQL's")
    with pytest.raises(psycopg2.errors.DivisionByZero):
        b"".join(writers._copy_stream("COPY (SELECT 1 / (g - 3) FROM generate_series(1, 5) g) TO STDOUT"))
    with connection.cursor() as cursor:
        cursor.execute("SELECT 2")
        assert cursor.fetchone() == (2,)


def test_every_formula_trigger_is_below_a_letter():
    """The SQL neutraliser lets text through at once when its first code point is above 64."""
    from core.tables import FORMULA_TRIGGERS

    assert max(ord(c) for c in FORMULA_TRIGGERS) < 65
