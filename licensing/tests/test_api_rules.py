"""Every refusal code of DOMAIN.md, triggered through the API: 409 with the code, a
sentence naming the objects, and nothing changed."""

import pytest
from django.utils import timezone

from core.models import AuditEvent
from inventory.models import ClientMachine
from licensing import models as m
from licensing.services.licenses import license_issue_permanent, license_issue_temporary
from licensing.services.reissue import reissue_log_call
from licensing.services.revocations import license_revoke
from licensing.services.transfers import transfer_approve, transfer_confirm_removal, transfer_file
from licensing.tests.factories import KeyPackFactory, LicenseFactory, LicenseServerFactory, MachineFactory
from portal.tests.api_mixins import api_client


def database_state():
    """Everything a refused request must leave as it was."""
    return {
        "audit": list(AuditEvent.objects.values_list("sequence", "hash")),
        "licenses": list(m.License.objects.order_by("pk").values_list("pk", "status", "machine_id")),
        "transfers": list(m.TransferRequest.objects.order_by("pk").values_list("pk", "status", "approved_by")),
        "packs": list(m.KeyPack.objects.order_by("pk").values_list("pk", "total_licenses")),
        "calls": list(m.ReissueRequest.objects.order_by("pk").values_list("pk", "status")),
        "machines": list(ClientMachine.objects.order_by("pk").values_list("pk", "status")),
        "revocations": list(m.Revocation.objects.values_list("pk", "license_id")),
    }


class World:
    """The objects a scenario needs, built through the services."""

    def __init__(self, alice, bob, server, pack):
        self.alice, self.bob, self.server, self.pack = alice, bob, server, pack

    def issue(self, machine=None, pack=None):
        return license_issue_permanent(machine=machine or MachineFactory(), key_pack=pack or self.pack,
                                       actor=self.alice)

    def transfer(self, license=None, target=None):
        return transfer_file(license=license or self.issue(), target_machine=target or MachineFactory(),
                             reason="Replaced", actor=self.alice)

    def ready_transfer(self):
        transfer = self.transfer()
        transfer_approve(transfer=transfer, actor=self.bob)
        return transfer_confirm_removal(transfer=transfer, actor=self.alice, method="machine_decommissioned")

    def call(self, transfers):
        return reissue_log_call(
            actor=self.alice, called_at=timezone.now(), license_server=self.server,
            product_version="windows_server_2003", license_program="select",
            quantity_requested=len(transfers), transfers=transfers, csc_location="North America",
            csc_phone_number="+1 888 571 2048",
        )


def issue_body(machine, pack):
    return ("post", "/api/v1/licenses/", {"machine": machine.pk, "key_pack": pack.pk})


def transfer_body(license, target):
    return ("post", "/api/v1/transfers/", {"license": license.pk, "target_machine": target.pk, "reason": "x"})


def no_licenses_available(w):
    pack = KeyPackFactory(license_server=w.server, total_licenses=1)
    w.issue(pack=pack)
    return issue_body(MachineFactory(), pack)


def per_user_key_pack(w):
    return issue_body(MachineFactory(), KeyPackFactory(license_server=w.server, cal_type="per_user"))


def os_includes_cal(w):
    return issue_body(MachineFactory(os_edition="windows_xp_professional"), w.pack)


def machine_already_licensed(w):
    license = w.issue()
    return issue_body(license.machine, KeyPackFactory(license_server=w.server))


def temporary_already_used(w):
    machine = MachineFactory()
    license_issue_temporary(machine=machine, license_server=w.server,
                            product_version="windows_server_2003", actor=w.alice)
    return ("post", "/api/v1/licenses/", {"machine": machine.pk, "kind": "temporary",
                                          "license_server": w.server.pk,
                                          "product_version": "windows_server_2003"})


def machine_retired(w):
    return issue_body(MachineFactory(status="retired", retired_at=timezone.now()), w.pack)


def already_transferred(w):
    source = LicenseFactory(key_pack=w.pack, status="transferred", ended_at=timezone.now())
    product = LicenseFactory(key_pack=w.pack, transferred_from=source)
    return transfer_body(product, MachineFactory())


def not_transferable(w):
    temporary = license_issue_temporary(machine=MachineFactory(), license_server=w.server,
                                        product_version="windows_server_2003", actor=w.alice)
    return transfer_body(temporary, MachineFactory())


def transfer_pending(w):
    transfer = w.transfer()
    return transfer_body(transfer.license, MachineFactory())


def same_machine(w):
    license = w.issue()
    return transfer_body(license, license.machine)


