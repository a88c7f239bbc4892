"""The imports/ endpoint: a multipart push of a server's exports, run as a background job; a
file with any problem imports nothing, through the job too."""

from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from core.models import AuditEvent
from licensing.models import ImportJob, KeyPack, License, Snapshot

FILES = Path(__file__).parent / "import_files"


def upload(*names):
    return [SimpleUploadedFile(name, (FILES / name).read_bytes(), content_type="text/csv") for name in names]


def push(client, capture, **data):
    with capture(execute=True):
        return client.post("/api/v1/imports/", data, format="multipart")


@pytest.fixture
def api(admin_user, file_store):
    client = APIClient()
    client.force_authenticate(admin_user)
    return client


def test_an_admin_pushes_exports_and_the_job_makes_a_snapshot(api, server, django_capture_on_commit_callbacks):
    response = push(api, django_capture_on_commit_callbacks, license_server=server.pk,
                    files=upload("keypacks_ps51.csv", "issued_ps51.csv"))
    assert response.status_code == 202
    assert response["Location"] == f"/api/v1/imports/{response.json()['id']}/"
    assert response.json()["status"] == "pending"
    job = api.get(response["Location"]).json()
    assert (job["status"], job["progress"], job["dry_run"], job["problems"]) == ("done", 100, False, [])
    snapshot = Snapshot.objects.get()
    assert job["snapshot"] == snapshot.pk and snapshot.sent_by.username == "alice"
    assert job["summary"]["created"] == {"machine": 3, "key_pack": 2, "license": 3}
    assert [f["name"] for f in job["files"]] == ["keypacks_ps51.csv", "issued_ps51.csv"]
    listed = api.get("/api/v1/snapshots/", {"license_server": server.pk}).json()["results"]
    assert [(s["id"], s["import_job"], [f["rows"] for f in s["files"]]) for s in listed] == [
        (snapshot.pk, job["id"], [4, 5])]  # data rows after the header
    assert License.objects.count() == 3


def test_a_file_with_a_problem_imports_nothing_through_the_job(api, server, django_capture_on_commit_callbacks):
    events = AuditEvent.objects.count()
    response = push(api, django_capture_on_commit_callbacks, license_server=server.pk,
                    files=upload("keypacks_ps51.csv", "issued_truncated.csv"))
    assert response.status_code == 202
    job = api.get(response["Location"]).json()
    assert job["status"] == "failed" and job["snapshot"] is None
    assert "nothing was imported" in job["error"]
    assert {"file": "issued_truncated.csv", "line": 4, "column": "", "code": "bad_row"} == {
        k: v for k, v in next(p for p in job["problems"] if p["code"] == "bad_row").items() if k != "detail"}
    assert job["problem_count"] == len(job["problems"]) >= 1
    assert not KeyPack.objects.exists() and not License.objects.exists() and not Snapshot.objects.exists()
    assert AuditEvent.objects.count() == events


def test_a_dry_run_is_the_same_job_and_writes_nothing(api, server, django_capture_on_commit_callbacks):
    response = push(api, django_capture_on_commit_callbacks, license_server=server.pk, dry_run="true",
                    files=upload("keypacks_ps51.csv", "issued_ps51.csv"))
    job = api.get(response["Location"]).json()
    assert (job["status"], job["dry_run"], job["snapshot"]) == ("done", True, None)
    assert job["summary"]["created"] == {"machine": 3, "key_pack": 2, "license": 3}
    assert job["summary"]["outcome"] == "dry run: nothing was written"
    assert not KeyPack.objects.exists() and not Snapshot.objects.exists()


@pytest.mark.parametrize("data, field", [
    ({"files": []}, "files"),
    ({"license_server": 999_999}, "license_server"),
    ({"date_order": "ydm"}, "date_order"),
])
def test_bad_requests_are_400_and_start_nothing(api, server, data, field):
    body = {"license_server": server.pk, "files": upload("keypacks_ps51.csv")} | data
    response = api.post("/api/v1/imports/", body, format="multipart")
    assert response.status_code == 400 and field in response.json()
    assert not ImportJob.objects.exists()


@pytest.mark.parametrize("role_user", ["requester", "auditor"])
def test_only_admins_and_collectors_push(role_user, request, server, file_store):
    client = APIClient()
    client.force_authenticate(request.getfixturevalue(role_user))
    response = client.post("/api/v1/imports/", {"license_server": server.pk, "files": upload("keypacks_ps51.csv")},
                           format="multipart")
    assert response.status_code == 403
    assert not ImportJob.objects.exists()
