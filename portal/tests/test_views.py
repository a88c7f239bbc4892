"""Pages shared by everyone: login, logout, the dashboard, and how the lists page and cost."""

import re
from datetime import timedelta

import pytest
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from core.audit import audit_record
from core.lists import decode_cursor, encode_cursor
from core.models import AuditChainHead
from licensing import models as m
from licensing.tests.factories import LicenseFactory, MachineFactory

PAGES = [
    "dashboard", "license-list", "machine-list", "keypack-list", "transfer-list",
    "reissuerequest-list", "audit-list", "csccontact-list", "reports",
]


@pytest.mark.django_db
@pytest.mark.parametrize("name", PAGES + ["transfer-new", "machine-new", "keypack-new"])
def test_pages_redirect_to_login_when_logged_out(client, name):
    url = reverse(name)
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"] == f"{reverse('login')}?next={url}"


@pytest.mark.parametrize("name", PAGES)
@pytest.mark.parametrize("who", ["admin_user", "requester", "auditor"])
def test_every_role_reads_every_list(client, request, name, who, key_pack):
    client.force_login(request.getfixturevalue(who))
    response = client.get(reverse(name))
    assert response.status_code == 200
    assert b"<h1>" in response.content


def test_login_page_and_login(client, admin_user):
    page = client.get(reverse("login"))
    assert page.status_code == 200
    assert b'autocomplete="current-password"' in page.content
    bad = client.post(reverse("login"), {"username": "alice", "password": "wrong"})
    assert b"did not match" in bad.content
    good = client.post(reverse("login"), {"username": "alice", "password": "pw-for-tests-1"})
    assert good.status_code == 302 and good["Location"] == reverse("dashboard")
    assert client.get(reverse("dashboard")).status_code == 200


def test_logout_is_a_post_form_in_the_nav(client, admin_user):
    client.force_login(admin_user)
    page = client.get(reverse("dashboard")).content.decode()
    assert re.search(r'<form method="post" action="/accounts/logout/"', page)
    response = client.post(reverse("logout"))
    assert response.status_code == 302
    assert client.get(reverse("dashboard")).status_code == 302


def test_dashboard_shows_compliance_transfers_expiring_calls_and_chain(client, admin_user, key_pack, machine):
    LicenseFactory(key_pack=key_pack)
    temp_machine = MachineFactory(hostname="ws-temp-01")
    now = timezone.now()
    m.License.objects.create(
        machine=temp_machine, license_server=key_pack.license_server,
        product_version=key_pack.product_version, kind=m.LicenseKind.TEMPORARY,
        issued_at=now - timedelta(days=80), expires_at=now + timedelta(days=10),
    )
    with transaction.atomic():
        audit_record(actor="system", action="audit.verification_failed", object_type="auditevent",
                     object_id="1", summary="The audit trail does not verify: event #1 was altered.")
    client.force_login(admin_user)
    response = client.get(reverse("dashboard"))
    page = response.content.decode()
    assert "TSLS-HQ" in page and "Windows Server 2003" in page
    assert 'aria-label="1 of 5 issued, 4 available"' in page
    assert "ws-temp-01" in page  # expiring within 14 days
    head = AuditChainHead.objects.get(pk=1).last_sequence
    assert f"Chain head: event <strong>#{head}</strong>" in page
    assert "Verification FAILED" in page and "event #1 was altered" in page
    assert "No CSC calls waiting" in page


def test_cursor_round_trip():
    now = timezone.now()
    assert decode_cursor(encode_cursor(now.isoformat(), 7)) == (now.isoformat(), 7)
    assert decode_cursor(encode_cursor("ws-01", 3)) == ("ws-01", 3)


def test_bad_cursor_is_404(client, admin_user):
    client.force_login(admin_user)
    assert client.get(reverse("machine-list") + "?after=%%%").status_code == 404


def _forged(value, pk=1) -> str:
    return encode_cursor(value, pk)


FORGED = [
    # name, sort, value, id: values of the wrong type (or beyond what the database takes) for the sort field
    ("audit-list", "sequence", "x", 1),
    ("audit-list", "-sequence", [1], 1),
    ("audit-list", "sequence", None, 1),
    ("audit-list", "sequence", 10**30, 1),
    ("audit-list", "occurred_at", "yesterday", 1),
    ("audit-list", "occurred_at", 12, 1),
    ("audit-list", "occurred_at", "9999-12-31T23:59:59-12:00", 1),
    ("audit-list", "occurred_at", "2024-01-01T00:00:00+23:59", 1),
    ("audit-list", "sequence", 1, "x"),
    ("audit-list", "sequence", 1, 1e400),
    ("machine-list", "hostname", "a\x00b", 1),
    ("machine-list", "hostname", {"a": 1}, 1),
    ("license-list", "issued_at", True, 1),
    ("license-list", "hostname", 5, 10**30),
    ("keypack-list", "installed_on", "2024-13-01", 1),
    ("keypack-list", "total_licenses", "many", 1),
    ("transfer-list", "requested_at", "x", 1),
    ("reissuerequest-list", "called_at", [], 1),
]