def four_eyes(w):
    return ("post", f"/api/v1/transfers/{w.transfer().pk}/approve/", {})  # alice filed it


def invalid_state(w):
    # Removal is confirmed only after approval.
    return ("post", f"/api/v1/transfers/{w.transfer().pk}/confirm-removal/",
            {"method": "registry_key_deleted"})


def below_issued(w):
    w.issue()
    w.issue()
    return ("patch", f"/api/v1/key-packs/{w.pack.pk}/", {"total_licenses": 1})


def transfer_not_ready(w):
    transfer = w.transfer()
    return ("post", "/api/v1/reissue-requests/", {
        "called_at": "2004-05-03T10:00:00Z", "csc_location": "North America",
        "csc_phone_number": "+1 888 571 2048", "license_server": w.server.pk,
        "product_version": "windows_server_2003", "license_program": "select",
        "quantity_requested": 1, "transfers": [transfer.pk]})


def product_mismatch(w):
    transfer = w.ready_transfer()
    return ("post", "/api/v1/reissue-requests/", {
        "called_at": "2004-05-03T10:00:00Z", "csc_location": "North America",
        "csc_phone_number": "+1 888 571 2048", "license_server": w.server.pk,
        "product_version": "windows_2000_server", "license_program": "select",
        "quantity_requested": 1, "transfers": [transfer.pk]})


def revoke_not_supported(w):
    # The article's server (Windows Server 2003): a CAL moves by the one-time transfer only.
    return ("post", f"/api/v1/licenses/{w.issue().pk}/revoke/", {})


def revoke_quota_exceeded(w):
    server = LicenseServerFactory(name="TSLS-2019", windows_version="windows_server_2019",
                                  builtin_cal_for_pro_clients=False)
    pack = KeyPackFactory(license_server=server, product_version="windows_server_2019", total_licenses=5)  # quota 1
    first, second = w.issue(pack=pack), w.issue(pack=pack)
    license_revoke(license=first, actor=w.alice)
    return ("post", f"/api/v1/licenses/{second.pk}/revoke/", {"note": "Re-imaged"})


def version_not_supported(w):
    return ("post", "/api/v1/key-packs/", {
        "license_server": w.server.pk, "key_pack_id": 2019, "product_version": "windows_server_2019",
        "cal_type": "per_device", "license_program": "select", "total_licenses": 10})


def quantity_too_small(w):
    call = w.call([w.ready_transfer(), w.ready_transfer()])
    return ("post", f"/api/v1/reissue-requests/{call.pk}/install/", {"key_pack_id": 5150, "total_licenses": 1})


SCENARIOS = [
    no_licenses_available, per_user_key_pack, os_includes_cal, machine_already_licensed,
    temporary_already_used, machine_retired, already_transferred, not_transferable,
    transfer_pending, same_machine, four_eyes, invalid_state, below_issued, transfer_not_ready,
    product_mismatch, quantity_too_small, revoke_not_supported, revoke_quota_exceeded, version_not_supported,
]


@pytest.mark.django_db
@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda f: f.__name__)
def test_refusal_is_409_with_its_code_and_changes_nothing(scenario, admin_user, second_admin, server):
    pack = KeyPackFactory(license_server=server, key_pack_id=4711, total_licenses=10)
    world = World(admin_user, second_admin, server, pack)
    method, url, body = scenario(world)
    before = database_state()
    response = getattr(api_client(admin_user), method)(url, body, format="json")
    assert response.status_code == 409, response.content
    assert set(response.json()) == {"code", "detail"}
    assert response.json()["code"] == scenario.__name__
    assert response.json()["detail"]
    assert database_state() == before


@pytest.mark.django_db
def test_refusal_codes_are_all_covered():
    from core.errors import DomainCode

    assert {f.__name__ for f in SCENARIOS} == {code.value for code in DomainCode}


@pytest.mark.django_db
def test_invalid_state_on_a_closed_call(admin_user, second_admin, server):
    world = World(admin_user, second_admin, server, KeyPackFactory(license_server=server))
    call = world.call([world.ready_transfer()])
    client = api_client(admin_user)
    assert client.post(f"/api/v1/reissue-requests/{call.pk}/cancel/", {}, format="json").status_code == 200
    before = database_state()
    response = client.post(f"/api/v1/reissue-requests/{call.pk}/deny/", {"note": "late"}, format="json")
    assert response.status_code == 409
    assert response.json()["code"] == "invalid_state"
    assert database_state() == before
