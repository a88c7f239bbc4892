"""What the audit chain's serialised head costs under concurrency.

    python bench/audit_chain.py [--threads 8] [--ops 150]

Issues temporary CALs to distinct machines from several threads at once, so the only
row all writers share is the audit chain head. Three runs, in one process, on a scratch
PostgreSQL database (BENCH_AUDIT_DATABASE_URL, default .../portal_audit_bench):
- chained: the real service (event hashed onto the chain head, head row locked);
- unchained: the same event row written without the head (a random sequence, no lock);
- none: no audit event at all.
Prints throughput and latency percentiles of each, at 1 thread and at --threads.
"""

import argparse
import os
import random
import statistics
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DB_URL = os.environ.get("BENCH_AUDIT_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/portal_audit_bench")


def setup():
    import psycopg2

    admin = psycopg2.connect(host="127.0.0.1", user="postgres", dbname="postgres")
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute("DROP DATABASE IF EXISTS portal_audit_bench")
        cursor.execute("CREATE DATABASE portal_audit_bench")
    admin.close()
    os.environ.update({
        "DJANGO_SETTINGS_MODULE": "portal.settings", "DATABASE_URL": DB_URL, "DJANGO_DEBUG": "0",
        "DJANGO_SECRET_KEY": "bench-only-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz",
    })
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def run(mode: str, threads: int, ops: int) -> dict:
    from django.db import connections
    from django.utils import timezone

    from core import audit, licenses
    from core.models import AuditEvent
    from inventory.models import ClientMachine
    from licensing.models import LicenseServer

    server, _ = LicenseServer.objects.get_or_create(
        name="BENCH-LS", defaults={"windows_version": "windows_server_2019", "builtin_cal_for_pro_clients": False}
    )
    tag = f"{mode}-{threads}-{time.monotonic_ns()}"
    machines = ClientMachine.objects.bulk_create(
        [ClientMachine(hostname=f"b-{tag}-{i}", os_edition="windows_10") for i in range(threads * ops)]
    )

    def unchained(**event):
        # The same row, without the chain: no head lock, no link to the event before.
        fields = dict(event)
        obj = fields.pop("obj", None)
        refs = fields.pop("refs", None)
        data = dict(fields.pop("data", None) or {}, refs=refs or {})
        object_type, object_id = audit.object_ref(obj) if obj is not None else ("", "")
        return AuditEvent.objects.create(
            sequence=random.getrandbits(62), occurred_at=timezone.now(), actor=audit.actor_name(fields["actor"]),
            action=fields["action"], object_type=object_type, object_id=object_id, summary=fields["summary"],
            data=audit.json_safe(data), prev_hash="", hash=f"{random.getrandbits(256):064x}",
        )

    original = licenses.audit_record
    licenses.audit_record = {"chained": original, "unchained": unchained, "none": lambda **e: None}[mode]
    latencies: list[float] = []
    lock = threading.Lock()
    barrier = threading.Barrier(threads + 1)

    def worker(mine):
        barrier.wait()
        local = []
        for machine in mine:
            start = time.perf_counter()
            licenses.license_issue_temporary(machine=machine, license_server=server,
                                             product_version="windows_server_2019", actor="bench")
            local.append((time.perf_counter() - start) * 1000)
        connections.close_all()
        with lock:
            latencies.extend(local)

    workers = [threading.Thread(target=worker, args=(machines[i::threads],)) for i in range(threads)]
    for w in workers:
        w.start()
    barrier.wait()
    started = time.perf_counter()
    for w in workers:
        w.join()
    wall = time.perf_counter() - started
    licenses.audit_record = original
    latencies.sort()
    return {
        "mode": mode, "threads": threads, "ops": len(latencies), "ops_per_s": round(len(latencies) / wall, 1),
        "median_ms": round(statistics.median(latencies), 2),
        "p95_ms": round(latencies[int(0.95 * (len(latencies) - 1))], 2),
    }


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--ops", type=int, default=150)
    args = parser.parse_args()
    setup()

    results = []
    for threads in (1, args.threads):
        for mode in ("none", "unchained", "chained"):
            results.append(run(mode, threads, args.ops))
            print(results[-1], flush=True)
    print("\n| threads | events | ops/s | median ms | p95 ms |\n|---|---|---|---|---|")
    for r in results:
        print(f"| {r['threads']} | {r['mode']} | {r['ops_per_s']} | {r['median_ms']} | {r['p95_ms']} |")
    for threads in (1, args.threads):
        by_mode = {r["mode"]: r for r in results if r["threads"] == threads}
        print(f"\n{threads} thread(s): chained/unchained throughput = "
              f"{by_mode['chained']['ops_per_s'] / by_mode['unchained']['ops_per_s']:.2f}")


if __name__ == "__main__":
    main()
