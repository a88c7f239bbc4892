"""The import service: what an import creates, updates, skips and refuses."""

import hashlib
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from django.core.exceptions import ValidationError

from core.audit import audit_verify_chain
from core.models import AuditEvent
from inventory.models import ClientMachine, OsEdition
from licensing.models import (
    DriftItem,
    DriftKind,
    DriftState,
    KeyPack,
    License,
    LicenseEndReason,
    LicenseKind,
    LicenseProgram,
    LicenseStatus,
    Snapshot,
    WindowsVersion,
)
from licensing.services.imports import license_server_import
from licensing.services.licenses import license_issue_temporary
from licensing.tests.factories import LicenseServerFactory, MachineFactory

FILES = Path(__file__).parent / "import_files"


def files(*names):
    return [(name, (FILES / name).read_bytes()) for name in names]


def run(*names, server="TSLS-HQ", actor="alice", **options):
    return license_server_import(server_name=server, files=files(*names), actor=actor, **options)


def snapshot():
    return (
        ClientMachine.objects.count(), KeyPack.objects.count(),
        list(License.objects.order_by("pk").values_list("status", "end_reason", "hardware_id")),
        list(KeyPack.objects.order_by("pk").values_list("total_licenses", "expires_on")),
        AuditEvent.objects.count(),
    )


def codes(report, level="error"):
    return [(p.file, p.line, p.column, p.code) for p in report.problems if p.level == level]


@pytest.fixture
def server_2019(db):
    return LicenseServerFactory(
        name="TSLS-2019", windows_version=WindowsVersion.WINDOWS_SERVER_2019,
        builtin_cal_for_pro_clients=False,
    )


def test_windows_powershell_51_export_utf16_and_utf8_bom(server, admin_user, machine):
    report = run("keypacks_ps51_utf16.csv", "issued_ps51_bom.csv", actor=admin_user,
                 installed_on=date(2024, 1, 2))

    assert report.committed and report.errors == []
    packs = {p.key_pack_id: p for p in KeyPack.objects.filter(license_server=server)}
    assert set(packs) == {4, 5}  # the built-in pack 2 and temporary pseudo-pack 3 are skipped
    assert (packs[4].product_version, packs[4].cal_type, packs[4].license_program) == (
        "windows_server_2003", "per_device", LicenseProgram.SELECT
    )
    assert (packs[4].total_licenses, packs[4].expires_on, packs[4].installed_on) == (5, None, date(2024, 1, 2))
    assert (packs[5].cal_type, packs[5].license_program, packs[5].expires_on) == (
        "per_user", LicenseProgram.RETAIL, date(2027, 6, 30)
    )
    licenses = {lic.license_id: lic for lic in License.objects.select_related("machine")}
    assert set(licenses) == {1, 2, 3}  # 4 is a built-in CAL, 5 was revoked
    assert licenses[1].machine == machine  # WS-XPHOME-01 matched without regard to case
    assert licenses[1].issued_at == datetime(2024, 1, 15, 9, 30, 12, tzinfo=UTC)
    assert licenses[1].hardware_id == "0c9f6a2e-4a1b-4c7d-9e21-6b1f0a2c3d41"
    assert licenses[2].issued_at == datetime(2024, 1, 16, 9, 15, tzinfo=UTC)  # +060
    assert licenses[2].machine.os_edition == OsEdition.OTHER
    temporary = licenses[3]
    assert (temporary.kind, temporary.key_pack, temporary.product_version) == (
        LicenseKind.TEMPORARY, None, WindowsVersion.WINDOWS_SERVER_2003
    )
    # Its 90 days ended long ago: it comes in expired.
    assert (temporary.status, temporary.end_reason) == (LicenseStatus.EXPIRED, LicenseEndReason.EXPIRED_90_DAYS)
    assert codes(report, "skipped") == [
        ("issued_ps51_bom.csv", 6, "KeyPackId", "builtin_cal"),
        ("issued_ps51_bom.csv", 7, "LicenseStatus", "not_active"),
        ("keypacks_ps51_utf16.csv", 3, "KeyPackType", "pseudo_pack"),
        ("keypacks_ps51_utf16.csv", 4, "KeyPackType", "pseudo_pack"),
    ]

    actions = list(AuditEvent.objects.order_by("sequence").values_list("action", flat=True))
    assert actions.count("import.machine_created") == 2
    assert actions.count("import.key_pack_created") == 2
    assert actions.count("import.license_created") == 3
    assert actions[-1] == "import.completed"
    summary = AuditEvent.objects.get(action="import.completed")
    assert summary.actor == "alice"
    assert {f["name"]: f["sha256"] for f in summary.data["files"]} == {
        name: hashlib.sha256(data).hexdigest()
        for name, data in files("keypacks_ps51_utf16.csv", "issued_ps51_bom.csv")
    }
    created = AuditEvent.objects.get(action="import.license_created", object_id=str(licenses[1].pk))
    assert created.data["refs"]["machine"] == [machine.pk]
    assert created.data["source"] == {"file": "issued_ps51_bom.csv", "line": 3, "license_status": 2}
    assert audit_verify_chain().ok


