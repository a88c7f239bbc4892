"""Reconciliation: each kind of drift appears, is acknowledged, and resolves, snapshot by
snapshot, and every new item is alerted once."""

from datetime import UTC, datetime, timedelta

import pytest
from django.core import mail
from django.core.exceptions import ValidationError
from rest_framework.test import APIClient

from core.errors import DomainError
from core.models import AuditEvent
from licensing.models import (
    DriftItem,
    DriftKind,
    DriftState,
    KeyPack,
    License,
    LicenseEndReason,
    LicenseKind,
    LicenseStatus,
    PerUserIssuance,
    WindowsVersion,
)
from licensing.services.imports import license_server_import
from licensing.services.licenses import license_issue_permanent
from licensing.services.reconciliation import drift_acknowledge
from licensing.tests.exports import issued, issued_csv, key_pack, key_packs_csv
from licensing.tests.factories import KeyPackFactory, LicenseServerFactory, MachineFactory

NOW = datetime.now(UTC)


@pytest.fixture
def server(db):
    return LicenseServerFactory(name="TSLS-19", windows_version=WindowsVersion.WINDOWS_SERVER_2019,
                                builtin_cal_for_pro_clients=False)


def snap(server, *files, actor="system"):
    report = license_server_import(server_name=server.name, files=list(files), actor=actor)
    assert report.committed, [str(p) for p in report.errors]
    return report


def items(kind, **filters):
    return list(DriftItem.objects.filter(kind=kind, **filters).order_by("pk"))


PACK = key_pack(10, 5)


def test_a_pack_missing_on_the_server_opens_is_acknowledged_and_resolves(server, admin_user):
    recorded = KeyPackFactory(license_server=server, key_pack_id=77, product_version=WindowsVersion.WINDOWS_SERVER_2019,
                              total_licenses=20)
    first = snap(server, key_packs_csv(PACK))
    [item] = items(DriftKind.PACK_MISSING_ON_SERVER)
    assert (item.state, item.key_pack, item.first_seen_snapshot_id) == (DriftState.OPEN, recorded, first.snapshot_id)
    assert "Key pack 77 (20 Windows Server 2019 per device CALs) is recorded in the portal but not" in item.detail

    with pytest.raises(ValidationError):
        drift_acknowledge(item=item, actor=admin_user, note="  ")
    drift_acknowledge(item=item, actor=admin_user, note="Reinstalling after the rebuild on Friday.")
    with pytest.raises(DomainError) as refused:
        drift_acknowledge(item=item, actor=admin_user, note="again")
    assert refused.value.code == "invalid_state"

    second = snap(server, key_packs_csv(PACK))  # still missing: still acknowledged, seen again
    item.refresh_from_db()
    assert (item.state, item.last_seen_snapshot_id, item.note) == (
        DriftState.ACKNOWLEDGED, second.snapshot_id, "Reinstalling after the rebuild on Friday.")

    third = snap(server, key_packs_csv(PACK, key_pack(77, 20)))
    item.refresh_from_db()
    assert (item.state, item.resolved_snapshot_id) == (DriftState.RESOLVED, third.snapshot_id)
    assert item.acknowledged_by == admin_user  # who accepted it stays on record
    assert list(AuditEvent.objects.filter(object_type="driftitem").values_list("action", flat=True)) == [
        "drift.opened", "drift.acknowledged", "drift.resolved"]


def test_pack_counts_that_differ_open_and_resolve(server):
    snap(server, key_packs_csv(PACK))
    KeyPack.objects.filter(key_pack_id=10).update(total_licenses=3)
    snap(server, key_packs_csv(key_pack(10, 5, issued=1)))
    [item] = items(DriftKind.PACK_COUNT_MISMATCH)
    assert "TotalLicenses 5 on the server, 3 in the portal" in item.detail
    assert "IssuedLicenses 1 on the server, 0 issued in the portal" in item.detail
    snap(server, key_packs_csv(key_pack(10, 3, issued=0)))
    item.refresh_from_db()
    assert item.state == DriftState.RESOLVED
    assert KeyPack.objects.get(key_pack_id=10).total_licenses == 3  # the purchase record is the portal's


