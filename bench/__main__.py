"""`make bench`: the portal measured side by side with what an administrator would use instead.

Against a PostgreSQL database seeded with `seed_demo --scale large` (made on the first run),
it starts gunicorn with production settings and drives it from separate processes. Each
measure runs BENCH_REPEATS times (at least 3); a target is met only when every run meets it.

- B1  /licenses/ (50 a page) against the Django admin changelist of License (50 a page):
      median request time ratio per run, and SQL queries per request of each.
- B2  GET /api/v1/licenses/?page_size=50 against a bare DRF view returning a constant
      50-item list under the same authentication: throughput ratio per run.
- B3  the audit trail of 1,000,000 events as CSV against psql's \\copy of the same rows:
      the streamed HTTP download (GET /api/v1/reports/audit-trail.csv, the path users take;
      the target), and ``manage.py export_report``; the export's peak RSS at 100,000 and
      1,000,000 rows. Both outputs are checked byte for byte against each other.
- B4  the whole transfer workflow through the API by 8 concurrent clients: transfers
      completed per second and the p95 latency of each step.
- B5  importing a license server's snapshot of 100,000 issued licenses against bulk_create
      (``bench.import_snapshot``), and the import's peak RSS at 100,000 and 1,000,000 rows.

Results go to docs/benchmarks.md (below its hand-written part) and every run's raw numbers
to docs/benchmarks.json. Settings: BENCH_DATABASE_URL (default
postgres://postgres@127.0.0.1:5432/portal_bench), BENCH_REPEATS (default 3), BENCH_PORT
(default 8799), BENCH_WORKERS (default 2).
"""

import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

import psycopg2
from psycopg2 import sql as pgsql

from bench import import_snapshot
from bench.measure import run_measured, spread

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
DB_URL = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/portal_bench")
REPEATS = max(3, int(os.environ.get("BENCH_REPEATS", "3")))
PORT = int(os.environ.get("BENCH_PORT", "8799"))
WORKERS = int(os.environ.get("BENCH_WORKERS", "2"))
BASE = f"http://127.0.0.1:{PORT}"
SERVER_LOG = Path(tempfile.gettempdir()) / "portal-bench-gunicorn.log"
WORKFLOW_CLIENTS = 8
B2_ROUNDS = 3
WORKFLOWS_PER_CLIENT = 5

ENV = os.environ | {
    "DJANGO_SETTINGS_MODULE": "bench.settings",
    "DATABASE_URL": DB_URL,
    "DJANGO_DEBUG": "0",
    "DJANGO_SECRET_KEY": "bench-only-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz",
    "DJANGO_SECURE_SSL_REDIRECT": "0",
    "DJANGO_SECURE_COOKIES": "0",
    "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost,testserver",
    "DJANGO_LOG_LEVEL": "WARNING",
}
ENV.pop("CELERY_BROKER_URL", None)  # exports and tasks in-process: the bench measures the portal
ENV.pop("PYTHONDONTWRITEBYTECODE", None)  # as installed: Python keeps the compiled modules


def log(message: str) -> None:
    print(f"[bench {datetime.now(UTC):%H:%M:%S}] {message}", flush=True)


def manage(*args, **kwargs):
    return subprocess.run([PYTHON, "manage.py", *args], cwd=ROOT, env=ENV, check=True, **kwargs)


def ensure_database() -> None:
    from urllib.parse import urlsplit

    parts = urlsplit(DB_URL)
    name = parts.path.lstrip("/")
    admin = psycopg2.connect(host=parts.hostname, port=parts.port or 5432, user=parts.username or "postgres",
                             password=parts.password, dbname="postgres")
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name])
        if cursor.fetchone() is None:
            log(f"creating database {name}")
            cursor.execute(pgsql.SQL("CREATE DATABASE {}").format(pgsql.Identifier(name)))
    admin.close()
    manage("migrate", "--noinput", "-v0")


