"""`make bench`: the portal measured side by side with what an administrator would use instead.

Against a PostgreSQL database seeded with `seed_demo --scale large` (made on the first run),
it starts gunicorn with production settings and drives it from separate processes:

- B1  /licenses/ (50 a page) against the Django admin changelist of License (50 a page):
      median request time ratio, and SQL queries per request of each.
- B2  GET /api/v1/licenses/?page_size=50 against a bare DRF view returning a constant
      50-item list under the same authentication: throughput ratio.
- B3  the audit-trail CSV export of 1,000,000 events against psql's \\copy of the same
      rows: time ratio, and the export's peak RSS at 100,000 and 1,000,000 rows.
- B4  the whole transfer workflow through the API by 8 concurrent clients: transfers
      completed per second and the p95 latency of each step.

Results go to docs/benchmarks.md with the date, the machine, the commands and raw numbers.
Settings: BENCH_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/portal_bench),
BENCH_REPEATS (default 5), BENCH_PORT (default 8799), BENCH_WORKERS (default 2).
"""

import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

import psycopg2
from psycopg2 import sql as pgsql

from bench.measure import run_measured

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
DB_URL = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/portal_bench")
REPEATS = int(os.environ.get("BENCH_REPEATS", "5"))
PORT = int(os.environ.get("BENCH_PORT", "8799"))
WORKERS = int(os.environ.get("BENCH_WORKERS", "2"))
BASE = f"http://127.0.0.1:{PORT}"
SERVER_LOG = Path(tempfile.gettempdir()) / "portal-bench-gunicorn.log"
WORKFLOW_CLIENTS = 8
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
    portal, admin = [], []
    for _ in range(REPEATS):  # interleaved, so drift hits both sides alike
        portal.append(load(f"{BASE}/licenses/?page_size=50", requests=60, concurrency=1, headers=headers))
        admin.append(load(f"{BASE}/admin/licensing/license/", requests=60, concurrency=1, headers=headers))
    p = statistics.median(r["median_ms"] for r in portal)
    a = statistics.median(r["median_ms"] for r in admin)
    return {"portal_median_ms": p, "admin_median_ms": a, "ratio": round(p / a, 3),
            "raw": {"portal": portal, "admin": admin}}


def b2(token: str) -> dict:
    headers = {"Authorization": f"Token {token}"}
    api, bare = [], []
    for _ in range(REPEATS):
        api.append(load(f"{BASE}/api/v1/licenses/?page_size=50", requests=300, concurrency=4, headers=headers))
        bare.append(load(f"{BASE}/bench/bare/", requests=300, concurrency=4, headers=headers))
    a = statistics.median(r["throughput_rps"] for r in api)
    b = statistics.median(r["throughput_rps"] for r in bare)
    return {"api_rps": a, "bare_rps": b, "ratio": round(a / b, 3), "raw": {"api": api, "bare": bare}}


AUDIT_SELECT = (
    "SELECT sequence, occurred_at, actor, action, object_type, object_id, summary, data, prev_hash, hash "
    "FROM licensing_auditevent {where} ORDER BY sequence"
)


