"""Time and peak memory of importing 100,000 issued licenses from Export-Csv files.

Usage (PostgreSQL running; the scratch database is dropped and made again)::

    .venv/bin/python bench/import_100k.py [--rows 100000] [--database portal_import_bench]

It writes a Windows PowerShell 5.1 style export (``#TYPE`` line, WMI system columns,
DMTF datetimes, UTF-16 LE with BOM, CRLF): 21 key packs (20 purchased plus the
temporary licenses pseudo-pack) and ``--rows`` issued licenses, about 95% active, 3%
temporary and 2% revoked, one client machine each, a tenth of which the portal already
knows. It then runs ``license_server_import`` three times in one process: the import
itself, a second import of the same files (a no-op) and a dry run, and prints for each
the time (and this process's CPU time, the rest being the database's work and waits),
the number of SQL queries and the process's peak RSS
(``resource.getrusage(RUSAGE_SELF).ru_maxrss``) after it.
"""

import argparse
import codecs
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SERVER = os.environ.get("BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432")
SERVER = "TSLS-BENCH"
PACKS = 20
TEMPORARY_PACK = 99
WMI_TAIL = (
    '"System.Management.ManagementScope","{path}","System.Management.ObjectGetOptions",'
    '"{classpath}","System.Management.PropertyDataCollection",'
    '"System.Management.PropertyDataCollection","System.Management.QualifierDataCollection","",""'
)
SYSTEM_COLUMNS = (
    '"PSComputerName","__GENUS","__CLASS","__SUPERCLASS","__DYNASTY","__RELPATH",'
    '"__PROPERTY_COUNT","__DERIVATION","__SERVER","__NAMESPACE","__PATH"'
)
OBJECT_COLUMNS = '"Scope","Path","Options","ClassPath","Properties","SystemProperties","Qualifiers","Site","Container"'


def dmtf(moment: datetime) -> str:
    return moment.strftime("%Y%m%d%H%M%S") + ".000000-000"


def wmi_prefix(cls: str, relpath: str, count: int) -> str:
    path = f"\\\\{SERVER}\\root\\cimv2:{relpath}"
    head = (
        f'"{SERVER}","2","{cls}","","{cls}","{relpath}","{count}","System.String[]","{SERVER}",'
        f'"root\\cimv2","{path}"'
    )
    tail = WMI_TAIL.format(path=path, classpath=f"\\\\{SERVER}\\root\\cimv2:{cls}")
    return head, tail


def write_utf16(path: Path, lines) -> None:
    with path.open("wb") as out:
        out.write(codecs.BOM_UTF16_LE)
        for line in lines:
            out.write((line + "\r\n").encode("utf-16-le"))


