import pytest

from licensing.models import License, LicenseKind, LicenseStatus
from licensing.services.licenses import license_issue_permanent, license_issue_temporary
from licensing.tests.factories import KeyPackFactory, LicenseFactory, MachineFactory
from portal.tests.api_mixins import (
    APIReadTests,
    CreateMixin,
    NoUpdateMixin,
    RequesterCannotCreateMixin,
    audit_count,
)

LICENSE_FIELDS = {
    "id", "license_id", "machine", "hostname", "key_pack", "license_server", "product_version",
    "kind", "status", "issued_at", "expires_at", "transferred_from", "transferable", "end_reason", "revoked_at",
}


@pytest.mark.django_db
class TestLicenseAPI(APIReadTests, CreateMixin, RequesterCannotCreateMixin, NoUpdateMixin):
    basename = "api-license"
    fields = LICENSE_FIELDS

    @pytest.fixture
    def instance(self, machine, key_pack, admin_user):
        return license_issue_permanent(machine=machine, key_pack=key_pack, actor=admin_user)

    @pytest.fixture
    def create_data(self, machine, key_pack):
        return {"machine": machine.pk, "key_pack": key_pack.pk}

    def check_created(self, row, data):
        super().check_created(row, data)
        assert row["kind"] == "permanent" and row["status"] == "active"
        assert row["hostname"] == "ws-xphome-01"
        assert row["transferable"] is True and row["expires_at"] is None

    def test_issue_temporary(self, machine, server, admin_api):
        response = admin_api.post(
            self.list_url(),
            {"machine": machine.pk, "kind": "temporary", "license_server": server.pk,
             "product_version": "windows_server_2003"},
            format="json",
        )
        assert response.status_code == 201, response.content
        row = response.json()
        assert row["kind"] == "temporary" and row["key_pack"] is None
        assert row["transferable"] is False
        lic = License.objects.get(pk=row["id"])
        assert (lic.expires_at - lic.issued_at).days == 90
        # ISO 8601 with an offset (UTC).
        assert row["issued_at"].endswith(("Z", "+00:00"))

    @pytest.mark.parametrize(
        "body",
        [
            {"kind": "temporary"},
            {"kind": "permanent", "key_pack": None},
            {"kind": "sometimes"},
        ],
    )
    def test_incomplete_bodies_are_400(self, machine, admin_api, body):
        before = audit_count()
        response = admin_api.post(self.list_url(), {"machine": machine.pk, **body}, format="json")
        assert response.status_code == 400
        assert audit_count() == before
        assert not License.objects.exists()

    def test_unknown_machine_is_400(self, key_pack, admin_api):
        response = admin_api.post(self.list_url(), {"machine": 999999, "key_pack": key_pack.pk}, format="json")
        assert response.status_code == 400
        assert "machine" in response.json()

    def test_filters(self, key_pack, server, admin_user, admin_api):
        a = MachineFactory(hostname="Filter-A")
        b = MachineFactory(hostname="filter-b")
        perm = license_issue_permanent(machine=a, key_pack=key_pack, actor=admin_user)
        temp = license_issue_temporary(machine=b, license_server=server,
                                       product_version="windows_server_2003", actor=admin_user)
        other = KeyPackFactory(license_server=server, product_version="windows_server_2008")
        other_lic = license_issue_permanent(machine=b, key_pack=other, actor=admin_user)

        def ids(**params):
            response = admin_api.get(self.list_url(), params)
            assert response.status_code == 200, response.content
            return {row["id"] for row in response.json()["results"]}

        assert ids(machine=a.pk) == {perm.pk}
        assert ids(key_pack=key_pack.pk) == {perm.pk}
        assert ids(kind="temporary") == {temp.pk}
        assert ids(status="active") == {perm.pk, temp.pk, other_lic.pk}
        assert ids(status="expired") == set()
        assert ids(product_version="windows_server_2008") == {other_lic.pk}
        assert ids(hostname="filter-a") == {perm.pk}
        assert admin_api.get(self.list_url(), {"kind": "borrowed"}).status_code == 400
        assert admin_api.get(self.list_url(), {"machine": "x"}).status_code == 400

    def test_pages_follow_next(self, key_pack, admin_api):
        LicenseFactory.create_batch(5, key_pack=key_pack)
        seen, url = [], self.list_url() + "?page_size=2"
        while url:
            body = admin_api.get(url).json()
            seen += [row["id"] for row in body["results"]]
            url = body["next"]
        assert len(seen) == 5 == len(set(seen))
        assert seen == sorted(seen, reverse=True)

    def test_page_size_is_capped_and_garbage_ignored(self, key_pack, admin_api):
        LicenseFactory.create_batch(3, key_pack=key_pack)
        for size in ("100000", "-5", "abc", "0", "1e9"):
            response = admin_api.get(self.list_url(), {"page_size": size})
            assert response.status_code == 200, size
        assert admin_api.get(self.list_url(), {"cursor": "garbage"}).status_code == 404

    @pytest.mark.parametrize("page_size", [10, 200])
    def test_list_queries_do_not_grow_with_the_page(
        self, key_pack, admin_api, django_assert_num_queries, page_size
    ):
        key_pack.total_licenses = 100
        key_pack.save()
        LicenseFactory.create_batch(50, key_pack=key_pack)
        # token, role, one page of licenses joined with their machines
        with django_assert_num_queries(3):
            response = admin_api.get(self.list_url(), {"page_size": page_size})
        rows = response.json()["results"]
        assert len(rows) == min(50, page_size)
        assert all(row["hostname"] and row["key_pack"] == key_pack.pk for row in rows)

    def test_transferable_is_derived(self, key_pack, admin_api):
        source = LicenseFactory(key_pack=key_pack, status=LicenseStatus.TRANSFERRED,
                                ended_at="2024-01-01T00:00:00Z")
        product = LicenseFactory(key_pack=key_pack, transferred_from=source)
        assert admin_api.get(self.detail_url(source.pk)).json()["transferable"] is False
        assert admin_api.get(self.detail_url(product.pk)).json()["transferable"] is False
        assert product.kind == LicenseKind.PERMANENT



