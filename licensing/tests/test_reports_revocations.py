"""The revocations report (rule 12) through the API download, the background export and
``manage.py export_report``, and the compliance report's columns for rules 12 to 14."""

import csv
import io
from datetime import UTC, timedelta

import openpyxl
import pytest
from django.core.management import call_command
from django.utils import timezone

from core.models import AuditEvent
from licensing import models as m
from licensing.models import WindowsVersion
from licensing.reports import REPORTS
from licensing.services.exports import export_start
from licensing.services.imports import license_server_import
from licensing.services.revocations import license_revoke
from licensing.tests.exports import issued, issued_csv, key_pack, key_packs_csv
from licensing.tests.factories import KeyPackFactory, LicenseFactory, LicenseServerFactory, MachineFactory
from licensing.tests.test_reports import as_dicts, client_for, download, read_table

NOW = timezone.now()
FORMULA_NOTE = "=cmd|' /C calc'!A0"
HEADERS = ["Revocation", "License server", "Product version", "License", "LicenseId", "Host name", "KeyPackId",
           "Revoked at", "Holds a quota place until", "Recorded by", "Recorded at", "Note"]


def iso(moment) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds")


def server_of(name, version):
    return LicenseServerFactory(name=name, windows_version=version, builtin_cal_for_pro_clients=False)


def snapshot_revocation(server, actor):
    """A CAL the server listed, then listed as revoked (LicenseStatus 4): the snapshot recorded it."""
    first = license_server_import(server_name=server.name, actor=actor, files=[
        key_packs_csv(key_pack(1950, 10, issued=1)), issued_csv(issued(501, 1950, "ws-snap-01"))])
    second = license_server_import(server_name=server.name, actor=actor, files=[
        key_packs_csv(key_pack(1950, 10)), issued_csv(issued(501, 1950, "ws-snap-01", status=4))])
    assert first.committed and second.committed
    return m.Revocation.objects.get(license__license_id=501), second.snapshot_id


@pytest.fixture
def revocations(admin_user, second_admin):
    s19 = server_of("TSLS-19", WindowsVersion.WINDOWS_SERVER_2019)
    pack = KeyPackFactory(license_server=s19, key_pack_id=1900, product_version=WindowsVersion.WINDOWS_SERVER_2019,
                          total_licenses=10)
    early = LicenseFactory(key_pack=pack, machine=MachineFactory(hostname="ws-rev-01"),
                           issued_at=NOW - timedelta(days=30), expires_at=NOW + timedelta(days=40))
    later = LicenseFactory(key_pack=pack, machine=MachineFactory(hostname="ws-rev-02"),
                           issued_at=NOW - timedelta(days=30))
    license_revoke(license=early, actor=admin_user, note=FORMULA_NOTE, revoked_at=NOW - timedelta(days=3))
    license_revoke(license=later, actor=admin_user, note="Reimaged")
    snapped, snapshot_id = snapshot_revocation(server_of("TSLS-SNAP", WindowsVersion.WINDOWS_SERVER_2019), admin_user)
    s22 = server_of("TSLS-22", WindowsVersion.WINDOWS_SERVER_2022)
    pack22 = KeyPackFactory(license_server=s22, key_pack_id=2200, product_version=WindowsVersion.WINDOWS_SERVER_2022,
                            total_licenses=5)
    by_bob = LicenseFactory(key_pack=pack22, machine=MachineFactory(hostname="ws-rev-22"),
                            issued_at=NOW - timedelta(days=5))
    license_revoke(license=by_bob, actor=second_admin)
    return {"early": early, "later": later, "snapped": snapped, "snapshot_id": snapshot_id, "by_bob": by_bob,
            "s19": s19, "s22": s22}


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_one_row_per_revocation_with_who_recorded_it(revocations, auditor, fmt):
    table = download(client_for(auditor), "revocations", fmt)
    assert table[0] == HEADERS == REPORTS["revocations"].headers
    rows = as_dicts(table)
    early = m.Revocation.objects.get(license=revocations["early"])
    assert [int(r["Revocation"]) for r in rows] == list(
        m.Revocation.objects.order_by("id").values_list("id", flat=True))
    assert rows[0] == {
        "Revocation": str(early.pk), "License server": "TSLS-19", "Product version": "Windows Server 2019",
        "License": str(revocations["early"].pk), "LicenseId": "", "Host name": "ws-rev-01", "KeyPackId": "1900",
        "Revoked at": iso(early.revoked_at), "Holds a quota place until": iso(revocations["early"].expires_at),
        "Recorded by": "alice", "Recorded at": iso(early.recorded_at), "Note": "'" + FORMULA_NOTE,
    }
    later = m.Revocation.objects.get(license=revocations["later"])
    assert rows[1]["Holds a quota place until"] == iso(later.revoked_at + timedelta(days=89))
    snapped = next(r for r in rows if r["Host name"] == "ws-snap-01")
    assert (snapped["Recorded by"], snapped["LicenseId"], snapped["KeyPackId"]) == (
        f"snapshot #{revocations['snapshot_id']}", "501", "1950")
    assert rows[-1]["Recorded by"] == "bob"


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_revocations_report_filters(revocations, admin_user, fmt):
    client = client_for(admin_user)

    def hosts(**params):
        return [r["Host name"] for r in as_dicts(download(client, "revocations", fmt, **params))]

    assert hosts(license_server=revocations["s22"].pk) == ["ws-rev-22"]
    assert hosts(product_version="windows_server_2019") == ["ws-rev-01", "ws-rev-02", "ws-snap-01"]
    assert hosts(recorded_by="bob") == ["ws-rev-22"]
    assert hosts(q="ws-rev-0") == ["ws-rev-01", "ws-rev-02"]
    today = timezone.localdate().isoformat()
    assert "ws-rev-01" not in hosts(since=today)  # revoked three days ago
    assert hosts(until=(timezone.localdate() - timedelta(days=1)).isoformat()) == ["ws-rev-01"]
    assert hosts(q="no-such-host") == []


