"""Services broken on purpose, under production settings: a worker killed mid-export, the
broker stopped, the database refusing connections. Every process is real (gunicorn, Celery
workers, a PostgreSQL cluster and a Redis of the test's own); the test speaks HTTP."""

import io
import json
import os
import signal
import subprocess
import sys

import openpyxl
import pytest

from core.tests.conftest import PASSWORD
from core.tests.stack import ROOT, wait_for

pytestmark = [pytest.mark.celery_worker, pytest.mark.slow]
EVENTS = 25_000


def export_job(postgres, job_id: int) -> dict:
    columns = ("status", "progress", "attempts", "worker", "rows", "error")
    row = postgres.sql(f"SELECT {', '.join(columns)} FROM licensing_exportjob WHERE id = %s", job_id)[0]
    return dict(zip(columns, row, strict=True))


def test_killed_pool_process_mid_export_the_job_still_completes_with_a_correct_file(postgres, stack):
    # Enough audit rows that writing the XLSX takes a few seconds.
    start = postgres.sql("SELECT coalesce(max(sequence), 0) FROM licensing_auditevent")[0][0]
    postgres.sql(
        "INSERT INTO licensing_auditevent (sequence, occurred_at, actor, action, object_type, object_id, summary,"
        " data, prev_hash, hash) SELECT %s + n, now(), 'load', 'load.row', 'x', n::text, 'row ' || n, '{}',"
        " md5(n::text) || md5(n::text), md5((n + 1)::text) || md5(n::text) FROM generate_series(1, %s) n",
        start, EVENTS,
    )
    # The chain head moves on past them, so later events follow (the chain itself is not verified here).
    postgres.sql("UPDATE licensing_auditchainhead SET last_sequence = %s", start + EVENTS)
    web = stack.web()
    worker = stack.worker()
    web.sign_in_api("ops-admin", PASSWORD)

    job = web.json("POST", "/api/v1/exports/", {"report": "audit-trail", "format": "xlsx"}, expect=202)
    running = wait_for(lambda: (lambda j: j if j["status"] == "running" and j["progress"] >= 5 else None)(
        export_job(postgres, job["id"])), timeout=60, what="the export to be under way", interval=0.05)
    pid = int(running["worker"].rsplit(":", 1)[1])
    assert pid != worker.process.pid  # the pool's child, not the worker's main process
    os.kill(pid, signal.SIGKILL)

    done = wait_for(lambda: (lambda j: j if j["status"] in ("done", "failed") else None)(
        export_job(postgres, job["id"])), timeout=120, what="the export to finish", interval=0.25)
    assert done["status"] == "done", (done, worker.output()[-4000:])
    total = postgres.sql("SELECT count(*) FROM licensing_auditevent")[0][0]  # sign-in and export events too
    assert total > EVENTS
    assert done["attempts"] == 2 and done["rows"] == total
    assert int(done["worker"].rsplit(":", 1)[1]) != pid
    assert "exited with 'signal 9 (SIGKILL)'" in worker.output()

    body = web.json("GET", f"/api/v1/exports/{job['id']}/")
    status, content, _ = web.request("GET", body["download_url"])
    assert status == 200
    sheet = openpyxl.load_workbook(io.BytesIO(content), read_only=True).worksheets[0]
    sequences = [row[0] for row in sheet.iter_rows(min_row=2, max_col=1, values_only=True)]
    assert sequences == list(range(1, total + 1))  # every row once, in order: nothing appended twice


