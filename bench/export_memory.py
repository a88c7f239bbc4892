"""Peak memory of exporting the audit trail as CSV, at 100,000 and 1,000,000 events.

Usage (PostgreSQL running; the scratch database is dropped and made again)::

    .venv/bin/python bench/export_memory.py [--sizes 100000 1000000] [--database portal_reports_bench] \\
        [--verify] [--xlsx]

It creates a scratch database, migrates it, appends audit events with a valid hash
chain by ``COPY`` (hashes computed exactly as ``audit_record`` does), and for each
size runs each export in a fresh process: the generator that
``GET /api/v1/reports/audit-trail.csv`` streams (into /dev/null), the portable
Python writer it falls back to on other databases, and the
``export_report`` command's CSV file (COPY on PostgreSQL, as background exports
write it), optionally XLSX too, and times ``psql \\copy`` of the same rows. Each run
reports the process's peak RSS, its RSS before the export began, and the time.
Target: peak RSS under 200 MB, and within 20% between 100k and 1M rows.
"""

import argparse
import io
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SERVER = os.environ.get("BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432")
COPY_BATCH = 50_000
ACTIONS = (
    ("license.issued", "license"), ("license.temporary_issued", "license"),
    ("transfer.requested", "transferrequest"), ("transfer.approved", "transferrequest"),
    ("machine.created", "clientmachine"), ("key_pack.updated", "keypack"),
    ("report.exported", "report"),
)
ACTORS = ("alice", "bob", "carol", "system", "dave", "erin")


def _env(database: str) -> dict:
    env = dict(os.environ)
    env["DATABASE_URL"] = f"{DEFAULT_SERVER}/{database}"
    env.setdefault("DJANGO_SECRET_KEY", "bench-only-secret-key-not-for-production-0123456789")
    env["DJANGO_SETTINGS_MODULE"] = "portal.settings"
    env["DJANGO_LOG_LEVEL"] = "WARNING"
    return env


def _setup_django():
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _current_rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def recreate_database(database: str) -> None:
    import psycopg2

    admin = psycopg2.connect(f"{DEFAULT_SERVER}/postgres")
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute(f'DROP DATABASE IF EXISTS "{database}"')
        cursor.execute(f'CREATE DATABASE "{database}"')
    admin.close()
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
        cwd=ROOT, env=_env(database), check=True,
    )


def generate(total: int) -> None:
    """Append events until the trail holds ``total``, chaining from the head row."""
    _setup_django()
    from django.db import connection, transaction

    from core.audit import compute_hash
    from core.models import AuditChainHead

    rng = random.Random(total)
    with transaction.atomic():
        head, _ = AuditChainHead.objects.select_for_update().get_or_create(pk=1)
        sequence, prev_hash = head.last_sequence, head.last_hash
        start = datetime(2004, 1, 5, 8, 0, tzinfo=UTC) + timedelta(seconds=sequence * 37)
        with connection.cursor() as cursor:
            raw = cursor.cursor
            while sequence < total:
                buffer = io.StringIO()
                for _ in range(min(COPY_BATCH, total - sequence)):
                    sequence += 1
                    action, object_type = ACTIONS[rng.randrange(len(ACTIONS))]
                    object_id = str(rng.randrange(1, 150_000))
                    actor = ACTORS[rng.randrange(len(ACTORS))]
                    occurred_at = start + timedelta(seconds=sequence * 37, microseconds=rng.randrange(10**6))
                    summary = (f"{action.split('.')[1].replace('_', ' ').capitalize()}: {object_type} "
                               f"#{object_id} by {actor} on ws-{rng.randrange(100_000):05d}.")
                    data = {"refs": {"machine": [rng.randrange(1, 100_000)],
                                     "key_pack": [rng.randrange(1, 2_000)]},
                            "after": {"status": "active", "id": int(object_id)}}
                    fields = {
                        "sequence": sequence, "occurred_at": occurred_at, "actor": actor,
                        "action": action, "object_type": object_type, "object_id": object_id,
                        "summary": summary, "data": data, "prev_hash": prev_hash,
                    }
                    digest = compute_hash(**fields)
                    buffer.write("\t".join((
                        str(sequence), occurred_at.isoformat(), actor, action, object_type, object_id,
                        summary, json.dumps(data).replace("\\", "\\\\"), prev_hash, digest,
                    )))
                    buffer.write("\n")
                    prev_hash = digest
                buffer.seek(0)
                raw.copy_expert(
                    "COPY licensing_auditevent (sequence, occurred_at, actor, action, object_type, "
                    "object_id, summary, data, prev_hash, hash) FROM STDIN",
                    buffer,
                )
        AuditChainHead.objects.filter(pk=1).update(last_sequence=sequence, last_hash=prev_hash)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE licensing_auditevent")


