"""B5: importing a license server's snapshot, against a plain bulk_create of the same rows.

It writes a Windows PowerShell 5.1 style export of ``rows`` issued licenses (``#TYPE`` line,
WMI system columns, DMTF datetimes, UTF-16 LE with BOM, CRLF): 20 key packs plus the
temporary licenses pseudo-pack, about 95% active, 3% temporary and 2% revoked CALs, one
client machine each, a tenth of which the portal already knows. Then, each in a database of
its own copied from one template (the server, its known machines):

- the import: ``manage.py import_license_server`` (parse, stage, plan, apply with an audit
  event per change, reconcile), as a separate process whose peak RSS is its own;
- the baseline: the same key packs, new machines and licenses written by ``bulk_create``
  (batches of 2,000) from rows made in Python, without parsing, checks or audit events.

Usage: ``python -m bench.import_snapshot --rows 100000 [--repeats 3]``; ``make bench`` runs it
as B5 (100,000 rows, repeated, and once at 1,000,000 rows for the memory).
"""

import argparse
import codecs
import json
import os
import random
import statistics
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg2

from bench.measure import run_measured

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
POSTGRES = os.environ.get("BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432")
TEMPLATE = "portal_b5_template"
SERVER = "TSLS-BENCH"
PACKS = 20
TEMPORARY_PACK = 99
START = datetime(2026, 1, 1, tzinfo=UTC)
SYSTEM_COLUMNS = ('"PSComputerName","__GENUS","__CLASS","__SUPERCLASS","__DYNASTY","__RELPATH",'
                  '"__PROPERTY_COUNT","__DERIVATION","__SERVER","__NAMESPACE","__PATH"')
OBJECT_COLUMNS = '"Scope","Path","Options","ClassPath","Properties","SystemProperties","Qualifiers","Site","Container"'
WMI_TAIL = ('"System.Management.ManagementScope","{path}","System.Management.ObjectGetOptions","{classpath}",'
            '"System.Management.PropertyDataCollection","System.Management.PropertyDataCollection",'
            '"System.Management.QualifierDataCollection","",""')


def env(database: str) -> dict:
    base = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}  # as installed
    return base | {
        "DATABASE_URL": f"{POSTGRES}/{database}",
        "DJANGO_SETTINGS_MODULE": "portal.settings",
        "DJANGO_SECRET_KEY": "bench-only-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz",
        "DJANGO_DEBUG": "0", "DJANGO_LOG_LEVEL": "WARNING", "CELERY_BROKER_URL": "",
        "PORTAL_IMPORT_ROOT": str(Path(tempfile.gettempdir()) / "portal-b5-imports"),
    }


def dmtf(moment: datetime) -> str:
    return moment.strftime("%Y%m%d%H%M%S") + ".000000-000"


def status_of(index: int, rng: random.Random) -> int:
    roll = rng.random()
    return 2 if roll < 0.95 else 1 if roll < 0.98 else 4


def pack_of(index: int, status: int) -> int:
    return TEMPORARY_PACK if status == 1 else 1 + index % PACKS


def rows_of(count: int, seed: int = 7):
    """(license_id, key pack, status, issued_at, hardware id) for each issued license."""
    rng = random.Random(seed)
    for index in range(count):
        status = status_of(index, rng)
        yield index + 1, pack_of(index, status), status, START + timedelta(minutes=3 * index), rng.getrandbits(128)


def write_utf16(path: Path, lines) -> None:
    encoder = codecs.getincrementalencoder("utf-16-le")()
    with path.open("wb") as out:
        out.write(codecs.BOM_UTF16_LE)
        for line in lines:
            out.write(encoder.encode(line + "\r\n"))


def wmi_row(cls: str, relpath: str, values: str, count: int) -> str:
    path = f"\\\\{SERVER}\\root\\cimv2:{relpath}"
    head = (f'"{SERVER}","2","{cls}","","{cls}","{relpath}","{count}","System.String[]","{SERVER}","root\\cimv2",'
            f'"{path}"')
    classpath = f"\\\\{SERVER}\\root\\cimv2:{cls}"
    return f"{head},{values},{WMI_TAIL.format(path=path, classpath=classpath)}"


