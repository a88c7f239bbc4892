"""No request body over PORTAL_UPLOAD_MAX_MB (core.uploads): 413 before the body is read,
on the upload page and on any API POST; a body of unknown length is stopped at the limit."""

import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import RequestFactory
from django.test.client import MULTIPART_CONTENT, encode_multipart
from django.urls import reverse

from core.models import AuditEvent
from core.uploads import UploadLimitHandler, UploadLimitMiddleware, UploadTooLarge
from inventory.models import ClientMachine

pytestmark = pytest.mark.django_db
MB = 1024 * 1024


class Unreadable(io.RawIOBase):
    """A request body that fails the test if anything reads it."""

    def read(self, *args, **kwargs):
        raise AssertionError("the body was read")

    readline = read


@pytest.fixture
def import_root(file_store):
    return file_store / "imports"


def test_a_declared_length_over_the_limit_is_413_on_the_upload_page_without_reading(client, admin_user,
                                                                                     import_root):
    client.force_login(admin_user)
    events = AuditEvent.objects.count()
    response = client.generic("POST", reverse("import-upload"), b"", content_type=MULTIPART_CONTENT,
                              CONTENT_LENGTH=str(513 * MB), **{"wsgi.input": Unreadable()})
    assert response.status_code == 413
    assert response["Content-Type"].startswith("text/html")
    assert b"larger than 512 MB" in response.content
    assert not any(import_root.rglob("*.csv"))
    assert AuditEvent.objects.count() == events


def test_a_declared_length_over_the_limit_is_413_json_on_the_api(client, admin_user):
    client.force_login(admin_user)
    response = client.generic("POST", "/api/v1/machines/", b"", content_type="application/json",
                              CONTENT_LENGTH=str(600 * MB), **{"wsgi.input": Unreadable()})
    assert response.status_code == 413
    assert response.json() == {"detail": "The upload is larger than 512 MB, the most the portal accepts "
                                         "(PORTAL_UPLOAD_MAX_MB). Nothing was saved."}
    assert not ClientMachine.objects.exists()


def test_a_real_upload_over_a_lowered_limit_is_refused_and_saves_nothing(client, admin_user, server, settings,
                                                                         import_root):
    settings.PORTAL_UPLOAD_MAX_MB = 1
    client.force_login(admin_user)
    big = SimpleUploadedFile("issued.csv", b"x" * (MB + 10), content_type="text/csv")
    response = client.post(reverse("import-upload"), {"server": server.pk, "date_order": "mdy", "files": [big]})
    assert response.status_code == 413
    assert not any(import_root.rglob("*"))
    small = SimpleUploadedFile("issued.csv", b"x" * 100, content_type="text/csv")
    assert client.post(reverse("import-upload"), {"server": server.pk, "date_order": "mdy",
                                                  "files": [small]}).status_code in (200, 302)


def test_a_body_longer_than_it_says_is_stopped_at_the_limit(settings):
    # A server that hands over a body of unknown length: the upload handler counts the bytes.
    settings.PORTAL_UPLOAD_MAX_MB = 1
    body = encode_multipart("BoUnDaRy", {"files": SimpleUploadedFile("a.csv", b"y" * (3 * MB))})

    class Counting(io.BytesIO):
        taken = 0

        def read(self, size=-1):
            chunk = super().read(size)
            Counting.taken += len(chunk)
            return chunk

    request = RequestFactory().post("/imports/", body, content_type="multipart/form-data; boundary=BoUnDaRy")
    request._stream = Counting(body)  # more than CONTENT_LENGTH allows
    request.META["CONTENT_LENGTH"] = "100"
    response = UploadLimitMiddleware(lambda r: None).process_view(request, None, (), {})
    assert response.status_code == 413
    assert Counting.taken < 2 * MB, "reading stopped soon after the limit"


def test_the_handler_counts_every_file_of_a_request(settings):
    settings.PORTAL_UPLOAD_MAX_MB = 1
    handler = UploadLimitHandler()
    handler.receive_data_chunk(b"a" * (MB // 2), 0)
    handler.new_file("files", "b.csv", "text/csv", None)
    handler.receive_data_chunk(b"b" * (MB // 2), 0)
    with pytest.raises(UploadTooLarge):
        handler.receive_data_chunk(b"c", MB // 2)


def test_the_handler_comes_first(settings):
    assert settings.FILE_UPLOAD_HANDLERS[0] == "core.uploads.UploadLimitHandler"
