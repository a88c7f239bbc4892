"""The production smoke run (``make smoke``): the README's Production section, done for real.

1. A fresh virtual environment with ``requirements.txt`` only (no dev requirements).
2. ``migrate``, ``collectstatic`` and ``check --deploy --fail-level WARNING`` on PostgreSQL,
   with production settings (``DJANGO_DEBUG`` off).
3. gunicorn, one Celery worker and one Celery beat against Redis.
4. Through the API: a token, a background export, polled until ``done``, downloaded, and
   compared byte for byte with ``manage.py export_report`` of the same report.

Settings: ``SMOKE_DATABASE_URL`` (default postgres://postgres@127.0.0.1:5432/portal_smoke; the
database is dropped and made again) and ``SMOKE_BROKER_URL`` (default
redis://127.0.0.1:6379/14). Only the Python standard library is used here, so this script
runs with the system Python before any venv exists.
"""

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
DATABASE_URL = os.environ.get("SMOKE_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/portal_smoke")
BROKER_URL = os.environ.get("SMOKE_BROKER_URL", "redis://127.0.0.1:6379/14")
PYTHON = os.environ.get("PYTHON") or shutil.which("python3.11") or sys.executable
TIMEOUT = 180


def step(message: str) -> None:
    print(f"== smoke: {message}", flush=True)