def test_importing_the_same_export_twice_changes_nothing(server, admin_user):
    first = run("keypacks_ps51.csv", "issued_ps51.csv", actor=admin_user)
    assert first.committed and first.changes == 8
    before = snapshot()

    second = run("keypacks_ps51_utf16.csv", "issued_ps51_bom.csv", actor=admin_user)

    # Every import is a snapshot: its own event is the only new one.
    assert second.committed and second.changes == 0 and second.events_written == 1
    assert second.outcome == "nothing to change"
    assert second.unchanged == {"key_pack": 2, "license": 3}
    assert snapshot()[:-1] == before[:-1] and snapshot()[-1] == before[-1] + 1
    assert AuditEvent.objects.order_by("-sequence").first().action == "import.completed"
    assert Snapshot.objects.count() == 2


def test_a_newer_export_updates_what_changed(server, admin_user):
    run("keypacks_ps51.csv", "issued_ps51.csv", actor=admin_user)

    report = run("keypacks_ps51_later.csv", "issued_ps51_later.csv", actor=admin_user)

    assert report.committed
    assert (report.created, report.ended) == ({"machine": 1, "license": 1}, {"license": 1})
    # The portal's total is the purchase record: the server's other total is drift, not an update.
    assert KeyPack.objects.get(key_pack_id=4).total_licenses == 5
    mismatch = DriftItem.objects.get(kind=DriftKind.PACK_COUNT_MISMATCH)
    assert "TotalLicenses 8 on the server, 5 in the portal" in mismatch.detail
    # Revoked on the server (rule 12): revoked here too, with its place in the quota.
    revoked = License.objects.get(license_id=1)
    assert (revoked.status, revoked.end_reason) == (LicenseStatus.REVOKED, LicenseEndReason.REVOKED)
    assert revoked.ended_at is not None and revoked.revoked_at == revoked.ended_at
    revocation = revoked.revocation
    assert (revocation.recorded_by, revocation.snapshot) == (None, Snapshot.objects.latest("pk"))
    assert revocation.holds_quota_until == (revoked.expires_at or revoked.ended_at + timedelta(days=89))
    assert License.objects.get(license_id=6).machine.hostname == "WS-0006"
    updated = AuditEvent.objects.get(action="import.license_updated")
    assert updated.data["changes"]["status"] == ["active", "revoked"]

    # CALs an earlier snapshot listed and this one does not: the server ended them, so the portal does.
    later = (FILES / "issued_ps51_later.csv").read_text().splitlines(keepends=True)
    without = "".join(line for line in later if 'LicenseId=2"' not in line and 'LicenseId=6"' not in line)
    partial = license_server_import(server_name="TSLS-HQ", actor=admin_user,
                                    files=files("keypacks_ps51_later.csv") + [("issued.csv", without.encode())])
    assert partial.committed and partial.ended == {"license": 2}
    for license_id in (2, 6):
        gone = License.objects.get(license_id=license_id)
        assert (gone.status, gone.end_reason) == (LicenseStatus.EXPIRED, LicenseEndReason.ABSENT_ON_SERVER)
    missing = DriftItem.objects.filter(kind=DriftKind.LICENSE_MISSING_ON_SERVER)
    assert sorted(missing.values_list("license__license_id", flat=True)) == [2, 6]
    assert audit_verify_chain().ok


