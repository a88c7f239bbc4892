"""A production-like stack in subprocesses, for tests that break services on purpose.

- ``OwnPostgres``: a PostgreSQL cluster of the test's own, in a temporary folder, on a spare
  port (``initdb``/``pg_ctl``), so a test can stop it. The shared server is never touched.
- ``OwnRedis``: a ``redis-server`` on a spare port, likewise.
- ``Portal``: gunicorn and Celery workers with production settings (``DJANGO_DEBUG`` off)
  against them, spoken to over HTTP as a TLS-terminating proxy would.
"""

import http.cookiejar
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PG_BIN = Path(os.environ.get("PORTAL_TEST_PG_BIN", "/usr/lib/postgresql/15/bin"))
SECRET_KEY = "fault-tests-secret-key-" + "k3Y9" * 12


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(predicate, *, timeout: float, what: str, interval: float = 0.2):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


class OwnPostgres:
    def __init__(self):
        if not (PG_BIN / "initdb").exists():
            pytest.skip(f"no PostgreSQL server binaries at {PG_BIN} (set PORTAL_TEST_PG_BIN)")
        # Its own folder straight under the system's temporary folder: the server's user must
        # be able to reach it.
        folder = self.folder = Path(tempfile.mkdtemp(prefix="portal-test-pg-"))
        self.data = folder / "data"
        self.port = free_port()
        self.url = f"postgres://postgres@127.0.0.1:{self.port}/portal"
        self.template_url = self.url
        self._as_owner = []
        if os.geteuid() == 0:  # PostgreSQL refuses to run as root
            shutil.chown(folder, "postgres")
            self._as_owner = ["runuser", "-u", "postgres", "--"]
        subprocess.run([*self._as_owner, PG_BIN / "initdb", "-D", self.data, "-A", "trust", "-U", "postgres"],
                       check=True, capture_output=True)
        self.start()
        subprocess.run([sys.executable, "-c", (
            "import psycopg2, sys; c = psycopg2.connect(sys.argv[1]); c.autocommit = True; "
            "c.cursor().execute('CREATE DATABASE portal')"), self.admin_url], check=True)

    @property
    def admin_url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/postgres"

    def start(self) -> None:
        subprocess.run([*self._as_owner, PG_BIN / "pg_ctl", "-D", self.data, "-l", self.folder / "server.log", "-w",
                        "-o", f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off",
                        "start"], check=True, capture_output=True)

    def stop(self) -> None:
        subprocess.run([*self._as_owner, PG_BIN / "pg_ctl", "-D", self.data, "-m", "fast", "-w", "stop"],
                       check=True, capture_output=True)
        assert not port_open(self.port)

    def copy_database(self, name: str) -> None:
        """Point ``url`` at a new database copied from the first one (migrated once)."""
        self.sql_as_admin(f'CREATE DATABASE "{name}" TEMPLATE portal')
        self.url = f"postgres://postgres@127.0.0.1:{self.port}/{name}"

    def sql_as_admin(self, statement: str) -> None:
        import psycopg2

        conn = psycopg2.connect(self.admin_url.replace("postgres://", "postgresql://"))
        try:
            conn.autocommit = True
            conn.cursor().execute(statement)
        finally:
            conn.close()

    def sql(self, statement: str, *params):
        import psycopg2

        with psycopg2.connect(self.url.replace("postgres://", "postgresql://")) as conn, conn.cursor() as cursor:
            cursor.execute(statement, params)
            return cursor.fetchall() if cursor.description else None

    def close(self) -> None:
        if port_open(self.port):
            self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)


class OwnRedis:
    def __init__(self, folder: Path):
        if shutil.which("redis-server") is None:
            pytest.skip("redis-server is not installed")
        self.folder = folder
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process = None
        self.start()

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port), "--save", "", "--appendonly", "no",
             "--dir", str(self.folder)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        wait_for(lambda: port_open(self.port), timeout=10, what="redis-server")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)
        assert not port_open(self.port)

    def close(self) -> None:
        if self.process and self.process.poll() is None:
            self.stop()