def fail(message: str) -> None:
    raise SystemExit(f"SMOKE FAILED: {message}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run(args, env, **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run(args, cwd=ROOT, env=env, text=True, capture_output=True, **kwargs)
    if result.returncode != 0:
        fail(f"{' '.join(map(str, args))} exited {result.returncode}\n{result.stdout}\n{result.stderr}")
    return result


class Http:
    """JSON over HTTP to gunicorn, as a TLS-terminating proxy would forward it."""

    def __init__(self, base: str):
        self.base = base
        self.token = None

    def request(self, method: str, path: str, body=None) -> tuple[int, bytes, dict]:
        if path.startswith("http"):  # a link the portal made for the proxy's https address
            parts = urlsplit(path)
            path = parts.path + (f"?{parts.query}" if parts.query else "")
        url = self.base + path
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(url, data=data, method=method)
        req.add_header("X-Forwarded-Proto", "https")
        req.add_header("Accept", "application/json")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        if self.token:
            req.add_header("Authorization", f"Token {self.token}")
        try:
            with urllib.request.urlopen(req, timeout=30) as response:
                return response.status, response.read(), dict(response.headers)
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read(), dict(exc.headers)

    def json(self, method: str, path: str, body=None, expect=200) -> dict:
        status, content, _ = self.request(method, path, body)
        if status != expect:
            fail(f"{method} {path} answered {status}, not {expect}: {content[:2000]!r}")
        return json.loads(content)


def recreate_database(venv_python: Path, env: dict) -> None:
    parts = urlsplit(DATABASE_URL)
    name = parts.path.lstrip("/")
    admin_url = urlunsplit(parts._replace(path="/postgres"))
    script = (
        "import psycopg2, sys\n"
        "conn = psycopg2.connect(sys.argv[1]); conn.autocommit = True\n"
        "cur = conn.cursor()\n"
        "cur.execute('DROP DATABASE IF EXISTS \"%s\" WITH (FORCE)' % sys.argv[2])\n"
        "cur.execute('CREATE DATABASE \"%s\"' % sys.argv[2])\n"
    )
    run([venv_python, "-c", script, admin_url, name], env)


def main() -> None:
    scratch = Path(tempfile.mkdtemp(prefix="portal-smoke-"))
    processes: dict[str, subprocess.Popen] = {}
    logs: dict[str, Path] = {}
    ok = False
    try:
        step(f"a fresh venv from requirements.txt only ({PYTHON})")
        venv = scratch / "venv"
        run([PYTHON, "-m", "venv", venv], os.environ.copy())
        bin_dir = venv / "bin"
        run([bin_dir / "pip", "install", "--quiet", "--disable-pip-version-check", "-r", ROOT / "requirements.txt"],
            os.environ.copy())

        env = {key: value for key, value in os.environ.items()
               if not key.startswith(("DJANGO_", "PORTAL_", "CELERY_", "DATABASE_URL", "LDAP_"))}
        env |= {
            "PATH": f"{bin_dir}:{env.get('PATH', '')}",
            "VIRTUAL_ENV": str(venv),
            "DJANGO_SETTINGS_MODULE": "portal.settings",
            "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
            "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
            "DATABASE_URL": DATABASE_URL,
            "CELERY_BROKER_URL": BROKER_URL,
            "PORTAL_EXPORT_ROOT": str(scratch / "exports"),
            "PORTAL_IMPORT_ROOT": str(scratch / "imports"),
            "DJANGO_STATIC_ROOT": str(scratch / "static"),
            "PYTHONDONTWRITEBYTECODE": "1",
        }
        python = bin_dir / "python"

        step(f"migrate, collectstatic and check --deploy on {DATABASE_URL}")
        recreate_database(python, env)
        run([python, "manage.py", "migrate", "--noinput"], env)
        run([python, "manage.py", "collectstatic", "--noinput"], env)
        run([python, "manage.py", "check", "--deploy", "--fail-level", "WARNING"], env)
        run([python, "manage.py", "seed_demo", "--scale", "small"], env)
        password = secrets.token_urlsafe(16)
        run([python, "manage.py", "add_user", "smoke-admin", "--role", "admin"], env | {"PORTAL_PASSWORD": password})

        port = free_port()
        commands = {
            "gunicorn": [bin_dir / "gunicorn", "portal.wsgi:application", "--bind", f"127.0.0.1:{port}",
                         "--workers", "2", "--access-logfile", "-"],
            "worker": [bin_dir / "celery", "-A", "portal", "worker", "--loglevel", "INFO", "--concurrency", "1",
                       "--hostname", f"smoke-{port}@%h"],
            "beat": [bin_dir / "celery", "-A", "portal", "beat", "--loglevel", "INFO",
                     "--schedule", scratch / "beat-schedule", "--pidfile", ""],
        }
        for name, args in commands.items():
            if not Path(args[0]).exists():
                fail(f"requirements.txt does not install {Path(args[0]).name}, which the README's {name} runs")
            logs[name] = scratch / f"{name}.log"
            processes[name] = subprocess.Popen(args, cwd=ROOT, env=env, stdout=logs[name].open("w"),
                                               stderr=subprocess.STDOUT, start_new_session=True)
        step(f"gunicorn on 127.0.0.1:{port}, one worker and one beat against {BROKER_URL}")

        http = Http(f"http://127.0.0.1:{port}")
        deadline = time.monotonic() + TIMEOUT
        while True:
            for name, process in processes.items():
                if process.poll() is not None:
                    fail(f"{name} exited with {process.returncode}")
            try:
                status, content, _ = http.request("GET", "/healthz")
            except OSError:
                status, content = None, b""
            if status == 200:
                health = json.loads(content)
                break
            if time.monotonic() > deadline:
                fail(f"/healthz never answered 200 (last: {status} {content!r})")
            time.sleep(0.5)
        if health != {"status": "ok", "database": "ok", "broker": "ok"}:
            fail(f"/healthz says {health}")
        worker_ready = time.monotonic() + 60
        while "ready." not in logs["worker"].read_text():
            if time.monotonic() > worker_ready:
                fail("the Celery worker never said it was ready")
            time.sleep(0.5)

        step("a background export through the API, until done")
        credentials = {"username": "smoke-admin", "password": password}
        http.token = http.json("POST", "/api/v1/auth/token/", credentials)["token"]
        job = http.json("POST", "/api/v1/exports/", {"report": "licenses", "format": "csv"}, expect=202)
        while job["status"] not in ("done", "failed"):
            if time.monotonic() > deadline:
                fail(f"export #{job['id']} is still {job['status']} at {job['progress']}%")
            time.sleep(0.5)
            job = http.json("GET", f"/api/v1/exports/{job['id']}/")
        if job["status"] != "done":
            fail(f"export #{job['id']} failed: {job.get('error')}")
        status, content, headers = http.request("GET", job["download_url"])
        if status != 200 or "attachment" not in headers.get("Content-Disposition", ""):
            fail(f"downloading export #{job['id']} answered {status}: {content[:500]!r}")

        expected = scratch / "expected.csv"
        run([python, "manage.py", "export_report", "licenses", "--format", "csv", "--output", expected], env)
        rows = content.decode().count("\n") - 1
        if content != expected.read_bytes():
            fail("the downloaded export differs from manage.py export_report of the same report")
        if rows < 1 or job["rows"] != rows:
            fail(f"the export has {rows} rows; the job says {job['rows']}")
        if processes["beat"].poll() is not None or "beat: Starting" not in logs["beat"].read_text():
            fail("the Celery beat is not running")
        step(f"export #{job['id']} done in the worker: {rows} rows, identical to export_report")
        ok = True
    finally:
        for process in processes.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in processes.values():
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
        if not ok:
            for name, path in logs.items():
                print(f"---- {name} log (last 60 lines)\n" + "\n".join(path.read_text().splitlines()[-60:]))
        shutil.rmtree(scratch, ignore_errors=True)
    step("passed")


if __name__ == "__main__":
    main()
