"""The audit trail and the compliance numbers through the API."""

from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from core.models import AuditEvent
from licensing.services.licenses import license_issue_permanent, license_issue_temporary
from licensing.tests.factories import KeyPackFactory, LicenseServerFactory, MachineFactory
from portal.tests.api_mixins import APIReadTests, NoUpdateMixin, api_client

AUDIT_FIELDS = {
    "id", "sequence", "occurred_at", "actor", "action", "object_type", "object_id", "summary",
    "data", "prev_hash", "hash",
}
COMPLIANCE_FIELDS = {
    "license_server", "product_version", "installed", "issued", "available", "temporary_active",
    "temporary_expiring_14d", "revoked", "revoke_quota", "per_user_installed", "per_user_issued", "shortfall_on",
}


@pytest.fixture
def issued(machine, key_pack, admin_user):
    return license_issue_permanent(machine=machine, key_pack=key_pack, actor=admin_user)


@pytest.mark.django_db
class TestAuditEventAPI(APIReadTests, NoUpdateMixin):
    basename = "api-auditevent"
    fields = AUDIT_FIELDS

    @pytest.fixture
    def instance(self, issued):
        return AuditEvent.objects.get(action="license.issued")

    def test_post_is_405(self, instance, admin_api):
        assert admin_api.post(self.list_url(), {}, format="json").status_code == 405

    def test_event_shape(self, instance, auditor_api):
        row = auditor_api.get(self.detail_url(instance.pk)).json()
        assert row["actor"] == "alice" and row["object_type"] == "license"
        assert row["data"]["refs"]["machine"] == [instance.data["refs"]["machine"][0]]
        assert len(row["hash"]) == 64 and len(row["prev_hash"]) == 64

    def test_newest_first(self, instance, admin_user, admin_api):
        license_issue_permanent(machine=MachineFactory(), key_pack=KeyPackFactory(), actor=admin_user)
        sequences = [r["sequence"] for r in admin_api.get(self.list_url()).json()["results"]]
        assert sequences == sorted(sequences, reverse=True)

    def test_filters(self, issued, admin_user, requester, admin_api):
        other = MachineFactory(hostname="other-host")
        license_issue_permanent(machine=other, key_pack=issued.key_pack, actor=admin_user)
        api_client().post("/api/v1/auth/token/", {"username": "rita", "password": "pw-for-tests-1"}, format="json")

        def actions(**params):
            response = admin_api.get(self.list_url(), params)
            assert response.status_code == 200, response.content
            return [r["action"] for r in response.json()["results"]]

        assert actions(action="license") == ["license.issued", "license.issued"]
        assert actions(action="auth.token_issued") == ["auth.token_issued"]
        assert actions(object_type="license", object_id=str(issued.pk)) == ["license.issued"]
        assert actions(actor="alice") == ["license.issued", "license.issued"]
        assert actions(actor="nobody-at-all") == []
        future = (timezone.now() + timedelta(days=1)).isoformat()
        assert actions(since=future) == []
        assert len(actions(until=future)) == 3
        assert actions(machine=other.pk) == ["license.issued"]

    @pytest.mark.parametrize(
        "params",
        [{"since": "yesterday"}, {"until": "2024-13-01T00:00:00Z"}, {"machine": "x"},
         {"since": "9999-12-31T23:59:59-12:00"}, {"since": "0001-01-01T00:00:00+14:00"},
         {"actor": "a\x00b"}],
    )
    def test_bad_filters_are_400(self, instance, admin_api, params):
        response = admin_api.get(self.list_url(), params)
        assert response.status_code == 400, response.content
        assert isinstance(response.json(), dict)

    def test_verify(self, instance, auditor_api):
        response = auditor_api.get("/api/v1/audit-events/verify/")
        assert response.status_code == 200
        assert response.json() == {"ok": True, "events": AuditEvent.objects.count(), "first_bad_sequence": None}

    @pytest.mark.postgres
    def test_verify_names_a_tampered_event(self, instance, auditor_api):
        if connection.vendor != "postgresql":
            pytest.skip("the append-only trigger and its switch are PostgreSQL's")
        with connection.cursor() as cursor:
            cursor.execute("ALTER TABLE licensing_auditevent DISABLE TRIGGER audit_event_no_update_delete")
            cursor.execute("UPDATE licensing_auditevent SET summary = 'edited' WHERE id = %s", [instance.pk])
            cursor.execute("ALTER TABLE licensing_auditevent ENABLE TRIGGER audit_event_no_update_delete")
        body = auditor_api.get("/api/v1/audit-events/verify/").json()
        assert body["ok"] is False and body["first_bad_sequence"] == instance.sequence

    def test_verify_needs_login(self):
        assert api_client().get("/api/v1/audit-events/verify/").status_code == 401


