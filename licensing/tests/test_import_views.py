"""The upload page: admins upload, preview (a dry run) and confirm; other roles get 403."""

from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from core.files import import_storage
from core.models import AuditEvent
from licensing.models import KeyPack, License

FILES = Path(__file__).parent / "import_files"


def upload(*names):
    return [SimpleUploadedFile(name, (FILES / name).read_bytes(), content_type="text/csv") for name in names]


@pytest.fixture
def import_root(file_store):
    return file_store / "imports"


def test_admin_uploads_previews_and_confirms(client, admin_user, server, import_root):
    client.force_login(admin_user)
    assert client.get(reverse("import-upload")).status_code == 200

    response = client.post(reverse("import-upload"), {
        "server": server.pk, "date_order": "mdy",
        "files": upload("keypacks_ps51_utf16.csv", "issued_ps51.csv"),
    })
    assert response.status_code == 302
    preview = client.get(response["Location"])
    assert preview.status_code == 200
    page = preview.content.decode()
    assert "This is a dry run" in page
    assert "create key pack 4: 5 per device CALs, Windows Server 2003, select" in page
    assert "Key pack 2 skipped: it is the built-in pack" in page
    assert not KeyPack.objects.exists()
    assert not AuditEvent.objects.filter(action__startswith="import.").exists()

    token = response["Location"].rstrip("/").rsplit("/", 1)[-1]
    result = client.post(reverse("import-confirm", kwargs={"token": token}))
    assert result.status_code == 200
    assert "Imported" in result.content.decode()
    assert License.objects.count() == 3
    assert AuditEvent.objects.get(action="import.completed").actor == "alice"
    assert import_storage().listdir(token)[1] == []  # the uploaded files are gone


def test_preview_with_errors_offers_no_import(client, admin_user, server, import_root):
    client.force_login(admin_user)
    response = client.post(reverse("import-upload"), {
        "server": server.pk, "date_order": "mdy",
        "files": upload("keypacks_ps51.csv", "random.txt"),
    })
    page = client.get(response["Location"]).content.decode()
    assert "Nothing can be imported while the files have errors" in page
    assert "Not an export of Win32_TSLicenseKeyPack or Win32_TSIssuedLicense" in page
    assert "/confirm/" not in page
    token = response["Location"].rstrip("/").rsplit("/", 1)[-1]
    refused = client.post(reverse("import-confirm", kwargs={"token": token}))
    assert refused.status_code == 409
    assert not KeyPack.objects.exists()


@pytest.mark.parametrize("role_user", ["requester", "auditor"])
def test_other_roles_are_refused(client, role_user, request, server, import_root, admin_user):
    client.force_login(admin_user)
    token = client.post(reverse("import-upload"), {
        "server": server.pk, "date_order": "mdy", "files": upload("keypacks_ps51.csv"),
    })["Location"].rstrip("/").rsplit("/", 1)[-1]
    client.force_login(request.getfixturevalue(role_user))
    assert client.get(reverse("import-upload")).status_code == 403
    assert client.get(reverse("import-preview", kwargs={"token": token})).status_code == 403
    assert client.post(reverse("import-confirm", kwargs={"token": token})).status_code == 403
    assert not KeyPack.objects.exists()


def test_an_upload_belongs_to_its_uploader(client, admin_user, second_admin, server, import_root):
    client.force_login(admin_user)
    token = client.post(reverse("import-upload"), {
        "server": server.pk, "date_order": "mdy", "files": upload("keypacks_ps51.csv"),
    })["Location"].rstrip("/").rsplit("/", 1)[-1]
    client.force_login(second_admin)
    assert client.get(reverse("import-preview", kwargs={"token": token})).status_code == 404
    assert client.get("/imports/..%2Fetc/").status_code == 404