def setup_django():
    os.environ.update(ENV)
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


def ensure_seeded() -> dict:
    from core.models import AuditEvent
    from licensing.models import License

    if License.objects.count() < 100_000:
        log("seeding large data (seed_demo --scale large); this takes a few minutes")
        started = time.perf_counter()
        manage("seed_demo", "--scale", "large")
        log(f"seeded in {time.perf_counter() - started:.0f} s")
    from inventory.models import ClientMachine
    from licensing.models import KeyPack

    # As autovacuum keeps a live database: statistics and visibility maps current, the same
    # starting point for every run (B4 of the run before leaves transfers behind).
    subprocess.run(["psql", DB_URL, "-qc", "VACUUM (ANALYZE)"], check=True)

    return {
        "machines": ClientMachine.objects.count(), "key_packs": KeyPack.objects.count(),
        "licenses": License.objects.count(), "audit_events": AuditEvent.objects.count(),
    }


def bench_users():
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model
    from django.contrib.auth.models import Group
    from django.contrib.sessions.backends.db import SessionStore
    from knox.models import AuthToken

    User = get_user_model()
    users = []
    for name in ("bench-admin-a", "bench-admin-b"):
        user, _ = User.objects.get_or_create(username=name)
        user.is_staff = True
        user.is_superuser = True  # the Django admin changelist needs staff with view permission
        user.set_unusable_password()
        user.save()
        user.groups.set([Group.objects.get(name="admin")])
        users.append(user)
    session = SessionStore()
    session[SESSION_KEY] = str(users[0].pk)
    session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    session[HASH_SESSION_KEY] = users[0].get_session_auth_hash()
    session.create()
    tokens = [AuthToken.objects.create(user=u)[1] for u in users]
    return users, f"sessionid={session.session_key}", tokens


def query_counts(user) -> dict:
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client()
    client.force_login(user)
    counts = {}
    for label, url in [
        ("portal_50", "/licenses/?page_size=50"), ("portal_200", "/licenses/?page_size=200"),
        ("admin_50", "/admin/licensing/license/"),
        ("api_50", "/api/v1/licenses/?page_size=50"), ("api_200", "/api/v1/licenses/?page_size=200"),
    ]:
        client.get(url)  # warm
        with CaptureQueriesContext(connection) as captured:
            response = client.get(url)
        counts[label] = {"status": response.status_code, "queries": len(captured.captured_queries)}
    return counts


def start_gunicorn():
    import socket

    with socket.socket() as probe:
        if probe.connect_ex(("127.0.0.1", PORT)) == 0:
            raise RuntimeError(f"port {PORT} is already in use; set BENCH_PORT to a free port")
    server_log = open(SERVER_LOG, "w")  # noqa: SIM115 - closed with the process
    process = subprocess.Popen(
        [PYTHON, "-m", "gunicorn", "portal.wsgi:application", "--bind", f"127.0.0.1:{PORT}",
         "--workers", str(WORKERS), "--log-level", "warning"],
        cwd=ROOT, env=ENV, stdout=server_log, stderr=subprocess.STDOUT,
    )
    for _ in range(120):
        try:
            with urllib.request.urlopen(f"{BASE}/healthz", timeout=2) as response:
                if response.status == 200:
                    return process
        except OSError:
            time.sleep(0.5)
    process.kill()
    raise RuntimeError(f"gunicorn did not answer /healthz; see {SERVER_LOG}")


def load(url: str, *, requests: int, concurrency: int, headers: dict) -> dict:
    args = [PYTHON, "-m", "bench.load", url, "--requests", str(requests), "--concurrency", str(concurrency)]
    for key, value in headers.items():
        args += ["--header", f"{key}: {value}"]
    out = subprocess.run(args, cwd=ROOT, check=True, capture_output=True, text=True).stdout
    result = json.loads(out)
    if result["errors"]:
        raise RuntimeError(f"{url} answered {result['error_statuses']}")
    return result


