import pytest

from licensing.models import KeyPack
from licensing.tests.factories import KeyPackFactory, LicenseFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(client, admin_user):
    admin_user.is_staff = True
    admin_user.save()
    client.force_login(admin_user)
    return client


@pytest.mark.parametrize(
    "model", ["licensing/license", "licensing/keypack", "licensing/transferrequest", "core/auditevent",
              "inventory/clientmachine", "licensing/reissuerequest", "licensing/licenseserver"],
)
def test_admin_lists_and_offers_no_delete(staff_client, model):
    license = LicenseFactory()
    response = staff_client.get(f"/admin/{model}/")
    assert response.status_code == 200
    obj_id = {"licensing/license": license.pk, "licensing/keypack": license.key_pack_id,
              "inventory/clientmachine": license.machine_id,
              "licensing/licenseserver": license.license_server_id}.get(model)
    if obj_id:
        assert staff_client.get(f"/admin/{model}/{obj_id}/change/").status_code == 200
        assert staff_client.post(f"/admin/{model}/{obj_id}/delete/", {"post": "yes"}).status_code == 403
        assert staff_client.post(f"/admin/{model}/{obj_id}/change/", {}).status_code == 403


def test_admin_history_is_kept(staff_client):
    pack = KeyPackFactory()
    response = staff_client.post(f"/admin/licensing/keypack/{pack.pk}/delete/", {"post": "yes"})
    assert response.status_code == 403
    assert KeyPack.objects.filter(pk=pack.pk).exists()
