import pytest

from inventory.models import ClientMachine, MachineStatus
from licensing.tests.factories import MachineFactory
from portal.tests.api_mixins import APICrudTests, audit_count

MACHINE_FIELDS = {
    "id", "hostname", "os_edition", "status", "hardware_id", "asset_tag", "location", "owner", "notes",
}


@pytest.mark.django_db
class TestMachineAPI(APICrudTests):
    basename = "api-machine"
    fields = MACHINE_FIELDS

    @pytest.fixture
    def instance(self, machine):
        return machine

    @pytest.fixture
    def create_data(self):
        return {"hostname": "ws-new-01", "os_edition": "windows_xp_home", "asset_tag": "A-1",
                "location": "Room 12", "owner": "Finance"}

    @pytest.fixture
    def update_data(self):
        return {"owner": "Payroll", "notes": "Moved to the second floor."}

    def test_create_starts_active(self, admin_api):
        response = admin_api.post(
            self.list_url(), {"hostname": "ws-x", "os_edition": "windows_7", "status": "retired"},
            format="json",
        )
        assert response.status_code == 201
        assert response.json()["status"] == MachineStatus.ACTIVE

    def test_duplicate_hostname_any_case_is_400(self, machine, admin_api):
        before = audit_count()
        response = admin_api.post(
            self.list_url(), {"hostname": machine.hostname.upper(), "os_edition": "windows_7"},
            format="json",
        )
        assert response.status_code == 400
        assert "non_field_errors" in response.json()
        assert audit_count() == before

    def test_bad_hostname_is_400(self, admin_api):
        response = admin_api.post(
            self.list_url(), {"hostname": "-bad host-", "os_edition": "windows_7"}, format="json"
        )
        assert response.status_code == 400
        assert "hostname" in response.json()

    def test_patch_status_retired_retires(self, machine, admin_api):
        response = admin_api.patch(self.detail_url(machine.pk), {"status": "retired"}, format="json")
        assert response.status_code == 200
        assert response.json()["status"] == "retired"
        machine.refresh_from_db()
        assert machine.status == MachineStatus.RETIRED and machine.retired_at is not None

    def test_retired_machine_is_not_reactivated(self, machine, admin_api):
        admin_api.patch(self.detail_url(machine.pk), {"status": "retired"}, format="json")
        before = audit_count()
        response = admin_api.patch(self.detail_url(machine.pk), {"status": "active"}, format="json")
        assert response.status_code == 409
        assert response.json()["code"] == "invalid_state"
        assert ClientMachine.objects.get(pk=machine.pk).status == MachineStatus.RETIRED
        assert audit_count() == before

    def test_filters(self, admin_api):
        MachineFactory(hostname="alpha-01", os_edition="windows_7")
        MachineFactory(hostname="beta-01", os_edition="windows_xp_home")
        rows = admin_api.get(self.list_url(), {"os_edition": "windows_7"}).json()["results"]
        assert [r["hostname"] for r in rows] == ["alpha-01"]
        rows = admin_api.get(self.list_url(), {"q": "bet"}).json()["results"]
        assert [r["hostname"] for r in rows] == ["beta-01"]
        assert admin_api.get(self.list_url(), {"status": "gone"}).status_code == 400
