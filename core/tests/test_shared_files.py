"""Files on an S3-compatible store (moto's server mode): what a worker writes, another web
process serves."""

import subprocess
import sys

import boto3
import pytest

from core.tests.conftest import PASSWORD
from core.tests.stack import free_port, manage, port_open, wait_for

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