def test_a_cal_the_server_no_longer_lists_is_ended_and_one_it_never_listed_is_reported(server, admin_user):
    snap(server, key_packs_csv(PACK), issued_csv(issued(1, 10, "ws-01"), issued(2, 10, "ws-02")))
    portal_only = license_issue_permanent(machine=MachineFactory(hostname="ws-portal"),
                                          key_pack=KeyPack.objects.get(key_pack_id=10), actor=admin_user)

    later = snap(server, key_packs_csv(PACK), issued_csv(issued(1, 10, "ws-01")))

    gone = License.objects.get(license_id=2)
    assert (gone.status, gone.end_reason) == (LicenseStatus.EXPIRED, LicenseEndReason.ABSENT_ON_SERVER)
    portal_only.refresh_from_db()
    assert portal_only.status == LicenseStatus.ACTIVE  # issued in the portal, never seen: stays, and is reported
    missing = {i.license: i for i in items(DriftKind.LICENSE_MISSING_ON_SERVER)}
    assert set(missing) == {gone, portal_only}
    assert "the portal ended it too" in missing[gone].detail
    assert "has never listed it" in missing[portal_only].detail
    assert later.ended == {"license": 1}

    # The next snapshot: the ended CAL is no longer active, so its item resolves.
    snap(server, key_packs_csv(PACK), issued_csv(issued(1, 10, "ws-01")))
    assert DriftItem.objects.get(license=gone).state == DriftState.RESOLVED
    assert DriftItem.objects.get(license=portal_only).state == DriftState.OPEN


def test_the_server_lists_the_portals_own_cal_under_its_license_id(server, admin_user):
    snap(server, key_packs_csv(PACK))
    mine = license_issue_permanent(machine=MachineFactory(hostname="ws-mine"),
                                   key_pack=KeyPack.objects.get(key_pack_id=10), actor=admin_user)
    snap(server, key_packs_csv(PACK), issued_csv(issued(55, 10, "WS-MINE")))
    mine.refresh_from_db()
    assert (mine.license_id, mine.status) == (55, LicenseStatus.ACTIVE)
    assert License.objects.filter(machine=mine.machine).count() == 1
    assert not items(DriftKind.LICENSE_MISSING_ON_SERVER, state=DriftState.OPEN)


def test_a_transferred_source_still_issued_after_its_expiry(server):
    snap(server, key_packs_csv(PACK), issued_csv(issued(7, 10, "ws-old")))
    License.objects.filter(license_id=7).update(status=LicenseStatus.TRANSFERRED, ended_at=NOW,
                                                end_reason=LicenseEndReason.TRANSFERRED)
    # Before its expiry date the server still lists it: expected (deleting the key does not remove history).
    snap(server, key_packs_csv(PACK), issued_csv(issued(7, 10, "ws-old", expires_at=NOW + timedelta(days=5))))
    assert not items(DriftKind.TRANSFERRED_SOURCE_STILL_ISSUED)
    snap(server, key_packs_csv(PACK), issued_csv(issued(7, 10, "ws-old", issued_at=NOW - timedelta(days=70),
                                                        expires_at=NOW - timedelta(days=1))))
    [item] = items(DriftKind.TRANSFERRED_SOURCE_STILL_ISSUED)
    assert item.license.license_id == 7 and item.state == DriftState.OPEN
    snap(server, key_packs_csv(PACK), issued_csv())
    item.refresh_from_db()
    assert item.state == DriftState.RESOLVED


def test_duplicate_issuance_to_one_host(server):
    report = snap(server, key_packs_csv(key_pack(10, 5, issued=2)),
                  issued_csv(issued(1, 10, "ws-reimaged", hardware="old"),
                             issued(2, 10, "WS-REIMAGED", hardware="new")))
    assert report.skipped_codes["duplicate_issuance"] == 1
    [item] = items(DriftKind.DUPLICATE_ISSUANCE)
    assert item.subject == "host:ws-reimaged|windows_server_2019" and item.machine.hostname == "ws-reimaged"
    assert "lists 2 active Windows Server 2019 per-device CALs for ws-reimaged" in item.detail
    snap(server, key_packs_csv(PACK), issued_csv(issued(1, 10, "ws-reimaged")))
    item.refresh_from_db()
    assert item.state == DriftState.RESOLVED


def test_a_temporary_cal_overdue(server):
    old = NOW - timedelta(days=95)
    snap(server, key_packs_csv(PACK, key_pack(99, 4294967295, key_pack_type=4)),
         issued_csv(issued(30, 99, "ws-temp", status=1, issued_at=old, expires_at=old + timedelta(days=90))))
    [item] = items(DriftKind.TEMPORARY_OVERDUE)
    assert item.subject == "licenseid:30" and item.license.kind == LicenseKind.TEMPORARY
    assert "more than 90 days later" in item.detail
    snap(server, key_packs_csv(PACK), issued_csv())
    item.refresh_from_db()
    assert item.state == DriftState.RESOLVED


def test_per_user_cals_over_allocated(server):
    users = key_pack(20, 1, per_user=True)
    report = snap(server, key_packs_csv(PACK, users), issued_csv(
        issued(40, 20, "", user="CONTOSO\\ann"), issued(41, 20, " ", user="CONTOSO\\bo")))
    assert report.created["per_user_issuance"] == 2 and not License.objects.exists()
    [item] = items(DriftKind.PER_USER_OVER_ALLOCATED)
    assert "lists 2 Windows Server 2019 per-user CALs, but 1 are installed" in item.detail
    snap(server, key_packs_csv(PACK, users), issued_csv(issued(40, 20, "", user="CONTOSO\\ann")))
    item.refresh_from_db()
    assert item.state == DriftState.RESOLVED
    # The one no longer listed keeps its history, with the last snapshot that listed it.
    assert PerUserIssuance.objects.count() == 2


