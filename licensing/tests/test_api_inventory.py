"""License servers, key packs and CSC contacts through the API."""

import pytest

from licensing.models import KeyPack, KeyPackOrigin
from licensing.services.licenses import license_issue_permanent
from licensing.tests.factories import CscContactFactory, KeyPackFactory, MachineFactory
from portal.tests.api_mixins import APICrudTests, api_client, audit_count

SERVER_FIELDS = {
    "id", "name", "windows_version", "server_id", "activation_status",
    "builtin_cal_for_pro_clients", "location", "notes",
}
KEY_PACK_FIELDS = {
    "id", "license_server", "key_pack_id", "product_version", "cal_type", "license_program",
    "agreement_number", "total_licenses", "issued_licenses", "available_licenses", "installed_on",
    "expires_on", "origin", "reissue_request", "description", "notes",
}
CONTACT_FIELDS = {"id", "location", "phone_number", "hours", "notes"}


@pytest.mark.django_db
class TestLicenseServerAPI(APICrudTests):
    basename = "api-licenseserver"
    fields = SERVER_FIELDS

    @pytest.fixture
    def instance(self, server):
        return server

    @pytest.fixture
    def create_data(self):
        return {"name": "TSLS-BRANCH", "windows_version": "windows_server_2008",
                "activation_status": "activated", "location": "Branch office"}

    @pytest.fixture
    def update_data(self):
        return {"server_id": "LS-1234", "activation_status": "not_activated"}

    def test_builtin_cal_defaults_by_version(self, admin_api):
        for version, expected in (("windows_server_2003", True), ("windows_server_2012", False)):
            response = admin_api.post(
                self.list_url(), {"name": f"srv-{version}", "windows_version": version}, format="json"
            )
            assert response.status_code == 201, response.content
            assert response.json()["builtin_cal_for_pro_clients"] is expected

    def test_duplicate_name_is_400(self, server, admin_api):
        response = admin_api.post(
            self.list_url(), {"name": server.name.lower(), "windows_version": "windows_server_2003"},
            format="json",
        )
        assert response.status_code == 400
        assert "non_field_errors" in response.json()


@pytest.mark.django_db
class TestKeyPackAPI(APICrudTests):
    basename = "api-keypack"
    fields = KEY_PACK_FIELDS

    @pytest.fixture
    def instance(self, key_pack):
        return key_pack

    @pytest.fixture
    def create_data(self, server):
        return {"license_server": server.pk, "key_pack_id": 9001, "product_version": "windows_server_2003",
                "cal_type": "per_device", "license_program": "open", "agreement_number": "OPEN-1",
                "total_licenses": 20, "installed_on": "2004-03-01", "expires_on": None,
                "description": "Open License 20 CALs"}

    @pytest.fixture
    def update_data(self):
        return {"total_licenses": 8, "notes": "Counted again."}

    def check_created(self, row, data):
        super().check_created(row, data)
        assert row["origin"] == KeyPackOrigin.ORIGINAL and row["reissue_request"] is None
        assert row["issued_licenses"] == 0 and row["available_licenses"] == 20

    def test_origin_is_read_only(self, create_data, admin_api):
        response = admin_api.post(self.list_url(), {**create_data, "origin": "reissue"}, format="json")
        assert response.status_code == 201
        assert KeyPack.objects.get(pk=response.json()["id"]).origin == KeyPackOrigin.ORIGINAL

    def test_counts(self, key_pack, admin_user, admin_api):
        for _ in range(2):
            license_issue_permanent(machine=MachineFactory(), key_pack=key_pack, actor=admin_user)
        row = admin_api.get(self.detail_url(key_pack.pk)).json()
        assert (row["issued_licenses"], row["available_licenses"]) == (2, 3)

    def test_total_below_issued_is_409(self, key_pack, admin_user, admin_api):
        for _ in range(3):
            license_issue_permanent(machine=MachineFactory(), key_pack=key_pack, actor=admin_user)
        before = audit_count()
        response = admin_api.patch(self.detail_url(key_pack.pk), {"total_licenses": 2}, format="json")
        assert response.status_code == 409
        assert response.json()["code"] == "below_issued"
        key_pack.refresh_from_db()
        assert key_pack.total_licenses == 5
        assert audit_count() == before

    @pytest.mark.parametrize("total", [0, -1, 10**20, "many", None])
    def test_bad_totals_are_400(self, create_data, admin_api, total):
        response = admin_api.post(self.list_url(), {**create_data, "total_licenses": total}, format="json")
        assert response.status_code == 400
        assert "total_licenses" in response.json()

    def test_product_is_fixed_once_issued(self, key_pack, admin_user, admin_api):
        license_issue_permanent(machine=MachineFactory(), key_pack=key_pack, actor=admin_user)
        before = audit_count()
        response = admin_api.patch(self.detail_url(key_pack.pk), {"product_version": "windows_server_2008"},
                                   format="json")
        assert response.status_code == 400
        assert "product_version" in response.json()
        key_pack.refresh_from_db()
        assert key_pack.product_version == "windows_server_2003"
        assert audit_count() == before

    def test_duplicate_key_pack_id_on_server_is_400(self, key_pack, create_data, admin_api):
        before = audit_count()
        response = admin_api.post(
            self.list_url(), {**create_data, "key_pack_id": key_pack.key_pack_id}, format="json"
        )
        assert response.status_code == 400
        assert audit_count() == before

    def test_unknown_server_is_400(self, create_data, admin_api):
        response = admin_api.post(self.list_url(), {**create_data, "license_server": 10**6}, format="json")
        assert response.status_code == 400
        assert "license_server" in response.json()

    def test_filters(self, server, admin_api):
        KeyPackFactory(license_server=server, cal_type="per_user")
        rows = admin_api.get(self.list_url(), {"cal_type": "per_user"}).json()["results"]
        assert [r["cal_type"] for r in rows] == ["per_user"]

    def test_list_query_count_is_fixed(self, server, admin_api, django_assert_num_queries):
        KeyPackFactory.create_batch(5, license_server=server)
        with django_assert_num_queries(3):  # token, role, packs with their counts
            admin_api.get(self.list_url())


@pytest.mark.django_db
class TestCscContactAPI(APICrudTests):
    basename = "api-csccontact"
    fields = CONTACT_FIELDS

    @pytest.fixture
    def instance(self, db):
        return CscContactFactory(location="North America")

    @pytest.fixture
    def create_data(self):
        return {"location": "Europe", "phone_number": "+353 1 706 5555", "hours": "Mon-Fri"}

    @pytest.fixture
    def update_data(self):
        return {"hours": "24x7"}

    def test_contacts_have_no_delete_either(self, instance, admin_user):
        assert api_client(admin_user).delete(self.detail_url(instance.pk)).status_code == 405
