"""Files on an S3-compatible store (moto's server mode): what a worker writes, another web
process serves."""

import subprocess
import sys

import boto3
import pytest

from core.tests.conftest import PASSWORD
from core.tests.stack import free_port, manage, port_open, wait_for
from licensing.tests.exports import issued, issued_csv, key_pack, key_packs_csv

pytestmark = [pytest.mark.celery_worker, pytest.mark.slow]
BUCKET = "portal-files"
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "portal-test", "AWS_SECRET_ACCESS_KEY": "portal-test-secret",
               "AWS_DEFAULT_REGION": "us-east-1"}


@pytest.fixture
def s3_server(tmp_path):
    pytest.importorskip("moto.server", reason="moto's server mode is not installed (moto[server])")
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                               stdout=(tmp_path / "moto.log").open("w"), stderr=subprocess.STDOUT)
    wait_for(lambda: port_open(port), timeout=30, what="moto's S3 server")
    endpoint = f"http://127.0.0.1:{port}"
    client = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
                          aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"], region_name="us-east-1")
    client.create_bucket(Bucket=BUCKET)
    yield endpoint, client
    process.terminate()
    process.wait(timeout=10)


def test_an_export_written_by_the_worker_is_served_by_another_web_server(stack, s3_server, tmp_path):
    endpoint, client = s3_server
    stack.configure(PORTAL_FILE_STORAGE="s3", PORTAL_S3_BUCKET=BUCKET, PORTAL_S3_ENDPOINT_URL=endpoint,
                    **CREDENTIALS)
    manage(stack.env, "seed_demo", "--scale", "small", "--if-empty")
    # Each process has its own empty local folders: only the bucket is shared.
    first = stack.web("web-a")
    stack.configure(PORTAL_EXPORT_ROOT=str(tmp_path / "worker-only"))
    stack.worker()
    stack.configure(PORTAL_EXPORT_ROOT=str(tmp_path / "web-b-only"))
    second = stack.web("web-b")
    for web in (first, second):
        web.sign_in_api("ops-admin", PASSWORD)

    job = first.json("POST", "/api/v1/exports/", {"report": "licenses", "format": "csv"}, expect=202)
    done = wait_for(lambda: (lambda j: j if j["status"] in ("done", "failed") else None)(
        first.json("GET", f"/api/v1/exports/{job['id']}/")), timeout=60, what="the export", interval=0.25)
    assert done["status"] == "done", done

    stored = client.get_object(Bucket=BUCKET, Key=f"exports/export-{job['id']}-licenses.csv")["Body"].read()
    status, content, headers = second.request("GET", f"/api/v1/exports/{job['id']}/download/")
    assert status == 200 and "attachment" in headers["Content-Disposition"]
    assert content == stored and content.count(b"\n") == done["rows"] + 1 and done["rows"] > 0
    assert not (tmp_path / "worker-only").exists() and not (tmp_path / "web-b-only").exists()


def test_a_snapshot_pushed_to_one_web_server_is_imported_by_a_worker_elsewhere(stack, s3_server, tmp_path):
    """A collector pushes a PowerShell 5.1 export (UTF-16) to one gunicorn; a worker with
    folders of its own reads it from the bucket and imports it."""
    endpoint, client = s3_server
    stack.configure(PORTAL_FILE_STORAGE="s3", PORTAL_S3_BUCKET=BUCKET, PORTAL_S3_ENDPOINT_URL=endpoint,
                    **CREDENTIALS)
    admin = stack.web("web-a")
    admin.sign_in_api("ops-admin", PASSWORD)
    server = admin.json("POST", "/api/v1/license-servers/",
                        {"name": "TSLS-HQ", "windows_version": "windows_server_2019"}, expect=201)
    manage(stack.env, "add_user", "tsls-hq-collector", "--role", "collector", "--license-server", "TSLS-HQ")
    token = manage(stack.env, "collector_token", "tsls-hq-collector", "--days", "7").strip()
    stack.configure(PORTAL_IMPORT_ROOT=str(tmp_path / "worker-only"))
    stack.worker()

    files = [key_packs_csv(key_pack(31, 10, issued=2)),
             issued_csv(issued(9001, 31, "WS-ALPHA"), issued(9002, 31, "WS-BETA"))]
    collector = stack.web("web-b")
    collector.token = token
    job = collector.json("POST", "/api/v1/imports/", {"license_server": server["id"]}, files=files, expect=202)
    done = wait_for(lambda: (lambda j: j if j["status"] in ("done", "failed") else None)(
        collector.json("GET", f"/api/v1/imports/{job['id']}/")), timeout=60, what="the import", interval=0.25)
    assert done["status"] == "done", done
    assert done["summary"]["created"] == {"machine": 2, "key_pack": 1, "license": 2}
    snapshot = admin.json("GET", f"/api/v1/snapshots/{done['snapshot']}/")
    assert snapshot["sent_by"] == "tsls-hq-collector"
    assert [f["name"] for f in snapshot["files"]] == ["keypacks.csv", "issued.csv"]
    assert not (tmp_path / "worker-only").exists()  # the worker read the bucket, not a folder
    stored = client.list_objects_v2(Bucket=BUCKET, Prefix="imports/").get("KeyCount", 0)
    assert stored == 2  # kept for the job's page; purged with the import files' retention
    status, _, _ = collector.request("GET", "/api/v1/licenses/")
    assert status == 403