def test_powershell_7_export_with_locale_dates(server_2019):
    report = run("keypacks_ps7.csv", "issued_ps7.csv", server="tsls-2019", actor=None)

    assert report.committed and report.errors == []
    assert [f.style for f in report.files] == ["PowerShell 7 (Get-CimInstance)"] * 2
    packs = {p.key_pack_id: p for p in KeyPack.objects.all()}
    assert set(packs) == {7, 8}
    assert packs[8].product_version == WindowsVersion.WINDOWS_SERVER_2008_R2  # "Windows Server 7"
    assert (packs[8].license_program, packs[8].expires_on) == (LicenseProgram.OPEN, date(2030, 12, 31))
    lic = License.objects.get(license_id=12)
    assert lic.issued_at == datetime(2024, 2, 29, 16, 5, tzinfo=UTC)
    assert lic.key_pack == packs[7]
    temporary = License.objects.get(license_id=13)
    assert (temporary.kind, temporary.product_version) == (LicenseKind.TEMPORARY, WindowsVersion.WINDOWS_SERVER_2019)
    assert AuditEvent.objects.get(action="import.completed").actor == "system"


def test_date_order_option(server_2019):
    run("keypacks_ps7.csv", server="TSLS-2019")

    wrong = run("issued_ps7_dmy.csv", server="TSLS-2019")
    assert not wrong.committed
    assert codes(wrong) == [("issued_ps7_dmy.csv", 2, "IssueDate", "bad_value")]
    assert not License.objects.exists()

    right = run("issued_ps7_dmy.csv", server="TSLS-2019", date_order="dmy")
    assert right.committed
    assert License.objects.get(license_id=21).issued_at == datetime(2024, 1, 15, 9, 30, 12, tzinfo=UTC)


def test_unknown_product_version_refuses_the_whole_file_set(server_2019):
    report = run("keypacks_unknown_version.csv", server="TSLS-2019")

    assert not report.committed
    assert report.outcome == "refused: nothing was imported"
    assert codes(report) == [("keypacks_unknown_version.csv", 3, "ProductVersion", "bad_value")]
    assert "Unknown ProductVersion 'Windows Server 2030'" in report.errors[0].message
    assert not KeyPack.objects.exists() and not License.objects.exists()
    assert not AuditEvent.objects.exists() and not Snapshot.objects.exists()


def test_an_import_never_oversells_a_pack(server_2019):
    report = run("keypacks_oversold.csv", "issued_ps7.csv", server="TSLS-2019")

    assert not report.committed
    assert codes(report) == [
        ("issued_ps7.csv", 3, "KeyPackId", "no_licenses_available"),
        ("issued_ps7.csv", 4, "KeyPackId", "unknown_key_pack"),  # pseudo-pack 9 is not in the set
        ("keypacks_oversold.csv", 2, "TotalLicenses", "no_licenses_available"),
    ]
    oversold = [p.message for p in report.errors if p.code == "no_licenses_available"]
    assert oversold == [
        "Key pack 7 on TSLS-2019 has no licenses available (1 of 1 issued).",
        "Key pack 7 on TSLS-2019 would be oversold: the export lists 2 active licenses from it, "
        "but it holds 1.",
    ]
    assert [p.code for p in report.warnings] == ["issued_count_mismatch"]
    assert not License.objects.exists()


def test_a_second_cal_the_server_issued_to_one_host_is_duplicate_issuance(server_2019):
    report = run("keypacks_ps7.csv", "issued_duplicate_machine.csv", server="TSLS-2019")

    # The server's listing is the truth about issuance: never a reason to refuse the file. The
    # portal keeps one active CAL for the host (rule 4) and reports the second.
    assert report.committed and report.errors == []
    assert ("issued_duplicate_machine.csv", 3, "sIssuedToComputer", "duplicate_issuance") in codes(report, "skipped")
    assert list(License.objects.values_list("license_id", flat=True)) == [31]
    assert ClientMachine.objects.filter(hostname__iexact="rds-client-31").count() == 1
    item = DriftItem.objects.get(kind=DriftKind.DUPLICATE_ISSUANCE)
    assert item.machine.hostname.lower() == "rds-client-31" and item.state == DriftState.OPEN