@pytest.mark.parametrize("name, sort, value, pk", FORGED)
@pytest.mark.parametrize("direction", ["after", "before"])
def test_a_forged_cursor_is_404_or_ignored_never_a_server_error(client, admin_user, key_pack, name, sort, value, pk,
                                                                direction):
    # Runs on PostgreSQL too (DATABASE_URL), where a wrong-typed value used to reach the query.
    LicenseFactory(key_pack=key_pack)
    client.force_login(admin_user)
    response = client.get(reverse(name), {"sort": sort, direction: _forged(value, pk)})
    assert response.status_code in (200, 404), response.status_code


def test_the_forged_cursor_from_the_issue_is_404(client, admin_user):
    client.force_login(admin_user)
    assert client.get("/audit/?sort=sequence&after=WyJ4IiwxXQ").status_code == 404
    # A good cursor of the same list still pages.
    assert client.get("/audit/", {"sort": "sequence", "after": _forged(0, 0)}).status_code == 200


def _hostnames(response):
    return re.findall(r'href="/machines/\d+/">([^<]+)</a>', response.content.decode())


def test_keyset_pages_walk_forward_and_back_by_sort_key(client, admin_user):
    for i in range(7):
        MachineFactory(hostname=f"pc-{i:02d}")
    client.force_login(admin_user)
    url = reverse("machine-list")
    first = client.get(url, {"page_size": 3, "sort": "-hostname"})
    assert _hostnames(first) == ["pc-06", "pc-05", "pc-04"]
    next_url = first.context["next_url"]
    assert first.context["previous_url"] is None
    second = client.get(url + next_url)
    assert _hostnames(second) == ["pc-03", "pc-02", "pc-01"]
    third = client.get(url + second.context["next_url"])
    assert _hostnames(third) == ["pc-00"]
    assert third.context["next_url"] is None
    back = client.get(url + third.context["previous_url"])
    assert _hostnames(back) == ["pc-03", "pc-02", "pc-01"]
    assert back.context["next_url"] and back.context["previous_url"]


def test_sort_links_keep_filters_and_flip_direction(client, admin_user):
    MachineFactory(hostname="pc-a")
    client.force_login(admin_user)
    response = client.get(reverse("machine-list"), {"status": "active", "sort": "hostname"})
    columns = {c["key"]: c for c in response.context["columns"]}
    assert columns["hostname"]["direction"] == "ascending"
    assert "sort=-hostname" in columns["hostname"]["url"] and "status=active" in columns["hostname"]["url"]
    assert 'aria-sort="ascending"' in response.content.decode()


@pytest.mark.parametrize("page_size", [5, 40])
def test_license_list_runs_a_fixed_number_of_queries(client, admin_user, key_pack, page_size,
                                                     django_assert_max_num_queries):
    for _ in range(45):
        LicenseFactory(key_pack=key_pack, machine=MachineFactory())
    client.force_login(admin_user)
    client.get(reverse("dashboard"))  # warm the session
    with django_assert_max_num_queries(6):
        response = client.get(reverse("license-list"), {"page_size": page_size, "status": "active",
                                                        "license_server": key_pack.license_server_id})
    assert len(response.context["rows"]) == page_size


@pytest.mark.parametrize("page_size", [5, 40])
def test_machine_list_runs_a_fixed_number_of_queries(client, admin_user, page_size,
                                                     django_assert_max_num_queries):
    for i in range(45):
        MachineFactory(hostname=f"host-{i:03d}")
    client.force_login(admin_user)
    with django_assert_max_num_queries(4):
        response = client.get(reverse("machine-list"), {"page_size": page_size, "q": "host-"})
    assert len(response.context["rows"]) == page_size
    assert response.context["next_url"]


def test_keyset_walks_ties_on_a_datetime_sort_key_without_gaps(client, admin_user, key_pack):
    moment = timezone.now().replace(microsecond=123456)
    expected = []
    for i in range(7):
        issued = moment if i < 4 else moment - timedelta(days=i)
        expected.append((issued, LicenseFactory(key_pack=key_pack, issued_at=issued).pk))
    expected.sort(key=lambda pair: (pair[0], pair[1]), reverse=True)
    client.force_login(admin_user)
    url, seen = reverse("license-list") + "?sort=-issued_at&page_size=2", []
    while url:
        response = client.get(url)
        seen += [lic.pk for lic in response.context["rows"]]
        url = reverse("license-list") + response.context["next_url"] if response.context["next_url"] else None
    assert seen == [pk for _, pk in expected]


@pytest.mark.parametrize("who,sees_import", [("admin_user", True), ("requester", False), ("auditor", False)])
def test_nav_links_the_import_page_for_admins_only(client, request, who, sees_import):
    client.force_login(request.getfixturevalue(who))
    page = client.get(reverse("dashboard")).content.decode()
    assert (f'href="{reverse("import-upload")}"' in page) is sees_import