def b3() -> dict:
    from core.models import AuditEvent

    total = AuditEvent.objects.count()
    cut = AuditEvent.objects.order_by("-sequence").values_list("occurred_at", flat=True)[99_999]
    tmp = Path(tempfile.mkdtemp(prefix="portal-bench-"))
    results = {"events": total}
    for label, since in [("100k", cut), ("1m", None)]:
        since_args = ["--since", since.isoformat()] if since else []
        where = f"WHERE occurred_at >= '{since.isoformat()}'" if since else ""
        exports, copies = [], []
        for _ in range(max(1, REPEATS // 2)):
            out = tmp / f"audit-{label}.csv"
            exports.append(run_measured(
                [PYTHON, "manage.py", "export_report", "audit-trail", "--format", "csv", "--output", str(out),
                 *since_args], env=ENV, cwd=ROOT))
            exports[-1]["bytes"] = out.stat().st_size
            exports[-1]["rows"] = sum(1 for _ in out.open("rb")) - 1
            with (tmp / f"psql-{label}.csv").open("wb") as sink:
                copies.append(run_measured(
                    ["psql", DB_URL, "-q", "-c", f"\\copy ({AUDIT_SELECT.format(where=where)}) to stdout csv header"],
                    stdout=sink))
        export_s = statistics.median(r["seconds"] for r in exports)
        copy_s = statistics.median(r["seconds"] for r in copies)
        results[label] = {
            "export_seconds": export_s, "psql_copy_seconds": copy_s, "ratio": round(export_s / copy_s, 3),
            "export_peak_rss_mb": max(r["peak_rss_mb"] for r in exports),
            "rows": exports[-1]["rows"], "raw": {"export": exports, "psql": copies},
        }
    for f in tmp.iterdir():
        f.unlink()
    tmp.rmdir()
    small, large = results["100k"]["export_peak_rss_mb"], results["1m"]["export_peak_rss_mb"]
    results["rss_growth"] = round(large / small - 1, 3)
    return results


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


def verdict(value, target, *, at_most: bool) -> str:
    ok = value <= target if at_most else value >= target
    return "met" if ok else "missed"


def write_report(results: dict) -> str:
    b1r, b2r, b3r, b4r, q = results["b1"], results["b2"], results["b3"], results["b4"], results["queries"]
    rss_ok = b3r["1m"]["export_peak_rss_mb"] <= 200 and abs(b3r["rss_growth"]) <= 0.2
    rows = [
        ("B1", "/licenses/ vs admin changelist, median time ratio",
         f"{b1r['portal_median_ms']:.1f} ms / {b1r['admin_median_ms']:.1f} ms = **{b1r['ratio']:.3f}**",
         "≤ 0.5", verdict(b1r["ratio"], 0.5, at_most=True)),
        ("B1", "SQL queries per request (portal 50 / 200 / admin 50)",
         f"{q['portal_50']['queries']} / {q['portal_200']['queries']} / {q['admin_50']['queries']}",
         "constant in page size",
         "met" if q["portal_50"]["queries"] == q["portal_200"]["queries"] else "missed"),
        ("B2", "API list vs bare DRF view, throughput ratio",
         f"{b2r['api_rps']:.0f} / {b2r['bare_rps']:.0f} req/s = **{b2r['ratio']:.3f}**",
         "≥ 0.5", verdict(b2r["ratio"], 0.5, at_most=False)),
        ("B2", "API queries per request (50 / 200)",
         f"{q['api_50']['queries']} / {q['api_200']['queries']}", "constant",
         "met" if q["api_50"]["queries"] == q["api_200"]["queries"] else "missed"),
        ("B3", f"audit CSV export of {b3r['1m']['rows']:,} events vs psql \\copy",
         f"{b3r['1m']['export_seconds']:.1f} s / {b3r['1m']['psql_copy_seconds']:.1f} s = **{b3r['1m']['ratio']:.3f}**",
         "≤ 2.0", verdict(b3r["1m"]["ratio"], 2.0, at_most=True)),
        ("B3", "export peak RSS at 100k / 1M rows",
         f"{b3r['100k']['export_peak_rss_mb']:.0f} MB / {b3r['1m']['export_peak_rss_mb']:.0f} MB "
         f"({b3r['rss_growth']:+.0%})", "≤ 200 MB, within 20%", "met" if rss_ok else "missed"),
        ("B4", f"transfer workflow, {b4r['clients']} API clients",
         f"**{b4r['transfers_per_second']:.2f} transfers/s** ({b4r['completed']} in {b4r['seconds']} s, "
         f"{b4r['failed']} failed)", "", ""),
        ("B4", "p95 per step (ms)", ", ".join(f"{k} {v}" for k, v in b4r["p95_ms"].items()), "", ""),
    ]
    data_line = ", ".join(f"{v:,} {k.replace('_', ' ')}" for k, v in results["data"].items())
    table = ["| | measure | result | target | |", "|---|---|---|---|---|"]
    table += [f"| {a} | {b} | {c} | {d} | {e} |" for a, b, c, d, e in rows]
    text = "\n".join([
        "# Benchmarks", "",
        f"Run on {results['date']} with `make bench` (BENCH_REPEATS={REPEATS}, gunicorn {WORKERS} workers, "
        "production settings, load from separate processes).", "",
        f"Machine: {results['machine']}.", "",
        f"Data: {data_line} (`seed_demo --scale large`).", "",
        *table, "",
        "Commands: B1 and B2 drive `python -m bench.load` against gunicorn (B1: 1 connection, 60 requests a side, "
        "interleaved, repeated; B2: 4 connections, 300 requests a side, repeated). B3 runs "
        "`manage.py export_report audit-trail --format csv --output F [--since T]` and "
        f"`psql -c \"\\copy ({AUDIT_SELECT.format(where='[WHERE occurred_at >= T]')}) to stdout csv header\"`; "
        "peak RSS is the exporting process's own (wait4). B4 runs `python -m bench.workflow` with 8 threads "
        "doing file, approve, confirm-removal, log call, install for 5 transfers each.", "",
        "## Raw numbers", "", "```json", json.dumps(results, indent=1, default=str), "```", "",
    ])
    out = ROOT / "docs" / "benchmarks.md"
    out.parent.mkdir(exist_ok=True)
    out.write_text(text)
    return "\n".join(table)


def main():
    ensure_database()
    setup_django()
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
        log("B4: transfer workflow, 8 clients")
        r4 = b4(tokens)
        log(f"B4 {r4['transfers_per_second']} transfers/s")
    finally:
        server.terminate()
        server.wait(timeout=30)
    log("B3: audit-trail CSV export vs psql \\copy")
    r3 = b3()
    log(f"B3 ratio {r3['1m']['ratio']}")
    results = {"date": datetime.now(UTC).isoformat(timespec="seconds"), "machine": machine(), "data": data,
               "queries": queries, "b1": r1, "b2": r2, "b3": r3, "b4": r4}
    print(write_report(results))
    print("\nWritten to docs/benchmarks.md")


if __name__ == "__main__":
    main()
