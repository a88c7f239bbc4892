"""GET /api/v1/licenses/ byte for byte: the fast path (KeysetQuery pages, rows from values(),
FastJSONRenderer) against DRF's own serializer and renderer, page by page, both directions."""

import pytest
from django.db import connection
from rest_framework.renderers import JSONRenderer

from core.api.renderers import FastJSONRenderer
from core.pagination import KeysetQuery
from licensing import models as m
from licensing.api.serializers import LicenseSerializer
from licensing.services.licenses import license_issue_permanent, license_issue_temporary
from licensing.services.revocations import license_revoke
from licensing.services.transfers import transfer_file
from licensing.tests.factories import KeyPackFactory, LicenseServerFactory, MachineFactory
from portal.tests.api_mixins import api_client

URL = "/api/v1/licenses/"


@pytest.fixture
def licenses(admin_user, key_pack, server):
    """Every shape of row: permanent and temporary, transferable or not, revoked, a non-ASCII host."""
    modern = LicenseServerFactory(name="TSLS-2019", windows_version="windows_server_2019",
                                  builtin_cal_for_pro_clients=False)
    modern_pack = KeyPackFactory(license_server=modern, key_pack_id=19, product_version="windows_server_2019",
                                 total_licenses=20)
    issued = [license_issue_permanent(machine=MachineFactory(), key_pack=key_pack, actor=admin_user)
              for _ in range(3)]
    issued.append(license_issue_permanent(machine=MachineFactory(hostname="büro-ws-7"), key_pack=key_pack,
                                          actor=admin_user))
    issued.append(license_issue_temporary(machine=MachineFactory(), license_server=server,
                                          product_version="windows_server_2003", actor=admin_user))
    revoked = license_issue_permanent(machine=MachineFactory(), key_pack=modern_pack, actor=admin_user)
    license_revoke(license=revoked, actor=admin_user, note="Machine retired")
    transfer_file(license=issued[0], target_machine=MachineFactory(), reason="Replaced", actor=admin_user)
    issued.append(license_issue_permanent(machine=MachineFactory(), key_pack=modern_pack, actor=admin_user))
    return issued


def drf_page(body: dict, ids: list[int]) -> bytes:
    """The page as DRF's serializer and renderer write it, with the links the response gave."""
    by_id = {row.pk: row for row in m.License.objects.filter(pk__in=ids).select_related("machine")}
    results = LicenseSerializer([by_id[pk] for pk in ids], many=True).data
    return JSONRenderer().render({"next": body["next"], "previous": body["previous"], "results": results})


def walk(client, url: str, link: str) -> list[bytes]:
    """Follow ``link`` (next or previous) from ``url`` to the end; each page's bytes checked."""
    pages = []
    while url:
        assert len(pages) < 20, "the links do not end"
        response = client.get(url)
        assert response.status_code == 200, response.content
        body = response.json()
        assert response.content == drf_page(body, [row["id"] for row in body["results"]])
        pages.append(body)
        url = body[link]
    return pages


@pytest.mark.django_db(transaction=True)  # outside a transaction: PostgreSQL runs the prepared statements
def test_unfiltered_pages_are_drf_bytes_forward_and_back(licenses, admin_user):
    client = api_client(admin_user)
    forward = walk(client, f"{URL}?page_size=2", "next")
    ids = [row["id"] for page in forward for row in page["results"]]
    assert ids == list(m.License.objects.order_by("-id").values_list("id", flat=True))
    assert len(forward) == 4 and {row["status"] for page in forward for row in page["results"]} == {
        "active", "revoked"}
    backward = walk(client, forward[-1]["previous"], "previous")
    assert [row["id"] for page in reversed(backward) for row in page["results"]] == ids[:-1]
    # The same pages as the ORM path gives them (a filter every row matches).
    filtered = walk(client, f"{URL}?page_size=2&license_server=&kind__in=permanent,temporary", "next")
    assert [page["results"] for page in filtered] == [page["results"] for page in forward]


@pytest.mark.django_db(transaction=True)
def test_a_connection_that_lost_its_prepared_statements_prepares_them_again(licenses, admin_user):
    client = api_client(admin_user)
    first = client.get(f"{URL}?page_size=3")
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM pg_prepared_statements WHERE name LIKE 'portal_keyset_%%'")
            assert cursor.fetchone()[0] >= 1
            cursor.execute("DEALLOCATE ALL")  # as a connection pooler's DISCARD ALL would
    again = client.get(f"{URL}?page_size=3")
    assert again.status_code == 200 and again.content == first.content


@pytest.mark.django_db
def test_a_forged_cursor_position_is_a_404_not_a_database_error(licenses, admin_user):
    import base64

    for position in (b"abc", b"9" * 40, b"-" + b"9" * 40):
        forged = base64.b64encode(b"p=" + position).decode()
        response = api_client(admin_user).get(URL, {"cursor": forged})
        assert response.status_code == 404, position


def test_keyset_query_refuses_what_it_cannot_answer():
    query = KeysetQuery("test-refusal", m.License.objects.all(), ("id",))
    with pytest.raises(ValueError):
        query.filter(status="active")
    with pytest.raises(ValueError):
        query.filter(id__lt="abc")


@pytest.mark.parametrize("data", [
    {"next": None, "previous": "http://testserver/x?cursor=a%3D", "results": [{"id": 1, "hostname": "büro"}]},
    {"detail": "Line\u2028separator and \u2029 paragraph"},
    [{"nested": [True, False, None, {"deep": "ü€𝄞"}]}, 2 ** 63 - 1, -(2 ** 63)],
])
def test_fast_renderer_writes_drf_bytes(data):
    assert FastJSONRenderer().render(data) == JSONRenderer().render(data)


def test_fast_renderer_leaves_to_drf_what_orjson_cannot_write():
    from datetime import UTC, datetime

    from django.utils.translation import gettext_lazy

    data = {"when": datetime(2024, 1, 15, 9, 30, 12, 123456, tzinfo=UTC), "big": 2 ** 70,
            "lazy": gettext_lazy("Not found.")}
    assert FastJSONRenderer().render(data) == JSONRenderer().render(data)
    assert FastJSONRenderer().render(data, renderer_context={"indent": 2}) == JSONRenderer().render(
        data, renderer_context={"indent": 2})