def test_a_permanent_cal_ends_the_machines_temporary_one(server_2019, admin_user):
    machine = MachineFactory(hostname="RDS-CLIENT-01", os_edition=OsEdition.WINDOWS_10)
    temporary = license_issue_temporary(
        machine=machine, license_server=server_2019,
        product_version=WindowsVersion.WINDOWS_SERVER_2019, actor=admin_user,
    )

    report = run("keypacks_ps7.csv", "issued_ps7.csv", server="TSLS-2019")

    assert report.committed
    temporary.refresh_from_db()
    assert (temporary.status, temporary.end_reason) == (
        LicenseStatus.EXPIRED, LicenseEndReason.REPLACED_BY_PERMANENT
    )
    assert License.objects.get(license_id=11).machine == machine


def test_rules_refuse_retired_machines_and_built_in_cal_clients(server, admin_user):
    MachineFactory(hostname="ws-0002.corp.example.com", os_edition=OsEdition.WINDOWS_XP_PROFESSIONAL)
    report = run("keypacks_ps51.csv", "issued_ps51.csv")
    assert codes(report) == [("issued_ps51.csv", 4, "sIssuedToComputer", "os_includes_cal")]
    assert "includes its TS CAL on license server TSLS-HQ" in report.errors[0].message
    assert not report.committed and not License.objects.exists()


def test_truncated_file(server_2019):
    report = run("keypacks_ps7.csv", "issued_truncated.csv", server="TSLS-2019")
    assert not report.committed
    assert codes(report) == [("issued_truncated.csv", 4, "", "bad_row")]
    assert not License.objects.exists() and not Snapshot.objects.exists()


def test_files_that_are_not_exports_are_never_skipped(server_2019):
    report = license_server_import(
        server_name="TSLS-2019", actor="alice",
        files=files("keypacks_ps7.csv", "random.txt") + [("cal.bin", bytes(range(256)))],
    )
    assert not report.committed
    assert [(p.file, p.code) for p in report.errors] == [("cal.bin", "not_csv"), ("random.txt", "not_csv")]
    assert not KeyPack.objects.exists()


def test_dry_run_reports_and_writes_nothing(server):
    report = run("keypacks_ps51.csv", "issued_ps51.csv", dry_run=True)

    assert not report.committed and report.outcome == "dry run: nothing was written"
    assert report.created == {"machine": 3, "key_pack": 2, "license": 3}
    assert "create key pack 4: 5 per device CALs, Windows Server 2003, select" in report.actions
    assert snapshot() == (0, 0, [], [], 0)


def test_unknown_server_and_bad_options(db):
    with pytest.raises(ValidationError, match="no license server named 'nowhere'"):
        run("keypacks_ps51.csv", server="nowhere")
    with pytest.raises(ValidationError, match="Choose one of mdy, dmy, ymd"):
        run("keypacks_ps51.csv", date_order="ydm")


def test_a_temporary_cal_only_once_per_product_and_none_to_retired_machines(server_2019, admin_user):
    used = MachineFactory(hostname="RDS-CLIENT-03", os_edition=OsEdition.WINDOWS_10)
    license_issue_temporary(machine=used, license_server=server_2019,
                            product_version=WindowsVersion.WINDOWS_SERVER_2019, actor=admin_user)
    MachineFactory(hostname="rds-client-02", status="retired", retired_at=datetime(2024, 1, 1, tzinfo=UTC))

    report = run("keypacks_ps7.csv", "issued_ps7.csv", server="TSLS-2019")

    assert codes(report) == [
        ("issued_ps7.csv", 3, "sIssuedToComputer", "machine_retired"),
        ("issued_ps7.csv", 4, "sIssuedToComputer", "temporary_already_used"),
    ]
    assert report.errors[1].message.startswith("Machine RDS-CLIENT-03 already had temporary CAL #")
    assert not report.committed and License.objects.count() == 1


def test_audit_data_is_what_json_would_store():
    import json
    from decimal import Decimal
    from uuid import UUID

    from django.core.serializers.json import DjangoJSONEncoder

    from core.audit import json_safe

    data = {"after": {"issued_at": datetime(2024, 1, 15, 9, 30, 12, 123456, tzinfo=UTC),
                      "installed_on": date(2024, 1, 2), "kind": LicenseKind.PERMANENT, "id": 3,
                      "expires_at": None},
            "changes": {"total_licenses": [5, 8]}, "refs": {"machine": (1, 2)},
            7: Decimal("1.50"), "uuid": UUID(int=5), "flag": True, "ratio": 0.25}
    assert json_safe(data) == json.loads(json.dumps(data, cls=DjangoJSONEncoder))
