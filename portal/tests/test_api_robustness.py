"""Bad input of every kind is a 4xx with a JSON body, never a server error, and changes nothing."""

import base64

import pytest

from core.models import AuditEvent
from portal.tests.api_mixins import api_client


@pytest.fixture
def alice(admin_user):
    return api_client(admin_user)


def post_raw(client, url, body: bytes, content_type="application/json"):
    return client.generic("POST", url, body, content_type=content_type)


WRITE_URLS = [
    "/api/v1/machines/", "/api/v1/license-servers/", "/api/v1/key-packs/", "/api/v1/licenses/",
    "/api/v1/transfers/", "/api/v1/reissue-requests/", "/api/v1/csc-contacts/",
]


@pytest.mark.django_db
@pytest.mark.parametrize("url", WRITE_URLS)
@pytest.mark.parametrize(
    "body",
    [b"{not json", b"", b"[]", b"42", b'"text"', b"null", b'{"a": NaN}', b"1" * 5000, b"\xff\xfe"],
    ids=["malformed", "empty", "list", "number", "string", "null", "nan", "huge-literal", "not-utf8"],
)
def test_bodies_that_are_not_objects_are_400(alice, url, body):
    before = AuditEvent.objects.count()
    response = post_raw(alice, url, body)
    assert response.status_code == 400, response.content
    assert isinstance(response.json(), dict)
    assert AuditEvent.objects.count() == before


@pytest.mark.django_db
@pytest.mark.parametrize(
    "url, body, field",
    [
        ("/api/v1/machines/", {"hostname": "ws-1", "os_edition": "windows_7", "notes": "a\x00b"}, "notes"),
        ("/api/v1/license-servers/", {"name": "a\x00", "windows_version": "windows_server_2003"}, "name"),
        ("/api/v1/csc-contacts/", {"location": "x", "phone_number": "1\x002"}, "phone_number"),
        ("/api/v1/machines/", {"hostname": "ws-1", "os_edition": "os/2"}, "os_edition"),
        ("/api/v1/machines/", {"hostname": "x" * 300, "os_edition": "windows_7"}, "hostname"),
        ("/api/v1/license-servers/", {"name": "s", "windows_version": 7}, "windows_version"),
        ("/api/v1/license-servers/", {"name": "s", "windows_version": "windows_server_2003",
                                      "builtin_cal_for_pro_clients": "perhaps"}, "builtin_cal_for_pro_clients"),
        ("/api/v1/licenses/", {"machine": 10**30, "key_pack": 1}, "machine"),
        ("/api/v1/licenses/", {"machine": True, "key_pack": 1}, "machine"),
        ("/api/v1/licenses/", {"machine": [1], "key_pack": 1}, "machine"),
        ("/api/v1/transfers/", {"license": -1, "target_machine": 1, "reason": "r"}, "license"),
        ("/api/v1/reissue-requests/", {"called_at": "yesterday"}, "called_at"),
        ("/api/v1/reissue-requests/", {"called_at": "9999-12-31T23:59:59-12:00"}, "called_at"),
        ("/api/v1/reissue-requests/", {"quantity_requested": 10**40}, "quantity_requested"),
        ("/api/v1/reissue-requests/", {"transfers": {"a": 1}}, "transfers"),
    ],
)
def test_bad_fields_are_400_field_errors(alice, machine, server, url, body, field):
    before = AuditEvent.objects.count()
    response = alice.post(url, body, format="json")
    assert response.status_code == 400, response.content
    assert field in response.json()
    assert AuditEvent.objects.count() == before


@pytest.mark.django_db
@pytest.mark.parametrize(
    "body",
    [{"installed_on": "2004-13-01"}, {"expires_on": "not a date"}, {"total_licenses": 0},
     {"total_licenses": -3}, {"key_pack_id": 2**64}],
)
def test_bad_key_pack_values_are_400(alice, key_pack, body):
    response = alice.patch(f"/api/v1/key-packs/{key_pack.pk}/", body, format="json")
    assert response.status_code == 400, response.content
    key_pack.refresh_from_db()
    assert key_pack.total_licenses == 5


@pytest.mark.django_db
def test_lone_surrogates_are_400(alice):
    body = b'{"hostname": "ws-1", "os_edition": "windows_7", "owner": "\\ud800"}'
    response = post_raw(alice, "/api/v1/machines/", body)
    assert response.status_code == 400
    assert "owner" in response.json()


@pytest.mark.django_db
def test_a_key_pack_stays_on_its_server(alice, key_pack):
    other = alice.post("/api/v1/license-servers/", {"name": "other", "windows_version": "windows_server_2003"},
                       format="json").json()
    response = alice.patch(f"/api/v1/key-packs/{key_pack.pk}/", {"license_server": other["id"]}, format="json")
    assert response.status_code == 200
    assert response.json()["license_server"] == key_pack.license_server_id


@pytest.mark.django_db
@pytest.mark.parametrize("raw", ["p=abc", "p=1.5", "p=\x00", "p=" + "9" * 40, "o=99999999", "r=1&p=1"])
def test_forged_cursors_are_404(alice, key_pack, raw):
    cursor = base64.b64encode(raw.encode()).decode()
    for url in ("/api/v1/licenses/", "/api/v1/audit-events/", "/api/v1/key-packs/"):
        response = alice.get(url, {"cursor": cursor})
        assert response.status_code in (200, 404), (url, raw)
        assert isinstance(response.json(), dict)


@pytest.mark.django_db
@pytest.mark.parametrize("page_size", ["", "-1", "0", "abc", "1e3", "99999999999999999999999", "\x00"])
def test_page_size_garbage_is_ignored(alice, key_pack, page_size):
    response = alice.get("/api/v1/key-packs/", {"page_size": page_size})
    assert response.status_code == 200
    assert "results" in response.json()


@pytest.mark.django_db
@pytest.mark.parametrize("url", ["/api/v1/machines/99999999999999999999999999/", "/api/v1/machines/abc/",
                                 "/api/v1/transfers/99999999999999999999/approve/"])
def test_odd_ids_in_paths_are_404(alice, url):
    response = alice.get(url) if "approve" not in url else alice.post(url, {}, format="json")
    assert response.status_code == 404


@pytest.mark.django_db
@pytest.mark.parametrize(
    "url, params",
    [("/api/v1/licenses/", {"q": "a\x00"}), ("/api/v1/licenses/", {"machine": 10**30}),
     ("/api/v1/licenses/", {"issued_after": "2004-02-30"}), ("/api/v1/transfers/", {"status": "lost"}),
     ("/api/v1/audit-events/", {"key_pack": "NaN"}), ("/api/v1/machines/", {"hostname": "\x00"})],
)
def test_bad_filters_are_400(alice, url, params):
    response = alice.get(url, params)
    assert response.status_code == 400, response.content
    assert set(response.json()) <= set(params) | {"non_field_errors"}


@pytest.mark.django_db
def test_huge_search_numbers_find_nothing(alice, key_pack):
    for url in ("/api/v1/licenses/", "/api/v1/key-packs/", "/api/v1/transfers/", "/api/v1/reissue-requests/"):
        response = alice.get(url, {"q": "9" * 30})
        assert response.status_code == 200, url
        assert response.json()["results"] == []