def portal_env(*, database_url: str, broker_url: str, files: Path, **extra) -> dict:
    """Production settings (DEBUG off) for processes behind a TLS-terminating proxy."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "PORTAL_", "CELERY_", "LDAP_"))}
    env.pop("DATABASE_URL", None)
    return env | {
        "DJANGO_SETTINGS_MODULE": "portal.settings",
        "DJANGO_SECRET_KEY": SECRET_KEY,
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
        "DJANGO_SECURE_SSL_REDIRECT": "0",
        "DJANGO_SECURE_COOKIES": "0",
        "DATABASE_URL": database_url,
        "CELERY_BROKER_URL": broker_url,
        "PORTAL_EXPORT_ROOT": str(files / "exports"),
        "PORTAL_IMPORT_ROOT": str(files / "imports"),
        # Short job timings, so a dead worker's job is taken over within seconds.
        "PORTAL_JOB_HEARTBEAT_SECONDS": "1",
        "PORTAL_JOB_STALE_SECONDS": "3",
        "PORTAL_JOB_PENDING_SECONDS": "2",
        **extra,
    }


def manage(env: dict, *args: str) -> str:
    result = subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


class Process:
    def __init__(self, name: str, args: list, env: dict, log: Path):
        self.name = name
        self.log = log
        self.process = subprocess.Popen(args, cwd=ROOT, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT,
                                        start_new_session=True)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self) -> None:
        if self.alive():
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


def start_web(env: dict, folder: Path, name: str = "web") -> "Web":
    port = free_port()
    process = Process(name, [sys.executable, "-m", "gunicorn", "portal.wsgi:application", "--bind",
                             f"127.0.0.1:{port}", "--workers", "1", "--timeout", "60"], env, folder / f"{name}.log")
    web = Web(f"http://127.0.0.1:{port}", process)
    wait_for(lambda: port_open(port) or not process.alive(), timeout=30, what="gunicorn")
    assert process.alive(), process.output()
    return web


def start_worker(env: dict, folder: Path, name: str = "worker") -> Process:
    process = Process(name, [sys.executable, "-m", "celery", "-A", "portal", "worker", "--pool", "prefork",
                             "--concurrency", "1", "--without-gossip", "--without-mingle", "--loglevel", "INFO",
                             "--hostname", f"{name}-{free_port()}@%h"], env, folder / f"{name}.log")
    wait_for(lambda: "ready." in process.output() or not process.alive(), timeout=60, what="the Celery worker")
    assert process.alive(), process.output()
    return process


def multipart(fields: dict, files: list[tuple[str, bytes]]) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    parts = []
    for name, value in fields.items():
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode())
    for file_name, content in files:
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="{file_name}"\r\n'
                     "Content-Type: text/csv\r\n\r\n".encode() + content + b"\r\n")
    return b"".join(parts) + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


class Web:
    """An HTTP client of one gunicorn, with a cookie jar for the pages and a token for the API."""

    def __init__(self, base: str, process: Process):
        self.base = base
        self.process = process
        self.token = None
        self.cookies = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.cookies))

    def request(self, method: str, path: str, body=None, *, form: dict | None = None, api: bool = True,
                files: list[tuple[str, bytes]] | None = None):
        """``files`` (name, content) pairs send ``body``'s fields and the files as multipart, as
        PowerShell's ``Invoke-RestMethod -Form`` does; their field name is ``files``."""
        data, headers = None, {"X-Forwarded-Proto": "https"}
        if files is not None:
            data, headers["Content-Type"] = multipart(body or {}, files)
        elif body is not None:
            data, headers["Content-Type"] = json.dumps(body).encode(), "application/json"
        if form is not None:
            data = urllib.parse.urlencode(form).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            headers["Referer"] = f"https://127.0.0.1:{self.base.rsplit(':', 1)[1]}/accounts/login/"
        if api and self.token:
            headers["Authorization"] = f"Token {self.token}"
        if path.startswith("http"):
            parts = urllib.parse.urlsplit(path)
            path = parts.path + (f"?{parts.query}" if parts.query else "")
        req = urllib.request.Request(self.base + path, data=data, method=method, headers=headers)
        opener = self.opener if not api else urllib.request.build_opener()
        try:
            with opener.open(req, timeout=30) as response:
                return response.status, response.read(), response.headers
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read(), exc.headers

    def json(self, method: str, path: str, body=None, expect: int = 200, files=None):
        status, content, _ = self.request(method, path, body, files=files)
        assert status == expect, (method, path, status, content[:2000], self.process.output()[-3000:])
        return json.loads(content) if content else None

    def sign_in_api(self, username: str, password: str) -> None:
        self.token = self.json("POST", "/api/v1/auth/token/", {"username": username, "password": password})["token"]

    def sign_in_pages(self, username: str, password: str) -> None:
        status, content, _ = self.request("GET", "/accounts/login/", api=False)
        assert status == 200, content[:500]
        csrf = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', content).group(1).decode()
        status, content, _ = self.request(
            "POST", "/accounts/login/", form={"csrfmiddlewaretoken": csrf, "username": username, "password": password},
            api=False,
        )
        assert status == 200 and b"Log out" in content, (status, content[:1000])

    def page(self, path: str):
        return self.request("GET", path, api=False)
