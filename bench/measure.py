"""Run one command and report its wall time and the peak RSS of that process alone."""

import os
import subprocess
import time


def run_measured(args, *, env=None, stdout=None, cwd=None) -> dict:
    started = time.perf_counter()
    process = subprocess.Popen(args, env=env, stdout=stdout or subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=cwd)
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    stderr = process.stderr.read().decode(errors="replace") if process.stderr else ""
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, args))} failed ({process.returncode}): {stderr[-2000:]}")
    return {"seconds": round(seconds, 3), "peak_rss_mb": round(usage.ru_maxrss / 1024, 1)}