def b1(cookie: str) -> dict:
    headers = {"Cookie": cookie}
    runs = []
    for _ in range(REPEATS):  # each run measures both sides, one after the other
        portal = load(f"{BASE}/licenses/?page_size=50", requests=60, concurrency=1, headers=headers)
        admin = load(f"{BASE}/admin/licensing/license/", requests=60, concurrency=1, headers=headers)
        runs.append({"portal": portal, "admin": admin, "ratio": portal["median_ms"] / admin["median_ms"]})
    return {"portal_median_ms": spread(r["portal"]["median_ms"] for r in runs),
            "admin_median_ms": spread(r["admin"]["median_ms"] for r in runs),
            "ratio": spread(r["ratio"] for r in runs), "raw": runs}


def b2(token: str) -> dict:
    headers = {"Authorization": f"Token {token}"}
    runs = []
    for _ in range(REPEATS):
        # Each run: both sides in three alternating rounds of 400 requests, so that a passing
        # disturbance of the machine falls on both; a side's throughput is over its 1,200.
        api, bare = [], []
        for _ in range(B2_ROUNDS):
            api.append(load(f"{BASE}/api/v1/licenses/?page_size=50", requests=400, concurrency=4, headers=headers))
            bare.append(load(f"{BASE}/bench/bare/", requests=400, concurrency=4, headers=headers))
        api_rps = sum(r["requests"] for r in api) / sum(r["seconds"] for r in api)
        bare_rps = sum(r["requests"] for r in bare) / sum(r["seconds"] for r in bare)
        runs.append({"api": api, "bare": bare, "api_rps": api_rps, "bare_rps": bare_rps, "ratio": api_rps / bare_rps})
    return {"api_rps": spread(r["api_rps"] for r in runs), "bare_rps": spread(r["bare_rps"] for r in runs),
            "ratio": spread(r["ratio"] for r in runs), "raw": runs}


AUDIT_SELECT = (
    "SELECT sequence, occurred_at, actor, action, object_type, object_id, summary, data, prev_hash, hash "
    "FROM licensing_auditevent {where} ORDER BY sequence"
)


def extends_by_one_line(longer: Path, shorter: Path, block: int = 1 << 20) -> bool:
    """Does ``longer`` hold ``shorter``'s bytes and one line more? Read a block at a time: this
    process stays small, as the processes it starts and measures begin as a copy of it."""
    with longer.open("rb") as a, shorter.open("rb") as b:
        while chunk := b.read(block):
            if a.read(len(chunk)) != chunk:
                return False
        return a.read().count(b"\n") == 1


