import pytest

from licensing.models import TransferRequest, TransferStatus
from licensing.services.licenses import license_issue_permanent
from licensing.services.transfers import transfer_approve, transfer_file
from licensing.tests.factories import MachineFactory
from portal.tests.api_mixins import APIReadTests, CreateMixin, NoUpdateMixin, api_client, audit_count

TRANSFER_FIELDS = {
    "id", "license", "source_machine", "target_machine", "reason", "status", "requested_by",
    "requested_at", "approved_by", "approved_at", "removal_method", "removal_confirmed_by",
    "removal_confirmed_at", "reissue_request", "resulting_license", "completed_at", "decision_note",
}


@pytest.fixture
def license(machine, key_pack, admin_user):
    return license_issue_permanent(machine=machine, key_pack=key_pack, actor=admin_user)


@pytest.fixture
def target(db):
    return MachineFactory(hostname="ws-target-01")


@pytest.fixture
def transfer(license, target, admin_user):
    return transfer_file(license=license, target_machine=target, reason="Replaced", actor=admin_user)


def action_url(pk, name):
    return f"/api/v1/transfers/{pk}/{name}/"


@pytest.mark.django_db
class TestTransferAPI(APIReadTests, CreateMixin, NoUpdateMixin):
    basename = "api-transfer"
    fields = TRANSFER_FIELDS

    @pytest.fixture
    def instance(self, transfer):
        return transfer

    @pytest.fixture
    def create_data(self, license, target):
        return {"license": license.pk, "target_machine": target.pk, "reason": "Hardware refresh"}

    def check_created(self, row, data):
        super().check_created(row, data)
        assert row["status"] == "requested"
        assert row["requested_by"] == "alice"
        assert row["source_machine"] == TransferRequest.objects.get(pk=row["id"]).license.machine_id
        assert row["approved_by"] is None and row["resulting_license"] is None

    def test_requester_files_and_cancels_own(self, create_data, requester_api):
        response = requester_api.post(self.list_url(), create_data, format="json")
        assert response.status_code == 201, response.content
        assert response.json()["requested_by"] == "rita"
        pk = response.json()["id"]
        response = requester_api.post(action_url(pk, "cancel"), {}, format="json")
        assert response.status_code == 200
        assert response.json()["status"] == "cancelled"

    def test_requester_cannot_cancel_anothers(self, transfer, requester_api):
        before = audit_count()
        response = requester_api.post(action_url(transfer.pk, "cancel"), {}, format="json")
        assert response.status_code == 403
        assert "they filed" in response.json()["detail"]
        transfer.refresh_from_db()
        assert transfer.status == TransferStatus.REQUESTED
        assert audit_count() == before

    @pytest.mark.parametrize("name", ["approve", "reject", "confirm-removal"])
    def test_requester_and_auditor_cannot_decide(self, transfer, requester, auditor, name):
        for user in (requester, auditor):
            response = api_client(user).post(action_url(transfer.pk, name), {"note": "x"}, format="json")
            assert response.status_code == 403
        transfer.refresh_from_db()
        assert transfer.status == TransferStatus.REQUESTED

    def test_auditor_cannot_cancel(self, transfer, auditor_api):
        assert auditor_api.post(action_url(transfer.pk, "cancel"), {}, format="json").status_code == 403

    def test_approve_then_confirm_removal(self, transfer, second_admin, admin_api):
        bob = api_client(second_admin)
        response = bob.post(action_url(transfer.pk, "approve"), {"note": "OK"}, format="json")
        assert response.status_code == 200, response.content
        row = response.json()
        assert (row["status"], row["approved_by"], row["decision_note"]) == ("approved", "bob", "OK")
        assert row["approved_at"]
        response = admin_api.post(
            action_url(transfer.pk, "confirm-removal"), {"method": "registry_key_deleted"}, format="json"
        )
        assert response.status_code == 200, response.content
        row = response.json()
        assert row["status"] == "removal_confirmed"
        assert (row["removal_method"], row["removal_confirmed_by"]) == ("registry_key_deleted", "alice")

    def test_approve_without_body(self, transfer, second_admin):
        response = api_client(second_admin).post(action_url(transfer.pk, "approve"))
        assert response.status_code == 200
        assert response.json()["status"] == "approved"

    def test_reject_needs_a_note(self, transfer, second_admin):
        bob = api_client(second_admin)
        response = bob.post(action_url(transfer.pk, "reject"), {}, format="json")
        assert response.status_code == 400
        assert "note" in response.json()
        response = bob.post(action_url(transfer.pk, "reject"), {"note": "Not needed"}, format="json")
        assert response.status_code == 200
        assert response.json()["status"] == "rejected"

    def test_bad_removal_method_is_400(self, transfer, second_admin, admin_user, admin_api):
        transfer_approve(transfer=transfer, actor=second_admin)
        response = admin_api.post(action_url(transfer.pk, "confirm-removal"), {"method": "shrug"}, format="json")
        assert response.status_code == 400
        assert "method" in response.json()

    def test_action_on_unknown_transfer_is_404(self, admin_api):
        assert admin_api.post(action_url(424242, "approve"), {}, format="json").status_code == 404

    def test_unknown_license_or_target_is_400(self, create_data, admin_api):
        before = audit_count()
        for field in ("license", "target_machine"):
            response = admin_api.post(self.list_url(), {**create_data, field: 987654}, format="json")
            assert response.status_code == 400
            assert field in response.json()
        assert not TransferRequest.objects.exists()
        assert audit_count() == before

    def test_filters(self, transfer, admin_api):
        def ids(**params):
            return [r["id"] for r in admin_api.get(self.list_url(), params).json()["results"]]

        assert ids(status="requested") == [transfer.pk]
        assert ids(status="completed") == []
        assert ids(requested_by="alice") == [transfer.pk]
        assert ids(target_machine=transfer.target_machine_id) == [transfer.pk]


@pytest.mark.django_db
@pytest.mark.parametrize("count", [1, 5])
def test_list_queries_are_fixed(key_pack, admin_user, second_admin, django_assert_num_queries, count):
    for _ in range(count):
        license = license_issue_permanent(machine=MachineFactory(), key_pack=key_pack, actor=admin_user)
        transfer = transfer_file(license=license, target_machine=MachineFactory(), reason="r", actor=admin_user)
        transfer_approve(transfer=transfer, actor=second_admin)
    client = api_client(admin_user)
    with django_assert_num_queries(3):  # token, role, transfers joined with their people
        rows = client.get("/api/v1/transfers/").json()["results"]
    assert len(rows) == count and rows[0]["approved_by"] == "bob"