def test_bad_revocations_filters_are_400_and_not_audited(revocations, admin_user):
    before = AuditEvent.objects.count()
    response = client_for(admin_user).get("/api/v1/reports/revocations.csv", {"since": "last week"})
    assert response.status_code == 400 and "since" in response.json()
    assert AuditEvent.objects.count() == before


def test_revocations_csv_runs_a_fixed_number_of_queries(revocations, admin_user, django_assert_max_num_queries):
    client = client_for(admin_user)
    with django_assert_max_num_queries(12) as few:
        b"".join(client.get("/api/v1/reports/revocations.csv").streaming_content)
    for i in range(20):
        extra = LicenseFactory(key_pack=KeyPackFactory(license_server=revocations["s22"], total_licenses=10,
                                                       product_version=WindowsVersion.WINDOWS_SERVER_2022),
                               machine=MachineFactory(hostname=f"ws-more-{i:02d}"), issued_at=NOW - timedelta(days=5))
        license_revoke(license=extra, actor=admin_user)
    with django_assert_max_num_queries(len(few)):
        body = b"".join(client.get("/api/v1/reports/revocations.csv").streaming_content)
    assert len(read_table(body, "csv")) == 1 + 4 + 20


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_a_background_export_of_revocations(revocations, auditor, file_store, fmt, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        job = export_start(report="revocations", format=fmt, filters={"recorded_by": "alice"}, actor=auditor)
    job.refresh_from_db()
    assert (job.status, job.progress, job.rows, job.error) == ("done", 100, 2, "")
    response = client_for(auditor).get(f"/api/v1/exports/{job.pk}/download/")
    assert response.status_code == 200
    table = read_table(b"".join(response.streaming_content), fmt)
    assert table[0] == HEADERS
    assert [(r["Host name"], r["Recorded by"]) for r in as_dicts(table)] == [("ws-rev-01", "alice"),
                                                                             ("ws-rev-02", "alice")]


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_export_report_command_writes_revocations(revocations, tmp_path, fmt):
    output = tmp_path / f"revocations.{fmt}"
    today = timezone.localdate().isoformat()
    out = io.StringIO()
    call_command("export_report", "revocations", "--format", fmt, "--output", str(output), "--since", today,
                 "--until", today, "--filter", f"license_server={revocations['s19'].pk}", stdout=out)
    assert "Wrote 1 rows of the revocations report" in out.getvalue()
    if fmt == "csv":
        rows = list(csv.reader(output.open(encoding="utf-8")))
    else:
        rows = [["" if v is None else str(v) for v in row]
                for row in openpyxl.load_workbook(output, read_only=True).worksheets[0].iter_rows(values_only=True)]
    assert rows[0] == HEADERS and [r[5] for r in rows[1:]] == ["ws-rev-02"]
    event = AuditEvent.objects.get(action="report.exported")
    assert (event.actor, event.object_id) == ("system", "revocations")
    assert set(event.data["filters"]) == {"license_server", "since", "until"}


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_compliance_report_has_revocations_per_user_cals_and_the_shortfall(revocations, admin_user, fmt):
    users = server_of("TSLS-USERS", WindowsVersion.WINDOWS_SERVER_2019)
    assert license_server_import(server_name=users.name, actor=admin_user, files=[
        key_packs_csv(key_pack(20, 1, per_user=True)),
        issued_csv(issued(40, 20, "", user="CONTOSO\\ann"), issued(41, 20, "", user="CONTOSO\\bo")),
    ]).committed
    # TSLS-22: 5 installed, 1 revoked (its seat is free again), 5 temporary CALs end in 6 days.
    s22 = revocations["s22"]
    ends = NOW + timedelta(days=6)
    for _ in range(6):
        m.License.objects.create(machine=MachineFactory(), license_server=s22, kind=m.LicenseKind.TEMPORARY,
                                 product_version=WindowsVersion.WINDOWS_SERVER_2022,
                                 issued_at=ends - timedelta(days=90), expires_at=ends)
    rows = {r["License server"]: r for r in as_dicts(download(client_for(admin_user), "compliance", fmt))}
    new_columns = ("Revoked", "Revocation quota", "Revocation places left", "Per-user installed", "Per-user issued",
                   "Per-user over-allocated", "Shortfall on")
    assert REPORTS["compliance"].headers[-7:] == list(new_columns)
    assert [rows["TSLS-19"][c] for c in new_columns] == ["2", "2", "0", "0", "0", "No", ""]
    assert [rows["TSLS-USERS"][c] for c in new_columns] == ["0", "0", "0", "1", "2", "Yes", ""]
    assert (rows["TSLS-22"]["Available"], rows["TSLS-22"]["Revoked"]) == ("5", "1")
    assert rows["TSLS-22"]["Shortfall on"] == f"{timezone.localdate(ends):%Y-%m-%d}"
