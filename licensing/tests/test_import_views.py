"""The upload page: admins upload, preview (a dry run) and confirm; other roles get 403."""

from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from core.models import AuditEvent
from licensing.models import ImportJob, KeyPack, License, Snapshot

FILES = Path(__file__).parent / "import_files"


def upload(*names):
    return [SimpleUploadedFile(name, (FILES / name).read_bytes(), content_type="text/csv") for name in names]


@pytest.fixture
def import_root(file_store):
    return file_store / "imports"


def post_upload(client, server, *names, capture):
    with capture(execute=True):
        return client.post(reverse("import-upload"), {
            "server": server.pk, "date_order": "mdy", "files": upload(*names),
        })


def test_admin_uploads_previews_and_confirms(client, admin_user, server, import_root,
                                             django_capture_on_commit_callbacks):
    client.force_login(admin_user)
    assert client.get(reverse("import-upload")).status_code == 200

    response = post_upload(client, server, "keypacks_ps51_utf16.csv", "issued_ps51.csv",
                           capture=django_capture_on_commit_callbacks)
    assert response.status_code == 302
    preview = ImportJob.objects.get()
    assert response["Location"] == reverse("import-job", args=[preview.pk])
    assert (preview.dry_run, preview.status, preview.requested_by) == (True, "done", admin_user)
    page = client.get(response["Location"]).content.decode()
    assert "This was a preview: nothing has been written" in page
    assert "create key pack 4: 5 per device CALs, Windows Server 2003, select" in page
    assert "keypacks_ps51_utf16.csv" in page and preview.summary["files"][0]["sha256"][:12] in page
    assert not KeyPack.objects.exists() and not Snapshot.objects.exists()
    assert not AuditEvent.objects.filter(action__startswith="import.").exists()

    with django_capture_on_commit_callbacks(execute=True):
        result = client.post(reverse("import-confirm", args=[preview.pk]))
    job = ImportJob.objects.exclude(pk=preview.pk).get()
    assert result.status_code == 302 and result["Location"] == reverse("import-job", args=[job.pk])
    assert (job.dry_run, job.status, job.preview_of) == (False, "done", preview)
    assert License.objects.count() == 3
    snapshot = Snapshot.objects.get()
    assert (snapshot.import_job, snapshot.sent_by) == (job, admin_user)
    assert AuditEvent.objects.get(action="import.completed").actor == "alice"
    history = client.get(reverse("import-upload")).content.decode()
    assert f"#{snapshot.pk}" in history and snapshot.files[1]["sha256"][:12] in history
    # A preview is confirmed once.
    assert "Import these files" not in client.get(reverse("import-job", args=[preview.pk])).content.decode()
    again = client.post(reverse("import-confirm", args=[preview.pk]), follow=True)
    assert "This preview has been imported already" in again.content.decode()
    assert ImportJob.objects.count() == 2


def test_preview_with_problems_offers_no_import(client, admin_user, server, import_root,
                                                django_capture_on_commit_callbacks):
    client.force_login(admin_user)
    response = post_upload(client, server, "keypacks_ps51.csv", "random.txt",
                           capture=django_capture_on_commit_callbacks)
    page = client.get(response["Location"]).content.decode()
    assert "Nothing can be imported while the files have problems" in page
    assert "Not an export of Win32_TSLicenseKeyPack or Win32_TSIssuedLicense" in page
    assert "Import these files" not in page
    preview = ImportJob.objects.get()
    refused = client.post(reverse("import-confirm", args=[preview.pk]), follow=True)
    assert "Only a finished preview without problems can be imported" in refused.content.decode()
    assert ImportJob.objects.count() == 1 and not KeyPack.objects.exists()


@pytest.mark.parametrize("role_user", ["requester", "auditor"])
def test_other_roles_are_refused(client, role_user, request, server, import_root, admin_user,
                                 django_capture_on_commit_callbacks):
    client.force_login(admin_user)
    post_upload(client, server, "keypacks_ps51.csv", capture=django_capture_on_commit_callbacks)
    preview = ImportJob.objects.get()
    client.force_login(request.getfixturevalue(role_user))
    assert client.get(reverse("import-upload")).status_code == 403
    assert client.post(reverse("import-upload"), {"server": server.pk}).status_code == 403
    assert client.get(reverse("import-job", args=[preview.pk])).status_code == 403
    assert client.post(reverse("import-confirm", args=[preview.pk])).status_code == 403
    assert ImportJob.objects.count() == 1 and not KeyPack.objects.exists()
    assert client.get(reverse("import-job", args=[preview.pk + 100])).status_code == 403
