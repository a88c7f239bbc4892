"""B4's clients: the whole transfer workflow through the API, from several threads at once.

    python -m bench.workflow BASE_URL PLAN.json

PLAN.json holds two tokens (two admins: four eyes) and one job per workflow: the source
license, the target machine, the server and product, and a unique KeyPackId for the
reissued pack. Prints JSON: completed workflows, wall time, and per-step latencies.
"""

import http.client
import json
import statistics
import sys
import threading
import time
from urllib.parse import urlsplit

from bench.load import percentile, run_together

STEPS = ["file", "approve", "confirm_removal", "log_call", "install"]


def main(argv=None):
    argv = argv or sys.argv[1:]
    base, plan_path = argv[0], argv[1]
    plan = json.loads(open(plan_path).read())
    parts = urlsplit(base)
    clients = plan["clients"]
    latencies = {step: [] for step in STEPS}
    failures = []
    lock = threading.Lock()

    def post(conn, path, body, token):
        start = time.perf_counter()
        conn.request("POST", path, body=json.dumps(body),
                     headers={"Authorization": f"Token {token}", "Content-Type": "application/json"})
        response = conn.getresponse()
        payload = response.read()
        elapsed = (time.perf_counter() - start) * 1000
        if response.status not in (200, 201):
            raise RuntimeError(f"{path}: {response.status} {payload[:300]!r}")
        return json.loads(payload), elapsed

    def client(jobs, barrier):
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=120)
        barrier.wait()
        for job in jobs:
            timings = {}
            try:
                transfer, timings["file"] = post(conn, "/api/v1/transfers/", {
                    "license": job["license"], "target_machine": job["target"], "reason": "bench: hardware refresh",
                }, plan["token_a"])
                tid = transfer["id"]
                _, timings["approve"] = post(conn, f"/api/v1/transfers/{tid}/approve/", {}, plan["token_b"])
                _, timings["confirm_removal"] = post(conn, f"/api/v1/transfers/{tid}/confirm-removal/",
                                                     {"method": "registry_key_deleted"}, plan["token_a"])
                call, timings["log_call"] = post(conn, "/api/v1/reissue-requests/", {
                    "called_at": "2026-11-01T10:00:00Z", "csc_location": "North America",
                    "csc_phone_number": "+1 888 555 0142", "license_server": job["license_server"],
                    "product_version": job["product_version"], "license_program": "select",
                    "quantity_requested": 1, "transfers": [tid],
                }, plan["token_a"])
                _, timings["install"] = post(conn, f"/api/v1/reissue-requests/{call['id']}/install/", {
                    "key_pack_id": job["key_pack_id"], "total_licenses": 1,
                }, plan["token_b"])
            except Exception as exc:  # reported, and counted as not completed
                with lock:
                    failures.append(str(exc))
                continue
            with lock:
                for step, ms in timings.items():
                    latencies[step].append(ms)
        conn.close()

    wall = run_together(client, clients)
    completed = len(latencies["install"])

    def p95(values):
        value = percentile(values, 0.95)
        return None if value is None else round(value, 1)

    json.dump({
        "clients": len(clients), "completed": completed, "failures": failures[:5], "failed": len(failures),
        "seconds": round(wall, 2), "transfers_per_second": round(completed / wall, 2) if wall else None,
        "p95_ms": {step: p95(v) for step, v in latencies.items()},
        "median_ms": {step: round(statistics.median(v), 1) if v else None for step, v in latencies.items()},
    }, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