def b3(token: str) -> dict:
    """Per run: psql's \\copy, the streamed download and export_report of every event; and
    export_report of the last 100,000 for the memory."""
    from core.models import AuditEvent

    total = AuditEvent.objects.count()
    cut = AuditEvent.objects.order_by("-sequence").values_list("occurred_at", flat=True)[99_999]
    tmp = Path(tempfile.mkdtemp(prefix="portal-bench-"))
    runs = []
    try:
        for _ in range(REPEATS):
            # Each run: psql and the download twice, alternating, each side's better time taken
            # (a passing disturbance slows one try, not both); then export_report once.
            psqls, downloads = [], []
            for _ in range(2):
                with (tmp / "psql.csv").open("wb") as sink:
                    psqls.append(run_measured(
                        ["psql", DB_URL, "-q", "-c", f"\\copy ({AUDIT_SELECT.format(where='')}) to stdout csv header"],
                        stdout=sink))
                out = subprocess.run(
                    [PYTHON, "-m", "bench.download", f"{BASE}/api/v1/reports/audit-trail.csv",
                     str(tmp / "download.csv"), "--header", f"Authorization: Token {token}"],
                    cwd=ROOT, check=True, capture_output=True, text=True)
                downloads.append(json.loads(out.stdout))
                if downloads[-1]["status"] != 200:
                    raise RuntimeError(f"the audit-trail download answered {downloads[-1]['status']}")
            psql_rows = sum(1 for _ in (tmp / "psql.csv").open("rb")) - 1
            psql = min(psqls, key=lambda r: r["seconds"]) | {"tries": [r["seconds"] for r in psqls]}
            download = min(downloads, key=lambda r: r["seconds"]) | {"tries": [r["seconds"] for r in downloads]}
            export = run_measured([PYTHON, "manage.py", "export_report", "audit-trail", "--format", "csv",
                                   "--output", str(tmp / "export.csv")], env=ENV, cwd=ROOT)
            # Each export is audited before it is written: export_report's file is the download's
            # and one event more, the download's own audit event being in both.
            if not extends_by_one_line(tmp / "export.csv", tmp / "download.csv"):
                raise RuntimeError("the streamed download and export_report wrote different rows")
            export["rows"] = downloads[-1]["lines"]  # the header and one event more than that download
            small = run_measured([PYTHON, "manage.py", "export_report", "audit-trail", "--format", "csv",
                                  "--output", str(tmp / "export-100k.csv"), "--since", cut.isoformat()],
                                 env=ENV, cwd=ROOT)
            small["rows"] = sum(1 for _ in (tmp / "export-100k.csv").open("rb")) - 1
            runs.append({"psql": psql | {"rows": psql_rows}, "download": download, "export": export,
                         "export_100k": small,
                         "download_ratio": download["seconds"] / psql["seconds"],
                         "export_ratio": export["seconds"] / psql["seconds"],
                         "rss_growth": export["peak_rss_mb"] / small["peak_rss_mb"] - 1})
    finally:
        for f in tmp.iterdir():
            f.unlink()
        tmp.rmdir()
    return {
        "events": total, "rows": runs[-1]["export"]["rows"],
        "psql_seconds": spread(r["psql"]["seconds"] for r in runs),
        "download_seconds": spread(r["download"]["seconds"] for r in runs),
        "export_seconds": spread(r["export"]["seconds"] for r in runs),
        "download_ratio": spread(r["download_ratio"] for r in runs),
        "export_ratio": spread(r["export_ratio"] for r in runs),
        "rss_100k_mb": spread(r["export_100k"]["peak_rss_mb"] for r in runs),
        "rss_1m_mb": spread(r["export"]["peak_rss_mb"] for r in runs),
        "rss_growth": spread(r["rss_growth"] for r in runs),
        "raw": runs,
    }


def b5() -> dict:
    """bench.import_snapshot: 100,000 rows against bulk_create, each run; 1,000,000 once for the memory."""
    small = import_snapshot.measure(100_000, REPEATS)
    large = import_snapshot.measure(1_000_000, 1, baseline=False)
    rss_small, rss_large = small["import_peak_rss_mb"], large["import_peak_rss_mb"]
    return {"ratio": spread(small["ratios"]), "import_seconds": spread(r["seconds"] for r in small["raw"]["import"]),
            "bulk_seconds": spread(r["seconds"] for r in small["raw"]["bulk"]),
            "rss_100k_mb": spread(r["peak_rss_mb"] for r in small["raw"]["import"]),
            "rss_1m_mb": rss_large, "rss_1m_seconds": large["import_seconds"],
            "rss_growth": round(rss_large / rss_small - 1, 3), "raw": {"100k": small, "1m": large}}