def test_a_snapshot_judges_only_what_it_holds(server):
    KeyPackFactory(license_server=server, key_pack_id=77, product_version=WindowsVersion.WINDOWS_SERVER_2019)
    snap(server, key_packs_csv(PACK))
    [item] = items(DriftKind.PACK_MISSING_ON_SERVER)
    snap(server, issued_csv(issued(1, 10, "ws-01")))  # no key pack export: pack drift is not judged
    item.refresh_from_db()
    assert item.state == DriftState.OPEN


def test_each_new_item_is_alerted_once(server, django_capture_on_commit_callbacks):
    KeyPackFactory(license_server=server, key_pack_id=77, product_version=WindowsVersion.WINDOWS_SERVER_2019)
    KeyPackFactory(license_server=server, key_pack_id=78, product_version=WindowsVersion.WINDOWS_SERVER_2019)
    with django_capture_on_commit_callbacks(execute=True):
        snap(server, key_packs_csv(PACK))
    with django_capture_on_commit_callbacks(execute=True):
        snap(server, key_packs_csv(PACK))  # the same two items, seen again: no new alert
    assert len(mail.outbox) == 1
    assert "2 new drift item(s)" in mail.outbox[0].subject
    assert "Key pack 77" in mail.outbox[0].body and "Key pack 78" in mail.outbox[0].body
    from licensing.alerts import alert_new_drift

    assert alert_new_drift() == 0 and len(mail.outbox) == 1


def test_the_api_lists_filters_and_acknowledges_drift(server, admin_user, auditor):
    KeyPackFactory(license_server=server, key_pack_id=77, product_version=WindowsVersion.WINDOWS_SERVER_2019)
    snap(server, key_packs_csv(PACK))
    item = DriftItem.objects.get()
    client = APIClient()
    client.force_authenticate(auditor)
    body = client.get("/api/v1/drift/", {"kind": "pack_missing_on_server", "state": "open"}).json()
    assert [r["id"] for r in body["results"]] == [item.pk]
    assert set(body["results"][0]) == {"id", "kind", "license_server", "key_pack", "license", "machine", "detail",
                                       "first_seen_snapshot", "last_seen_snapshot", "state", "acknowledged_by", "note"}
    assert client.post(f"/api/v1/drift/{item.pk}/acknowledge/", {"note": "ok"}, format="json").status_code == 403
    client.force_authenticate(admin_user)
    assert client.post(f"/api/v1/drift/{item.pk}/acknowledge/", {}, format="json").status_code == 400
    done = client.post(f"/api/v1/drift/{item.pk}/acknowledge/", {"note": "Known"}, format="json").json()
    assert (done["state"], done["acknowledged_by"], done["note"]) == ("acknowledged", "alice", "Known")
    again = client.post(f"/api/v1/drift/{item.pk}/acknowledge/", {"note": "Known"}, format="json")
    assert again.status_code == 409 and again.json()["code"] == "invalid_state"
    snapshot = client.get(f"/api/v1/snapshots/{item.first_seen_snapshot_id}/").json()
    assert snapshot["files"][0]["name"] == "keypacks.csv" and len(snapshot["files"][0]["sha256"]) == 64


def test_the_reconciliation_page_lists_open_drift_and_acknowledges(client, server, admin_user, requester):
    KeyPackFactory(license_server=server, key_pack_id=77, product_version=WindowsVersion.WINDOWS_SERVER_2019)
    snap(server, key_packs_csv(PACK))
    item = DriftItem.objects.get()
    client.force_login(requester)
    page = client.get("/reconciliation/").content.decode()
    assert "Key pack missing on the server" in page and f"#{item.pk}" in page
    assert client.post(f"/reconciliation/{item.pk}/acknowledge/", {"note": "x"}).status_code == 403
    client.force_login(admin_user)
    assert client.post(f"/reconciliation/{item.pk}/acknowledge/", {"note": ""}).status_code == 400
    response = client.post(f"/reconciliation/{item.pk}/acknowledge/", {"note": "Rebuilt on Friday"})
    assert response.status_code == 302
    item.refresh_from_db()
    assert item.state == DriftState.ACKNOWLEDGED
    link = f'href="/reconciliation/{item.pk}/"'
    assert link not in client.get("/reconciliation/").content.decode()  # open ones by default
    assert link in client.get("/reconciliation/?state=acknowledged").content.decode()
    dashboard = client.get("/").content.decode()
    assert "Open drift" in dashboard