@pytest.mark.django_db
def test_list_rows_are_the_serializers_output(admin_user, key_pack, server):
    """The list writes rows from values(); they must equal LicenseSerializer's, field by field."""
    from licensing.api.serializers import LicenseSerializer
    from licensing.services import transfers
    from licensing.services.reissue import reissue_install, reissue_log_call
    from portal.tests.api_mixins import api_client

    source = license_issue_permanent(machine=MachineFactory(), key_pack=key_pack, actor=admin_user)
    license_issue_temporary(machine=MachineFactory(), license_server=server,
                            product_version="windows_server_2003", actor=admin_user)
    second_admin = type(admin_user).objects.create(username="second")
    from django.contrib.auth.models import Group

    second_admin.groups.add(Group.objects.get(name="admin"))
    transfer = transfers.transfer_file(license=source, target_machine=MachineFactory(), reason="r",
                                       actor=admin_user)
    transfers.transfer_approve(transfer=transfer, actor=second_admin)
    transfers.transfer_confirm_removal(transfer=transfer, actor=admin_user, method="registry_key_deleted")
    from django.utils import timezone

    call = reissue_log_call(actor=admin_user, called_at=timezone.now(), license_server=server,
                            product_version="windows_server_2003", license_program="select",
                            quantity_requested=1, transfers=[transfer], csc_location="NA", csc_phone_number="1")
    reissue_install(reissue_request=call, actor=second_admin, key_pack_id=99, total_licenses=1)

    listed = api_client(admin_user).get("/api/v1/licenses/?page_size=500").json()["results"]
    expected = LicenseSerializer(License.objects.order_by("-id"), many=True).data
    assert listed == [dict(row) for row in expected]
    assert {row["status"] for row in listed} == {"active", "transferred"}
    assert {row["kind"] for row in listed} == {"permanent", "temporary"}
    assert any(row["transferred_from"] for row in listed)