def b4(tokens) -> dict:
    from django.db.models import Exists, OuterRef

    from inventory.models import OS_EDITIONS_WITH_BUILTIN_CAL, ClientMachine, MachineStatus
    from licensing.models import OPEN_TRANSFER_STATUSES, KeyPack, License, TransferRequest

    jobs_needed = WORKFLOW_CLIENTS * WORKFLOWS_PER_CLIENT
    open_transfer = TransferRequest.objects.filter(license=OuterRef("pk"), status__in=OPEN_TRANSFER_STATUSES)
    sources = list(
        License.objects.filter(kind="permanent", status="active", transferred_from__isnull=True,
                               license_server__builtin_cal_for_pro_clients=False)
        .exclude(Exists(open_transfer)).select_related("license_server").order_by("pk")[:jobs_needed]
    )
    busy = set(TransferRequest.objects.filter(status__in=OPEN_TRANSFER_STATUSES).values_list(
        "target_machine_id", flat=True))
    targets, taken = [], set(busy)
    for source in sources:  # a free machine that holds no CAL of the source's product
        holds = License.objects.filter(machine=OuterRef("pk"), status="active", product_version=source.product_version)
        candidate = (
            ClientMachine.objects.filter(status=MachineStatus.ACTIVE)
            .exclude(os_edition__in=OS_EDITIONS_WITH_BUILTIN_CAL)
            .exclude(Exists(holds))
            .exclude(pk__in=taken)
            .order_by("-pk")
            .values_list("pk", flat=True)
            .first()
        )
        if candidate is None:
            break
        taken.add(candidate)
        targets.append(candidate)
    if len(sources) < jobs_needed or len(targets) < jobs_needed:
        raise RuntimeError("not enough transferable licenses or free machines left; reseed the bench database")
    next_id = (KeyPack.objects.order_by("-key_pack_id").values_list("key_pack_id", flat=True).first() or 0) + 1
    jobs = [
        {"license": s.pk, "target": t, "license_server": s.license_server_id, "product_version": s.product_version,
         "key_pack_id": next_id + i}
        for i, (s, t) in enumerate(zip(sources, targets, strict=True))
    ]
    plan = {"token_a": tokens[0], "token_b": tokens[1],
            "clients": [jobs[i::WORKFLOW_CLIENTS] for i in range(WORKFLOW_CLIENTS)]}
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
        json.dump(plan, handle)
    try:
        out = subprocess.run([PYTHON, "-m", "bench.workflow", BASE, handle.name], cwd=ROOT, check=True,
                             capture_output=True, text=True).stdout
    finally:
        os.unlink(handle.name)
    return json.loads(out)


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        mem = int(Path("/proc/meminfo").read_text().split()[1]) // 1024 // 1024
    except OSError:
        mem = 0
    pg = subprocess.run(["psql", DB_URL, "-Atc", "SHOW server_version"], capture_output=True, text=True).stdout.strip()
    return f"{os.cpu_count()} cores ({cpu}), {mem} GiB, {platform.platform()}, Python {platform.python_version()}, " \
           f"PostgreSQL {pg}"


MARKER = "<!-- Everything below is written by `make bench`. -->"
HISTORY = ROOT / "docs" / "benchmarks.json"
SHOWN_RUNS = 3


def every(values, target, *, at_most: bool) -> str:
    values = values if isinstance(values, list) else [values]
    return "met" if all((v <= target) if at_most else (v >= target) for v in values) else "missed"