def generate(directory: Path, rows: int, seed: int = 7):
    rng = random.Random(seed)
    per_pack = -(-rows // PACKS)
    cls = "Win32_TSLicenseKeyPack"
    key_pack_lines = [
        f"#TYPE System.Management.ManagementObject#root\\cimv2\\{cls}",
        SYSTEM_COLUMNS + ',"AccessRights","AvailableLicenses","Description","ExpirationDate",'
        '"IssuedLicenses","KeyPackId","KeyPackType","ProductType","ProductVersion",'
        '"ProductVersionID","TotalLicenses","TypeAndModel",' + OBJECT_COLUMNS,
    ]
    statuses = []
    for _ in range(rows):
        roll = rng.random()
        statuses.append(2 if roll < 0.95 else 1 if roll < 0.98 else 4)
    packs_of = []
    issued = [0] * (PACKS + 1)
    for index, status in enumerate(statuses):
        pack = TEMPORARY_PACK if status == 1 else 1 + index % PACKS
        packs_of.append(pack)
        if status == 2:
            issued[pack] += 1
    for pack in [*range(1, PACKS + 1), TEMPORARY_PACK]:
        temporary = pack == TEMPORARY_PACK
        head, tail = wmi_prefix(cls, f"{cls}.KeyPackId={pack}", 12)
        total = 0 if temporary else per_pack
        used = 0 if temporary else issued[pack]
        description = ("Temporary Licenses for Windows Server 2003 - Terminal Server Per Device CAL Token"
                       if temporary else "Windows Server 2003 - Terminal Server Per Device CAL Token")
        key_pack_lines.append(
            f'{head},"0","{total - used}","{description}","20380119031407.000000-000","{used}",'
            f'"{pack}","{4 if temporary else 2}","0","Windows Server 2003","0","{total}",'
            f'"TS Per Device CAL",{tail}'
        )
    write_utf16(directory / "keypacks.csv", key_pack_lines)

    cls = "Win32_TSIssuedLicense"
    start = datetime(2023, 1, 1, tzinfo=UTC)

    def issued_lines():
        yield f"#TYPE System.Management.ManagementObject#root\\cimv2\\{cls}"
        yield (SYSTEM_COLUMNS + ',"ExpirationDate","IssueDate","KeyPackId","LicenseId","LicenseStatus",'
               '"sHardwareId","sIssuedToComputer","sIssuedToUser",' + OBJECT_COLUMNS)
        for index, status in enumerate(statuses):
            license_id = index + 1
            pack = packs_of[index]
            head, tail = wmi_prefix(cls, f"{cls}.KeyPackId={pack},LicenseId={license_id}", 8)
            issued_at = start + timedelta(minutes=7 * index)
            yield (
                f'{head},"{dmtf(issued_at + timedelta(days=89))}","{dmtf(issued_at)}","{pack}",'
                f'"{license_id}","{status}","{rng.getrandbits(128):032x}","WS-{license_id:06d}","",'
                f"{tail}"
            )

    write_utf16(directory / "issued.csv", issued_lines())
    return statuses


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--database", default="portal_import_bench")
    args = parser.parse_args()

    url = f"{DEFAULT_SERVER}/{args.database}"
    subprocess.run(["dropdb", "--if-exists", "-h", "127.0.0.1", "-U", "postgres", args.database], check=True)
    subprocess.run(["createdb", "-h", "127.0.0.1", "-U", "postgres", args.database], check=True)
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DJANGO_SECRET_KEY", "bench-only-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    from core.audit import audit_verify_chain
    from core.models import AuditEvent
    from inventory.models import ClientMachine, OsEdition
    from licensing.models import License, WindowsVersion
    from licensing.services.imports import license_server_import
    from licensing.services.servers import license_server_create

    call_command("migrate", verbosity=0)
    license_server_create(actor="bench", name=SERVER, windows_version=WindowsVersion.WINDOWS_SERVER_2003)
    # A tenth of the clients are already in the inventory.
    ClientMachine.objects.bulk_create(
        [ClientMachine(hostname=f"ws-{n:06d}", os_edition=OsEdition.WINDOWS_XP_HOME)
         for n in range(1, args.rows + 1, 10)],
        batch_size=5000,
    )

    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        began = time.perf_counter()
        statuses = generate(directory, args.rows)
        files = [(p.name, p.read_bytes()) for p in (directory / "keypacks.csv", directory / "issued.csv")]
        sizes = ", ".join(f"{name} {len(data) / 2**20:.1f} MiB" for name, data in files)
        print(f"generated {args.rows} issued-license rows in {time.perf_counter() - began:.1f} s ({sizes}); "
              f"statuses {dict(sorted((s, statuses.count(s)) for s in set(statuses)))}")
    del statuses
    print(f"peak RSS before the import: {peak_mb():.0f} MB")

    queries = [0]

    def count(execute, sql, params, many, context):
        queries[0] += 1
        return execute(sql, params, many, context)

    for label, options in (("import", {}), ("second import (no-op)", {}), ("dry run", {"dry_run": True})):
        queries[0] = 0
        events_before = AuditEvent.objects.count()
        began, cpu = time.perf_counter(), time.process_time()
        with connection.execute_wrapper(count):
            report = license_server_import(server_name=SERVER, files=files, actor="bench", **options)
        elapsed, cpu = time.perf_counter() - began, time.process_time() - cpu
        print(
            f"{label}: {elapsed:.1f} s ({cpu:.1f} s CPU in this process), {queries[0]} queries, "
            f"peak RSS {peak_mb():.0f} MB; "
            f"{report.outcome}; created {dict(report.created)}, updated {dict(report.updated)}, "
            f"planned {dict(report.planned_created)}, {len(report.errors)} errors, "
            f"{len(report.skipped)} skipped, "
            f"{AuditEvent.objects.count() - events_before} audit events written"
        )
    print(f"licenses in the portal: {License.objects.count()}")
    began = time.perf_counter()
    verification = audit_verify_chain()
    print(f"audit chain verified: {verification.ok}, {verification.events} events, "
          f"{time.perf_counter() - began:.1f} s")


if __name__ == "__main__":
    main()