def test_broker_stopped_the_api_answers_503_pages_work_and_nothing_is_stuck_when_it_is_back(postgres, redis, stack):
    web = stack.web()
    worker = stack.worker()
    web.sign_in_api("ops-admin", PASSWORD)
    web.sign_in_pages("ops-admin", PASSWORD)
    jobs_before = postgres.sql("SELECT count(*) FROM licensing_exportjob")[0][0]
    events_before = postgres.sql("SELECT count(*) FROM licensing_auditevent")[0][0]

    redis.stop()
    status, content, headers = web.request("POST", "/api/v1/exports/", {"report": "licenses", "format": "csv"})
    assert status == 503, content
    body = json.loads(content)
    assert body["code"] == "service_unavailable" and "broker" in body["detail"]
    assert headers["Content-Type"] == "application/json"
    # Refused before anything was written: no job that would never run, no audit event.
    assert postgres.sql("SELECT count(*) FROM licensing_exportjob")[0][0] == jobs_before
    assert postgres.sql("SELECT count(*) FROM licensing_auditevent")[0][0] == events_before
    for path in ("/", "/licenses/", "/machines/", "/audit/", "/reports/"):
        status, content, _ = web.page(path)
        assert status == 200, (path, status, content[:300])
    assert web.json("GET", "/api/v1/licenses/")["results"] == []
    status, content, _ = web.request("GET", "/healthz")
    assert status == 503 and b'"broker": "down"' in content
    assert "broker is down" in web.process.output()  # the real cause is logged

    # A job whose task never reached the broker (its send failed after the row committed).
    admin = postgres.sql("SELECT id FROM auth_user WHERE username = 'ops-admin'")[0][0]
    orphan = postgres.sql(
        "INSERT INTO licensing_exportjob (report, format, filters, status, progress, rows, file_name, error,"
        " requested_by_id, created_at, queued_at, attempts, requeues, worker)"
        " VALUES ('licenses', 'csv', '{}', 'pending', 0, 0, '', '', %s, now(), now() - interval '1 hour',"
        " 0, 0, '') RETURNING id", admin)[0][0]

    redis.start()
    job = web.json("POST", "/api/v1/exports/", {"report": "licenses", "format": "csv"}, expect=202)
    # The sweeper (the beat sends it every minute; here, once by hand) queues the orphan again.
    subprocess.run([sys.executable, "-m", "celery", "-A", "portal", "call", "core.tasks.sweep_background_jobs"],
                   cwd=ROOT, env=stack.env, check=True, capture_output=True)
    for pk in (job["id"], orphan):
        finished = wait_for(lambda pk=pk: (lambda j: j if j["status"] in ("done", "failed") else None)(
            export_job(postgres, pk)), timeout=60, what=f"export #{pk}", interval=0.25)
        assert finished["status"] == "done", (finished, worker.output()[-3000:])
    assert postgres.sql("SELECT count(*) FROM licensing_exportjob WHERE status IN ('pending', 'running')")[0][0] == 0


def test_database_refusing_connections_gives_503_json_and_a_503_page_then_recovers(postgres, stack):
    web = stack.web()
    web.sign_in_api("ops-admin", PASSWORD)
    web.sign_in_pages("ops-admin", PASSWORD)
    assert web.json("GET", "/api/v1/machines/")["results"] == []

    postgres.stop()
    try:
        requests = (
            ("GET", "/api/v1/licenses/", None), ("GET", "/api/v1/machines/", None),
            ("POST", "/api/v1/machines/", {"hostname": "ws-down-01", "os_edition": "windows_11"}),
            ("POST", "/api/v1/auth/token/", {"username": "ops-admin", "password": PASSWORD}),
        )
        for method, path, body in requests:
            status, content, headers = web.request(method, path, body)
            assert status == 503, (method, path, status, content[:500])
            assert headers["Content-Type"] == "application/json"
            assert json.loads(content)["code"] == "service_unavailable"
        for path in ("/", "/licenses/", "/machines/", "/audit/", "/transfers/new/"):
            status, content, headers = web.page(path)
            assert status == 503, (path, status, content[:500])
            assert headers["Content-Type"].startswith("text/html") and b"Service unavailable" in content
        status, content, _ = web.request("GET", "/healthz")
        assert status == 503 and b'"database": "down"' in content
    finally:
        postgres.start()

    # Back without a restart, and the refused write left nothing behind.
    assert web.json("GET", "/api/v1/machines/")["results"] == []
    status, _, _ = web.page("/machines/")
    assert status == 200
    assert " 500 " not in web.process.output()