@pytest.mark.django_db
class TestComplianceAPI:
    url = "/api/v1/compliance/"

    def test_rows(self, issued, server, admin_user, auditor):
        license_issue_temporary(machine=MachineFactory(), license_server=server,
                                product_version="windows_server_2003", actor=admin_user)
        other = LicenseServerFactory(name="TSLS-OTHER")
        KeyPackFactory(license_server=other, product_version="windows_server_2008", total_licenses=7)
        response = api_client(auditor).get(self.url)
        assert response.status_code == 200
        body = response.json()
        assert body["next"] is None
        rows = {(r["license_server"], r["product_version"]): r for r in body["results"]}
        assert all(set(r) == COMPLIANCE_FIELDS for r in body["results"])
        hq = rows[(server.pk, "windows_server_2003")]
        assert (hq["installed"], hq["issued"], hq["available"]) == (5, 1, 4)
        assert (hq["temporary_active"], hq["temporary_expiring_14d"]) == (1, 0)
        assert (hq["revoked"], hq["revoke_quota"], hq["per_user_installed"], hq["per_user_issued"]) == (0, 1, 0, 0)
        assert hq["shortfall_on"] is None  # 4 seats free, 1 temporary CAL to end
        assert rows[(other.pk, "windows_server_2008")]["installed"] == 7

    def test_filters(self, issued, server, admin_user):
        other = LicenseServerFactory(name="TSLS-OTHER")
        KeyPackFactory(license_server=other, product_version="windows_server_2008")
        client = api_client(admin_user)
        rows = client.get(self.url, {"license_server": other.pk}).json()["results"]
        assert [r["license_server"] for r in rows] == [other.pk]
        rows = client.get(self.url, {"product_version": "windows_server_2003"}).json()["results"]
        assert [r["license_server"] for r in rows] == [server.pk]
        assert client.get(self.url, {"product_version": "os2"}).status_code == 400
        assert client.get(self.url, {"license_server": "abc"}).status_code == 400

    def test_needs_login_and_is_read_only(self, admin_user):
        assert api_client().get(self.url).status_code == 401
        assert api_client(admin_user).post(self.url, {}, format="json").status_code == 405


@pytest.mark.django_db
def test_far_offsets_in_time_filters_are_read_in_utc(issued, admin_user):
    # +23:45 is a valid ISO 8601 offset that PostgreSQL itself would refuse.
    response = api_client(admin_user).get(
        "/api/v1/audit-events/", {"until": "2999-04-21T18:20:54+23:45", "since": "2000-01-01T00:00:00-23:59"}
    )
    assert response.status_code == 200
    assert [r["action"] for r in response.json()["results"]] == ["license.issued"]


@pytest.mark.django_db
def test_audit_list_queries_are_fixed(issued, admin_user, django_assert_num_queries):
    client = api_client(admin_user)
    for _ in range(5):
        license_issue_permanent(machine=MachineFactory(), key_pack=KeyPackFactory(), actor=admin_user)
    with django_assert_num_queries(3):  # token, role, one page of events
        assert len(client.get("/api/v1/audit-events/", {"page_size": 500}).json()["results"]) == 6