def summary(results: dict) -> list[tuple]:
    """One line per measure of one `make bench`: (id, measure, result, target, verdict)."""
    b1r, b2r, b3r, b4r, b5r, q = (results[k] for k in ("b1", "b2", "b3", "b4", "b5", "queries"))

    def runs(sp, fmt="{:.3f}"):
        return f"**{fmt.format(sp['median'])}** ({fmt.format(sp['min'])}–{fmt.format(sp['max'])})"

    return [
        ("B1", "/licenses/ vs admin changelist, time ratio", runs(b1r["ratio"]), "≤ 0.5",
         every(b1r["ratio"]["runs"], 0.5, at_most=True)),
        ("B1", "SQL queries per request (portal 50 / 200 / admin 50)",
         f"{q['portal_50']['queries']} / {q['portal_200']['queries']} / {q['admin_50']['queries']}",
         "constant in page size", "met" if q["portal_50"]["queries"] == q["portal_200"]["queries"] else "missed"),
        ("B2", "API list vs bare DRF view, throughput ratio", runs(b2r["ratio"]), "≥ 0.7",
         every(b2r["ratio"]["runs"], 0.7, at_most=False)),
        ("B2", "API req/s / bare req/s (medians)", f"{b2r['api_rps']['median']:.0f} / {b2r['bare_rps']['median']:.0f}",
         "", ""),
        ("B2", "API queries per request (50 / 200)", f"{q['api_50']['queries']} / {q['api_200']['queries']}",
         "constant", "met" if q["api_50"]["queries"] == q["api_200"]["queries"] else "missed"),
        ("B3", f"streamed CSV download of {b3r['rows']:,} events vs psql \\copy, time ratio",
         runs(b3r["download_ratio"]), "≤ 1.5", every(b3r["download_ratio"]["runs"], 1.5, at_most=True)),
        ("B3", "export_report vs psql \\copy, time ratio", runs(b3r["export_ratio"]), "", ""),
        ("B3", "seconds: download / export_report / psql (medians)",
         f"{b3r['download_seconds']['median']:.2f} / {b3r['export_seconds']['median']:.2f} / "
         f"{b3r['psql_seconds']['median']:.2f}", "", ""),
        ("B3", "export peak RSS at 100k / 1M rows",
         f"{b3r['rss_100k_mb']['max']:.0f} MB / {b3r['rss_1m_mb']['max']:.0f} MB "
         f"({b3r['rss_growth']['max']:+.0%} at most)", "≤ 200 MB, within 20%",
         "met" if b3r["rss_1m_mb"]["max"] <= 200 and all(abs(g) <= 0.2 for g in b3r["rss_growth"]["runs"])
         else "missed"),
        ("B4", f"transfer workflow, {b4r['clients']} API clients",
         f"**{b4r['transfers_per_second']:.2f} transfers/s** ({b4r['completed']} in {b4r['seconds']} s, "
         f"{b4r['failed']} failed)", "", ""),
        ("B4", "p95 per step (ms)", ", ".join(f"{k} {v}" for k, v in b4r["p95_ms"].items()), "", ""),
        ("B5", "import of 100,000 licenses vs bulk_create, time ratio", runs(b5r["ratio"]), "≤ 3",
         every(b5r["ratio"]["runs"], 3, at_most=True)),
        ("B5", "seconds: import / bulk_create (medians)",
         f"{b5r['import_seconds']['median']:.1f} / {b5r['bulk_seconds']['median']:.1f}", "", ""),
        ("B5", "import peak RSS at 100k / 1M rows",
         f"{b5r['rss_100k_mb']['max']:.0f} MB / {b5r['rss_1m_mb']:.0f} MB ({b5r['rss_growth']:+.0%})",
         "≤ 200 MB, within 20%",
         "met" if b5r["rss_1m_mb"] <= 200 and abs(b5r["rss_growth"]) <= 0.2 else "missed"),
    ]


