"""manage.py import_license_server."""

from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from core.models import AuditEvent
from licensing.models import ImportJob, KeyPack, License, Snapshot

FILES = Path(__file__).parent / "import_files"


def command(*args):
    out = StringIO()
    call_command("import_license_server", *args, stdout=out)
    return out.getvalue()


def paths(*names):
    return [str(FILES / name) for name in names]


def test_dry_run_then_import(server, admin_user):
    out = command("--server", "tsls-hq", "--dry-run", *paths("keypacks_ps51.csv", "issued_ps51.csv"))
    assert "keypacks_ps51.csv: Win32_TSLicenseKeyPack, Windows PowerShell 5.1 (Get-WmiObject), UTF-8" in out
    assert "licenses: 3 would be created, 0 would be updated" in out
    assert "SKIPPED: issued_ps51.csv, line 7, column LicenseStatus: LicenseId 5 on WS-0005" in out
    assert "dry run: nothing was written" in out
    assert not KeyPack.objects.exists()

    out = command("--server", "TSLS-HQ", "--actor", "alice", "--installed-on", "2024-01-02",
                  *paths("keypacks_ps51.csv", "issued_ps51.csv"))
    assert "imported: 0 errors" in out
    assert KeyPack.objects.get(key_pack_id=4).installed_on.isoformat() == "2024-01-02"
    assert License.objects.count() == 3
    assert AuditEvent.objects.get(action="import.completed").actor == "alice"


def test_any_problem_refuses_the_whole_import(server):
    with pytest.raises(CommandError, match="refused: nothing was imported: 3 errors") as info:
        command("--server", "TSLS-HQ", *paths("keypacks_ps51.csv", "issued_truncated.csv"))
    assert not KeyPack.objects.exists() and not Snapshot.objects.exists()
    job = ImportJob.objects.get()
    assert (job.status, job.problem_count, job.dry_run) == ("failed", 3, False)
    assert {(p["file"], p["code"]) for p in job.problems} >= {("issued_truncated.csv", "bad_row")}
    assert all(set(p) == {"file", "line", "column", "code", "detail"} for p in job.problems)
    assert "import job #" in str(info.value)


def test_unknown_server_unreadable_file_and_non_admin_actor(server, requester):
    with pytest.raises(CommandError, match="no license server named 'TSLS-XX'"):
        command("--server", "TSLS-XX", *paths("keypacks_ps51.csv"))
    with pytest.raises(CommandError, match="Cannot read"):
        command("--server", "TSLS-HQ", str(FILES / "missing.csv"))
    with pytest.raises(CommandError, match="'rita' is not an administrator"):
        command("--server", "TSLS-HQ", "--actor", "rita", *paths("keypacks_ps51.csv"))