def measure(mode: str) -> None:
    """Export the whole audit trail in one of three ways; print one JSON line.

    ``stream``: the generator ``GET /api/v1/reports/audit-trail.csv`` streams (COPY
    chunks on PostgreSQL), into /dev/null; ``stream_python``: the portable Python
    writer it falls back to elsewhere. ``file``: ``manage.py export_report audit-trail --format csv`` (COPY on
    PostgreSQL), into a scratch file. ``xlsx``: the same command as XLSX.
    """
    _setup_django()
    import tempfile

    from django.core.management import call_command

    from core.models import AuditEvent
    from licensing.reports import AUDIT_TRAIL
    from licensing.reports.writers import csv_chunks, csv_stream

    events = AuditEvent.objects.count()
    rss_before = _current_rss_mb()
    started = time.perf_counter()
    if mode in ("stream", "stream_python"):
        blocks = csv_stream(AUDIT_TRAIL, {}) if mode == "stream" else (
            block.encode() for block in csv_chunks(AUDIT_TRAIL, {}))
        written = 0
        with open(os.devnull, "wb") as sink:
            for block in blocks:
                written += len(block)
                sink.write(block)
    else:
        fmt = "xlsx" if mode == "xlsx" else "csv"
        with tempfile.TemporaryDirectory() as scratch:
            path = Path(scratch) / f"audit-trail.{fmt}"
            call_command("export_report", "audit-trail", "--format", fmt, "--output", str(path),
                         stdout=io.StringIO())
            written = path.stat().st_size
    elapsed = time.perf_counter() - started
    print(json.dumps({
        "mode": mode, "events": events, "seconds": round(elapsed, 2),
        "rows_per_second": round(events / elapsed), "file_mb": round(written / 2**20, 1),
        "rss_before_export_mb": round(rss_before, 1), "peak_rss_mb": round(_peak_rss_mb(), 1),
    }))


def psql_copy(database: str) -> dict | None:
    """``psql \\copy`` of the same rows, unformatted: the floor an export can aim at."""
    if shutil.which("psql") is None:
        return None
    select = ("SELECT sequence, occurred_at, actor, action, object_type, object_id, summary, data, "
              "prev_hash, hash FROM licensing_auditevent ORDER BY sequence")
    with tempfile.TemporaryFile() as sink:
        started = time.perf_counter()
        subprocess.run(["psql", f"{DEFAULT_SERVER}/{database}", "-q", "-c",
                        f"\\copy ({select}) to stdout csv header"], stdout=sink, check=True)
        return {"mode": "psql_copy", "seconds": round(time.perf_counter() - started, 2)}


def verify() -> None:
    """Time ``audit_verify_chain`` over the whole trail; print one JSON line."""
    _setup_django()
    from core.audit import audit_verify_chain

    started = time.perf_counter()
    result = audit_verify_chain()
    print(json.dumps({"verify_ok": result.ok, "events": result.events,
                      "verify_seconds": round(time.perf_counter() - started, 1),
                      "verify_peak_rss_mb": round(_peak_rss_mb(), 1)}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--database", default="portal_reports_bench")
    parser.add_argument("--verify", action="store_true", help="Also time verify_audit at the largest size.")
    parser.add_argument("--xlsx", action="store_true", help="Also measure the XLSX export at each size.")
    parser.add_argument("--mode", default="stream", help=argparse.SUPPRESS)
    parser.add_argument("--step", choices=["generate", "measure", "verify"], help=argparse.SUPPRESS)
    parser.add_argument("--total", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.step == "generate":
        return generate(args.total)
    if args.step == "measure":
        return measure(args.mode)
    if args.step == "verify":
        return verify()

    env = _env(args.database)
    recreate_database(args.database)
    results: dict[str, list] = {}
    for size in sorted(args.sizes):
        started = time.perf_counter()
        subprocess.run([sys.executable, __file__, "--step", "generate", "--total", str(size)],
                       env=env, check=True)
        print(f"generated {size} events in {time.perf_counter() - started:.1f}s", flush=True)
        modes = ["stream", "stream_python", "file"] + (["xlsx"] if args.xlsx else [])
        for mode in modes:
            out = subprocess.run([sys.executable, __file__, "--step", "measure", "--mode", mode], env=env,
                                 check=True, capture_output=True, text=True).stdout
            result = json.loads(out.strip().splitlines()[-1])
            results.setdefault(mode, []).append(result)
            print(json.dumps(result), flush=True)
        floor = psql_copy(args.database)
        if floor:
            floor["events"] = size
            floor["file_vs_psql"] = round(results["file"][-1]["seconds"] / floor["seconds"], 2)
            print(json.dumps(floor), flush=True)
    if args.verify:
        out = subprocess.run([sys.executable, __file__, "--step", "verify"], env=env, check=True,
                             capture_output=True, text=True).stdout
        print(out.strip(), flush=True)
    for mode, runs in results.items():
        if len(runs) > 1:
            low, high = runs[0]["peak_rss_mb"], runs[-1]["peak_rss_mb"]
            print(f"{mode}: peak RSS {low} MB at {runs[0]['events']} rows, {high} MB at {runs[-1]['events']} "
                  f"rows: {(high - low) / low * 100:+.1f}% (target: under 200 MB and within 20%)")


if __name__ == "__main__":
    main()
