"""The support article's whole path, through the API only: three transfers filed,
approved by a second administrator and their removal confirmed; one CSC call for all
three while one target runs on its temporary CAL; the reissued pack of 4 installed."""

import pytest

from licensing.models import License, LicenseStatus
from licensing.tests.factories import MachineFactory
from portal.tests.api_mixins import api_client

PRODUCT = "windows_server_2003"


@pytest.mark.django_db
def test_article_path(admin_user, second_admin, server, key_pack):
    alice, bob = api_client(admin_user), api_client(second_admin)

    def ok(response, status=200):
        assert response.status_code == status, response.content
        return response.json()

    sources, targets = [], []
    for n in range(3):
        source = ok(alice.post("/api/v1/machines/", {"hostname": f"old-{n}", "os_edition": "windows_xp_home"},
                               format="json"), 201)
        sources.append(source["id"])
        targets.append(MachineFactory(hostname=f"new-{n}").pk)
    licenses = [
        ok(alice.post("/api/v1/licenses/", {"machine": m, "key_pack": key_pack.pk}, format="json"), 201)["id"]
        for m in sources
    ]

    transfers = []
    for license, target in zip(licenses, targets, strict=True):
        transfer = ok(alice.post("/api/v1/transfers/", {"license": license, "target_machine": target,
                                                        "reason": "Hardware refresh"}, format="json"), 201)
        transfers.append(transfer["id"])
        ok(bob.post(f"/api/v1/transfers/{transfer['id']}/approve/", {"note": "Seen"}, format="json"))
        row = ok(alice.post(f"/api/v1/transfers/{transfer['id']}/confirm-removal/",
                            {"method": "registry_key_deleted"}, format="json"))
        assert row["status"] == "removal_confirmed"

    # Meanwhile the first target runs on its 90-day temporary CAL.
    temporary = ok(alice.post("/api/v1/licenses/", {"machine": targets[0], "kind": "temporary",
                                                    "license_server": server.pk, "product_version": PRODUCT},
                              format="json"), 201)

    call = ok(alice.post("/api/v1/reissue-requests/", {
        "called_at": "2004-05-03T10:00:00+02:00", "csc_location": "North America",
        "csc_phone_number": "+1 888 571 2048", "representative": "Pat", "confirmation_number": "R-77",
        "license_server": server.pk, "product_version": PRODUCT, "license_program": "select",
        "quantity_requested": 3, "transfers": transfers,
    }, format="json"), 201)
    assert sorted(call["transfers"]) == sorted(transfers) and call["channel"] == "telephone"
    for pk in transfers:
        assert ok(alice.get(f"/api/v1/transfers/{pk}/"))["status"] == "awaiting_reissue"

    call = ok(alice.post(f"/api/v1/reissue-requests/{call['id']}/install/",
                         {"key_pack_id": 8080, "total_licenses": 4, "installed_on": "2004-05-10",
                          "description": "Reissued by CSC"}, format="json"))
    assert (call["status"], call["quantity_granted"]) == ("fulfilled", 4)

    pack = ok(alice.get(f"/api/v1/key-packs/{call['key_pack']}/"))
    assert (pack["origin"], pack["reissue_request"]) == ("reissue", call["id"])
    assert (pack["total_licenses"], pack["issued_licenses"], pack["available_licenses"]) == (4, 3, 1)

    for transfer_pk, source_license, target in zip(transfers, licenses, targets, strict=True):
        transfer = ok(alice.get(f"/api/v1/transfers/{transfer_pk}/"))
        assert transfer["status"] == "completed" and transfer["completed_at"]
        assert transfer["reissue_request"] == call["id"]
        source = ok(alice.get(f"/api/v1/licenses/{source_license}/"))
        assert (source["status"], source["transferable"]) == ("transferred", False)
        held = ok(alice.get("/api/v1/licenses/", {"machine": target, "status": "active", "kind": "permanent"}))
        [result] = held["results"]
        assert result["id"] == transfer["resulting_license"]
        assert (result["key_pack"], result["transferred_from"]) == (pack["id"], source_license)
        assert result["transferable"] is False

    assert ok(alice.get(f"/api/v1/licenses/{temporary['id']}/"))["status"] == "expired"
    assert License.objects.get(pk=temporary["id"]).status == LicenseStatus.EXPIRED

    # The one-time transfer is used up, on both sides.
    spare = MachineFactory(hostname="spare").pk
    for license in licenses + [ok(alice.get(f"/api/v1/transfers/{t}/"))["resulting_license"] for t in transfers]:
        response = alice.post("/api/v1/transfers/", {"license": license, "target_machine": spare,
                                                     "reason": "Again"}, format="json")
        assert response.status_code == 409
        assert response.json()["code"] == "already_transferred"

    assert ok(alice.get("/api/v1/audit-events/verify/"))["ok"] is True
