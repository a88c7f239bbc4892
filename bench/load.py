"""The load generator: a separate process that sends HTTP requests and reports timings.

    python -m bench.load URL --requests N --concurrency C [--header "K: V"]...

Prints one JSON object: request count, errors, wall time, throughput and latency
percentiles in milliseconds. Keep-alive connections, one per client thread.
"""

import argparse
import http.client
import json
import statistics
import sys
import threading
import time
from urllib.parse import urlsplit


def percentile(values, fraction):
    ordered = sorted(values)
    if not ordered:
        return None
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


def run_together(target, work_items) -> float:
    """Start one thread per work item, release them at once (each calls ``barrier.wait()``),
    and return the seconds until the last one ends."""
    barrier = threading.Barrier(len(work_items) + 1)
    threads = [threading.Thread(target=target, args=(item, barrier)) for item in work_items]
    for t in threads:
        t.start()
    barrier.wait()
    started = time.perf_counter()
    for t in threads:
        t.join()
    return time.perf_counter() - started


def run(url: str, requests: int, concurrency: int, headers: dict, warmup: int = 5) -> dict:
    parts = urlsplit(url)
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    per_client = [requests // concurrency + (1 if i < requests % concurrency else 0) for i in range(concurrency)]

    def client(count: int, barrier: threading.Barrier):
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
        for _ in range(warmup):
            conn.request("GET", path, headers=headers)
            conn.getresponse().read()
        barrier.wait()
        mine = []
        for _ in range(count):
            start = time.perf_counter()
            conn.request("GET", path, headers=headers)
            response = conn.getresponse()
            response.read()
            mine.append((time.perf_counter() - start) * 1000)
            if response.status != 200:
                with lock:
                    errors.append(str(response.status))
        conn.close()
        with lock:
            latencies.extend(mine)

    wall = run_together(client, per_client)
    return {
        "url": url, "requests": len(latencies), "concurrency": concurrency, "errors": len(errors),
        "error_statuses": sorted(set(errors)), "seconds": round(wall, 3),
        "throughput_rps": round(len(latencies) / wall, 1) if wall else None,
        "median_ms": round(statistics.median(latencies), 2) if latencies else None,
        "p95_ms": round(percentile(latencies, 0.95), 2) if latencies else None,
    }


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--header", action="append", default=[])
    args = parser.parse_args(argv)
    headers = dict(h.split(": ", 1) for h in args.header)
    json.dump(run(args.url, args.requests, args.concurrency, headers), sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