def per_pack(count: int) -> int:
    return -(-count // PACKS) + 10


def generate(directory: Path, count: int) -> tuple[Path, Path]:
    issued = [0] * (TEMPORARY_PACK + 1)
    for _, pack, status, _, _ in rows_of(count):
        if status == 2:
            issued[pack] += 1
    cls = "Win32_TSLicenseKeyPack"
    lines = [f"#TYPE System.Management.ManagementObject#root\\cimv2\\{cls}",
             SYSTEM_COLUMNS + ',"AccessRights","AvailableLicenses","Description","ExpirationDate","IssuedLicenses",'
             '"KeyPackId","KeyPackType","ProductType","ProductVersion","ProductVersionID","TotalLicenses",'
             '"TypeAndModel",' + OBJECT_COLUMNS]
    for pack in [*range(1, PACKS + 1), TEMPORARY_PACK]:
        temporary = pack == TEMPORARY_PACK
        total = 4294967295 if temporary else per_pack(count)
        used = 0 if temporary else issued[pack]
        description = ("Temporary Licenses for Windows Server 2003 - Terminal Server Per Device CAL Token"
                       if temporary else "Windows Server 2003 - Terminal Server Per Device CAL Token")
        available = 0 if temporary else total - used
        lines.append(wmi_row(cls, f"{cls}.KeyPackId={pack}", (
            f'"0","{available}","{description}","20380119031407.000000-000","{used}","{pack}",'
            f'"{4 if temporary else 2}","0","Windows Server 2003","1","{total}","TS Per Device CAL"'), 12))
    keypacks = directory / "keypacks.csv"
    write_utf16(keypacks, lines)

    cls = "Win32_TSIssuedLicense"

    def issued_lines():
        yield f"#TYPE System.Management.ManagementObject#root\\cimv2\\{cls}"
        yield (SYSTEM_COLUMNS + ',"ExpirationDate","IssueDate","KeyPackId","LicenseId","LicenseStatus","sHardwareId",'
               '"sIssuedToComputer","sIssuedToUser",' + OBJECT_COLUMNS)
        for license_id, pack, status, issued_at, hardware in rows_of(count):
            yield wmi_row(cls, f"{cls}.KeyPackId={pack},LicenseId={license_id}", (
                f'"{dmtf(issued_at + timedelta(days=89))}","{dmtf(issued_at)}","{pack}","{license_id}","{status}",'
                f'"{hardware:032x}","WS-{license_id:07d}",""'), 8)

    issued_file = directory / "issued.csv"
    write_utf16(issued_file, issued_lines())
    return keypacks, issued_file


def admin_sql(statement: str) -> None:
    conn = psycopg2.connect(f"{POSTGRES}/postgres")
    try:
        conn.autocommit = True
        conn.cursor().execute(statement)
    finally:
        conn.close()


def make_template(count: int) -> None:
    """The server and the machines the portal already knows, migrated once."""
    admin_sql(f"DROP DATABASE IF EXISTS {TEMPLATE}")
    admin_sql(f"CREATE DATABASE {TEMPLATE}")
    run_measured([PYTHON, "manage.py", "migrate", "--noinput"], env=env(TEMPLATE), cwd=ROOT)
    run_measured([PYTHON, "-m", "bench.import_snapshot", "--child", "setup", "--rows", str(count)],
                 env=env(TEMPLATE), cwd=ROOT)


def fresh(name: str) -> str:
    admin_sql(f"DROP DATABASE IF EXISTS {name}")
    admin_sql(f"CREATE DATABASE {name} TEMPLATE {TEMPLATE}")
    return name


def measure(count: int, repeats: int, *, baseline: bool = True) -> dict:
    with tempfile.TemporaryDirectory(prefix="portal-b5-") as tmp:
        keypacks, issued_file = generate(Path(tmp), count)
        make_template(count)
        imports, bulks = [], []
        for _ in range(repeats):
            database = fresh("portal_b5_import")
            result = run_measured([PYTHON, "manage.py", "import_license_server", "--server", SERVER,
                                   str(keypacks), str(issued_file)], env=env(database), cwd=ROOT)
            imports.append(result | check(database, count))
            if not baseline:
                continue
            database = fresh("portal_b5_bulk")
            bulks.append(run_measured([PYTHON, "-m", "bench.import_snapshot", "--child", "bulk", "--rows", str(count)],
                                      env=env(database), cwd=ROOT) | check(database, count))
        size_mb = round(issued_file.stat().st_size / 2**20, 1)
    for name in ("portal_b5_import", "portal_b5_bulk", TEMPLATE):
        admin_sql(f"DROP DATABASE IF EXISTS {name}")
    result = {
        "rows": count, "file_mb": size_mb,
        "import_seconds": statistics.median(r["seconds"] for r in imports),
        "import_peak_rss_mb": max(r["peak_rss_mb"] for r in imports),
        "raw": {"import": imports, "bulk": bulks},
    }
    if bulks:
        ratios = [i["seconds"] / b["seconds"] for i, b in zip(imports, bulks, strict=True)]
        result |= {"bulk_seconds": statistics.median(r["seconds"] for r in bulks),
                   "ratio": round(statistics.median(ratios), 3), "ratios": [round(r, 3) for r in ratios]}
    return result


def check(database: str, count: int) -> dict:
    """What each run left in its database: the same licenses either way."""
    conn = psycopg2.connect(f"{POSTGRES}/{database}")
    try:
        cursor = conn.cursor()
        cursor.execute("SELECT count(*) FROM licensing_license")
        licenses = cursor.fetchone()[0]
        cursor.execute("SELECT count(*) FROM licensing_auditevent")
        events = cursor.fetchone()[0]
    finally:
        conn.close()
    return {"licenses": licenses, "audit_events": events}


def child_setup(count: int) -> None:
    from inventory.models import ClientMachine, OsEdition
    from licensing.models import WindowsVersion
    from licensing.services.servers import license_server_create

    license_server_create(actor="bench", name=SERVER, windows_version=WindowsVersion.WINDOWS_SERVER_2003)
    ClientMachine.objects.bulk_create(
        [ClientMachine(hostname=f"ws-{n:07d}", os_edition=OsEdition.WINDOWS_XP_HOME) for n in range(1, count + 1, 10)],
        batch_size=5000)


def child_bulk(count: int) -> None:
    """The baseline: the same rows, made in Python, written by bulk_create."""
    from django.db import transaction
    from django.db.models.functions import Lower

    from inventory.models import ClientMachine, OsEdition
    from licensing.models import CalType, KeyPack, License, LicenseKind, LicenseProgram, LicenseServer, LicenseStatus

    server = LicenseServer.objects.get(name=SERVER)
    product = "windows_server_2003"
    with transaction.atomic():
        packs = {pack.key_pack_id: pack for pack in KeyPack.objects.bulk_create([
            KeyPack(license_server=server, key_pack_id=n, product_version=product, cal_type=CalType.PER_DEVICE,
                    license_program=LicenseProgram.SELECT, total_licenses=per_pack(count), installed_on=START.date())
            for n in range(1, PACKS + 1)])}
        known = dict(ClientMachine.objects.annotate(key=Lower("hostname")).values_list("key", "pk"))
        batch = []

        def flush():
            machines = ClientMachine.objects.bulk_create(
                [ClientMachine(hostname=f"WS-{lid:07d}", os_edition=OsEdition.OTHER, hardware_id=f"{hw:032x}")
                 for lid, *_ , hw in batch if f"ws-{lid:07d}" not in known])
            ids = iter(m.pk for m in machines)
            License.objects.bulk_create([
                License(license_id=lid, machine_id=known.get(f"ws-{lid:07d}") or next(ids),
                        key_pack=None if status == 1 else packs[pack], license_server=server, product_version=product,
                        kind=LicenseKind.TEMPORARY if status == 1 else LicenseKind.PERMANENT,
                        status=LicenseStatus.ACTIVE, issued_at=issued_at,
                        expires_at=issued_at + timedelta(days=89) if status == 1 else None, hardware_id=f"{hw:032x}")
                for lid, pack, status, issued_at, hw in batch if status != 4], batch_size=2000)

        for row in rows_of(count):
            batch.append(row)
            if len(batch) >= 2000:
                flush()
                batch = []
        flush()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-baseline", action="store_true", help="the import alone (for its memory)")
    parser.add_argument("--child", choices=("setup", "bulk"))
    args = parser.parse_args()
    if args.child:
        sys.path.insert(0, str(ROOT))
        import django

        django.setup()
        {"setup": child_setup, "bulk": child_bulk}[args.child](args.rows)
        return
    print(json.dumps(measure(args.rows, args.repeats, baseline=not args.no_baseline), indent=2))


if __name__ == "__main__":
    main()
