"""Run one command and report its wall time and the peak RSS of that process alone."""

import os
import statistics
import subprocess
import tempfile
import time


def run_measured(args, *, env=None, stdout=None, cwd=None) -> dict:
    started = time.perf_counter()
    with tempfile.TemporaryFile() as stderr:  # a file, not a pipe: a chatty child never blocks on it
        process = subprocess.Popen(args, env=env, stdout=stdout or subprocess.DEVNULL, stderr=stderr, cwd=cwd)
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - started
        stderr.seek(0)
        error_text = stderr.read().decode(errors="replace")
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, args))} failed ({process.returncode}): {error_text[-2000:]}")
    return {"seconds": round(seconds, 3), "peak_rss_mb": round(usage.ru_maxrss / 1024, 1)}


def spread(values) -> dict:
    """Median, lowest and highest of the runs' values."""
    values = list(values)
    return {"median": round(statistics.median(values), 3), "min": round(min(values), 3),
            "max": round(max(values), 3), "runs": [round(v, 3) for v in values]}
