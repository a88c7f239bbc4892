import pytest

from licensing.models import KeyPack, ReissueRequest, TransferStatus
from licensing.services.licenses import license_issue_permanent
from licensing.services.reissue import reissue_log_call
from licensing.services.transfers import transfer_approve, transfer_confirm_removal, transfer_file
from licensing.tests.factories import CscContactFactory, MachineFactory
from portal.tests.api_mixins import (
    APIReadTests,
    CreateMixin,
    NoUpdateMixin,
    RequesterCannotCreateMixin,
    api_client,
    audit_count,
)

REISSUE_FIELDS = {
    "id", "called_at", "csc_location", "csc_phone_number", "representative", "confirmation_number",
    "channel", "license_server", "product_version", "license_program", "agreement_number",
    "quantity_requested", "quantity_granted", "transfers", "status", "logged_by", "notes", "key_pack",
}


@pytest.fixture
def ready_transfer(machine, key_pack, admin_user, second_admin):
    """A transfer whose removal is confirmed, ready to go on a CSC call."""
    license = license_issue_permanent(machine=machine, key_pack=key_pack, actor=admin_user)
    transfer = transfer_file(license=license, target_machine=MachineFactory(), reason="Replaced",
                             actor=admin_user)
    transfer_approve(transfer=transfer, actor=second_admin)
    return transfer_confirm_removal(transfer=transfer, actor=admin_user, method="registry_key_deleted")


@pytest.fixture
def call(ready_transfer, server, admin_user):
    return reissue_log_call(
        actor=admin_user, called_at="2004-05-03T10:00:00Z", license_server=server,
        product_version="windows_server_2003", license_program="select", quantity_requested=1,
        transfers=[ready_transfer], csc_location="North America", csc_phone_number="+1 888 571 2048",
    )


def action_url(pk, name):
    return f"/api/v1/reissue-requests/{pk}/{name}/"