def write_report(results: dict) -> str:
    """Add this run to docs/benchmarks.json and write the last runs below the marker of docs/benchmarks.md."""
    history = json.loads(HISTORY.read_text()) if HISTORY.exists() else []
    history.append(results)
    HISTORY.write_text(json.dumps(history, indent=1, default=str) + "\n")
    shown = history[-SHOWN_RUNS:]
    out = ROOT / "docs" / "benchmarks.md"
    head = out.read_text().split(MARKER)[0].rstrip() if out.exists() else "# Benchmarks"
    lines = [head, "", MARKER, "",
             f"## The last {len(shown)} runs of `make bench`", "",
             "Each cell: the median of the run's repeats, then the lowest and highest in brackets. "
             "A target is met in a run only when every repeat meets it.", ""]
    this_run = ""
    for number, run in enumerate(shown, start=len(history) - len(shown) + 1):
        data_line = ", ".join(f"{v:,} {k.replace('_', ' ')}" for k, v in run["data"].items())
        table = ["| | measure | result | target | |", "|---|---|---|---|---|"]
        table += [f"| {a} | {b} | {c} | {d} | {e} |" for a, b, c, d, e in summary(run)]
        lines += [f"### Run {number}: {run['date']}" + (f", commit {run['commit']}" if run.get("commit") else ""), "",
                  f"{run['machine']}; BENCH_REPEATS={run['repeats']}, gunicorn {run['workers']} workers. "
                  f"Data: {data_line}.", "", *table, ""]
        this_run = "\n".join(table)
    lines += [
        "Commands: B1 and B2 drive `python -m bench.load` against gunicorn with production settings (B1: 1 "
        "connection, 60 requests a side; B2: 4 connections, three alternating rounds of 400 requests a side "
        "per repeat). "
        "B3: `psql -c \"\\copy (" + AUDIT_SELECT.format(where="") + ") to stdout csv header\"`, "
        "`python -m bench.download .../api/v1/reports/audit-trail.csv` (a client process reading the streamed "
        "response to a file) and `manage.py export_report audit-trail --format csv --output F`; the download "
        "and the export must be the same rows (the export holding one audit event more: its own). psql and the "
        "download run twice per repeat, alternating, and each side's better time counts. Peak RSS is the "
        "exporting or importing process's own (wait4). "
        "B4: `python -m bench.workflow`, 8 threads doing file, approve, confirm-removal, log call, install for "
        "5 transfers each. B5: `python -m bench.import_snapshot` (see its docstring). Every run's raw numbers "
        "are in docs/benchmarks.json.", "",
    ]
    out.write_text("\n".join(lines))
    return this_run


def main():
    ensure_database()
    setup_django()
    subprocess.run([PYTHON, "-m", "compileall", "-q", "core", "inventory", "licensing", "portal", "bench"],
                   cwd=ROOT, env=ENV, check=True)
    data = ensure_seeded()
    users, cookie, tokens = bench_users()
    log("counting SQL queries per page")
    queries = query_counts(users[0])
    for label, c in queries.items():
        if c["status"] != 200:
            raise RuntimeError(f"{label} answered {c['status']}")
    server = start_gunicorn()
    try:
        log("B1: /licenses/ vs Django admin changelist")
        r1 = b1(cookie)
        log(f"B1 ratio {r1['ratio']}")
        log("B2: API list vs bare DRF view")
        r2 = b2(tokens[0])
        log(f"B2 ratio {r2['ratio']}")
        log("B3: audit-trail CSV download and export_report vs psql \\copy")
        r3 = b3(tokens[0])
        log(f"B3 download ratio {r3['download_ratio']}, export_report ratio {r3['export_ratio']}")
        log("B4: transfer workflow, 8 clients")
        r4 = b4(tokens)
        log(f"B4 {r4['transfers_per_second']} transfers/s")
    finally:
        server.terminate()
        server.wait(timeout=30)
    log("B5: importing 100,000 licenses vs bulk_create, then 1,000,000 for the memory")
    r5 = b5()
    log(f"B5 ratio {r5['ratio']}, RSS {r5['rss_100k_mb']['max']} / {r5['rss_1m_mb']} MB")
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                            text=True).stdout.strip() or "unknown"
    results = {"date": datetime.now(UTC).isoformat(timespec="seconds"), "commit": commit, "machine": machine(),
               "data": data,
               "repeats": REPEATS, "workers": WORKERS,
               "queries": queries, "b1": r1, "b2": r2, "b3": r3, "b4": r4, "b5": r5}
    print(write_report(results))
    print("\nWritten to docs/benchmarks.md and docs/benchmarks.json")


if __name__ == "__main__":
    main()