@pytest.mark.django_db
class TestReissueRequestAPI(APIReadTests, CreateMixin, RequesterCannotCreateMixin, NoUpdateMixin):
    basename = "api-reissuerequest"
    fields = REISSUE_FIELDS

    @pytest.fixture
    def instance(self, call):
        return call

    @pytest.fixture
    def create_data(self, ready_transfer, server):
        return {
            "called_at": "2004-05-03T10:00:00Z", "csc_location": "North America",
            "csc_phone_number": "+1 888 571 2048", "representative": "Pat",
            "confirmation_number": "C-123", "license_server": server.pk,
            "product_version": "windows_server_2003", "license_program": "select",
            "quantity_requested": 1, "transfers": [ready_transfer.pk], "notes": "First call",
        }

    def check_created(self, row, data):
        data = {k: v for k, v in data.items() if k != "called_at"}
        super().check_created(row, data)
        assert row["called_at"].startswith("2004-05-03T10:00:00")
        assert (row["channel"], row["status"], row["logged_by"]) == ("telephone", "open", "alice")
        assert row["key_pack"] is None and row["quantity_granted"] is None

    def test_created_call_moves_transfers(self, create_data, ready_transfer, admin_api):
        assert admin_api.post(self.list_url(), create_data, format="json").status_code == 201
        ready_transfer.refresh_from_db()
        assert ready_transfer.status == TransferStatus.AWAITING_REISSUE

    def test_csc_contact_fills_location_and_number(self, create_data, admin_api):
        contact = CscContactFactory(location="Europe", phone_number="+353 1 706 5555")
        body = {k: v for k, v in create_data.items() if k not in ("csc_location", "csc_phone_number")}
        response = admin_api.post(self.list_url(), {**body, "csc_contact": contact.pk}, format="json")
        assert response.status_code == 201, response.content
        assert (response.json()["csc_location"], response.json()["csc_phone_number"]) == (
            "Europe", "+353 1 706 5555")

    def test_no_location_and_no_contact_is_400(self, create_data, admin_api):
        body = {k: v for k, v in create_data.items() if k != "csc_location"}
        response = admin_api.post(self.list_url(), body, format="json")
        assert response.status_code == 400
        assert "csc_location" in response.json()

    @pytest.mark.parametrize("transfers", [[987654], ["x"], "1", [None]])
    def test_unknown_transfers_are_400(self, create_data, admin_api, transfers):
        before = audit_count()
        response = admin_api.post(self.list_url(), {**create_data, "transfers": transfers}, format="json")
        assert response.status_code == 400
        assert "transfers" in response.json()
        assert audit_count() == before and not ReissueRequest.objects.exists()

    def test_duplicate_transfers_are_400(self, create_data, ready_transfer, admin_api):
        body = {**create_data, "transfers": [ready_transfer.pk, ready_transfer.pk], "quantity_requested": 2}
        response = admin_api.post(self.list_url(), body, format="json")
        assert response.status_code == 400
        assert "transfers" in response.json()

    def test_quantity_below_transfers_is_400(self, create_data, admin_api):
        response = admin_api.post(self.list_url(), {**create_data, "quantity_requested": 0}, format="json")
        assert response.status_code == 400

    def test_install(self, call, ready_transfer, admin_api):
        response = admin_api.post(
            action_url(call.pk, "install"),
            {"key_pack_id": 777, "total_licenses": 2, "installed_on": "2004-05-10"},
            format="json",
        )
        assert response.status_code == 200, response.content
        row = response.json()
        pack = KeyPack.objects.get(reissue_request=call)
        assert (row["status"], row["quantity_granted"], row["key_pack"]) == ("fulfilled", 2, pack.pk)
        assert row["transfers"] == [ready_transfer.pk]
        ready_transfer.refresh_from_db()
        assert ready_transfer.status == TransferStatus.COMPLETED

    def test_install_bad_bodies_are_400(self, call, admin_api):
        for body in ({}, {"key_pack_id": 1, "total_licenses": 0}, {"key_pack_id": -1, "total_licenses": 2},
                     {"key_pack_id": 1, "total_licenses": 2, "installed_on": "2004-02-30"}):
            response = admin_api.post(action_url(call.pk, "install"), body, format="json")
            assert response.status_code == 400, body
        call.refresh_from_db()
        assert call.status == "open"

    def test_deny_needs_a_note_and_returns_transfers(self, call, ready_transfer, admin_api):
        assert admin_api.post(action_url(call.pk, "deny"), {}, format="json").status_code == 400
        response = admin_api.post(action_url(call.pk, "deny"), {"note": "No proof"}, format="json")
        assert response.status_code == 200
        assert response.json()["status"] == "denied"
        ready_transfer.refresh_from_db()
        assert ready_transfer.status == TransferStatus.REMOVAL_CONFIRMED

    def test_cancel(self, call, admin_api):
        response = admin_api.post(action_url(call.pk, "cancel"), format="json")
        assert response.status_code == 200
        assert response.json()["status"] == "cancelled"

    @pytest.mark.parametrize("name", ["install", "deny", "cancel"])
    def test_actions_are_for_admins(self, call, requester, auditor, name):
        for user in (requester, auditor):
            response = api_client(user).post(
                action_url(call.pk, name), {"key_pack_id": 1, "total_licenses": 1, "note": "x"}, format="json"
            )
            assert response.status_code == 403
        call.refresh_from_db()
        assert call.status == "open"


@pytest.mark.django_db
def test_list_queries_are_fixed(call, server, admin_user, django_assert_num_queries):
    client = api_client(admin_user)
    with django_assert_num_queries(4):  # token, role, calls with their key packs, covered transfers
        assert len(client.get("/api/v1/reissue-requests/").json()["results"]) == 1
    for n in range(4):
        reissue_log_call(
            actor=admin_user, called_at="2004-05-04T10:00:00Z", license_server=server,
            product_version="windows_server_2003", license_program="select", quantity_requested=1,
            csc_location=f"Loc {n}", csc_phone_number="1",
        )
    with django_assert_num_queries(4):
        assert len(client.get("/api/v1/reissue-requests/").json()["results"]) == 5
