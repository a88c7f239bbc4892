"""Machine pages: the CAL history, adding, issuing CALs and retiring, with their refusals."""

import pytest
from django.urls import reverse

from inventory.models import ClientMachine, MachineStatus, OsEdition
from licensing import models as m
from licensing.services import transfers as transfer_services
from licensing.tests.factories import LicenseFactory, MachineFactory
from licensing.tests.helpers import table_state


def _issue(client, machine, **data):
    return client.post(reverse("machine-issue", args=[machine.pk]),
                       {f"issue-{k}": v for k, v in data.items()})


def test_add_machine_and_duplicate_host_name_error(client, admin_user, requester):
    client.force_login(admin_user)
    response = client.post(reverse("machine-new"), {"hostname": "WS-NEW-01", "os_edition": "windows_xp_home"})
    machine = ClientMachine.objects.get(hostname="WS-NEW-01")
    assert response["Location"] == machine.get_absolute_url()
    response = client.post(reverse("machine-new"), {"hostname": "ws-new-01", "os_edition": "windows_xp_home"})
    assert response.status_code == 400
    assert "already exists" in response.content.decode()
    response = client.post(reverse("machine-new"), {"hostname": "-bad-", "os_edition": "windows_xp_home"})
    assert response.context["form"].errors["hostname"]
    client.force_login(requester)
    assert client.get(reverse("machine-new")).status_code == 403


def test_issue_permanent_and_temporary_cals(client, admin_user, machine, key_pack):
    client.force_login(admin_user)
    response = _issue(client, machine, kind="permanent", license_server=key_pack.license_server_id,
                      key_pack_id=key_pack.key_pack_id)
    assert response.status_code == 302
    assert m.License.objects.get(machine=machine).key_pack == key_pack
    other = MachineFactory(hostname="ws-temp")
    _issue(client, other, kind="temporary", license_server=key_pack.license_server_id,
           product_version="windows_server_2003")
    assert m.License.objects.get(machine=other).kind == m.LicenseKind.TEMPORARY
    page = client.get(other.get_absolute_url()).content.decode()
    assert "Temporary CAL #" in page and "tl-temporary" in page


def test_issue_refusals_show_the_rule_and_change_nothing(client, admin_user, key_pack):
    pro = MachineFactory(hostname="ws-xppro", os_edition=OsEdition.WINDOWS_XP_PROFESSIONAL)
    client.force_login(admin_user)
    before = table_state()
    response = _issue(client, pro, kind="permanent", license_server=key_pack.license_server_id,
                      key_pack_id=key_pack.key_pack_id)
    assert response.status_code == 409
    assert "includes its TS CAL on license server TSLS-HQ; it receives no CAL." in response.content.decode()
    assert table_state() == before
    response = _issue(client, pro, kind="permanent", license_server=key_pack.license_server_id,
                      key_pack_id=999)
    assert response.status_code == 400 and "TSLS-HQ has no key pack 999." in response.content.decode()


def test_retire_machine(client, admin_user, auditor, machine, key_pack):
    client.force_login(auditor)
    assert client.post(reverse("machine-retire", args=[machine.pk]), {"retire-confirm": "on"}).status_code == 403
    assert _issue(client, machine, kind="temporary").status_code == 403
    client.force_login(admin_user)
    response = client.post(reverse("machine-retire", args=[machine.pk]), {"retire-confirm": "on"})
    assert response.status_code == 302
    machine.refresh_from_db()
    assert machine.status == MachineStatus.RETIRED
    again = client.post(reverse("machine-retire", args=[machine.pk]), {"retire-confirm": "on"})
    assert again.status_code == 409 and "is already retired" in again.content.decode()


@pytest.mark.parametrize("who", ["admin_user", "requester", "auditor"])
def test_machine_page_shows_the_cal_history(client, request, who, admin_user, key_pack):
    source = MachineFactory(hostname="ws-source")
    target = MachineFactory(hostname="ws-target")
    cal = LicenseFactory(machine=source, key_pack=key_pack)
    transfer_services.transfer_file(license=cal, target_machine=target, reason="r", actor=admin_user)
    client.force_login(request.getfixturevalue(who))
    response = client.get(source.get_absolute_url())
    assert response.status_code == 200
    texts = [e["text"] for e in response.context["timeline"]]
    assert any(t.startswith("Transfer #") and "to ws-target" in t for t in texts)
    assert any(t.startswith(f"Permanent CAL #{cal.pk}") for t in texts)
    assert [e.action for e in response.context["audit_events"]] == ["transfer.requested"]
    has_forms = "Issue CAL" in response.content.decode()
    assert has_forms == (who == "admin_user")


def test_machine_suggestions_for_the_target_field(client, requester):
    MachineFactory(hostname="ws-new-01")
    MachineFactory(hostname="ws-new-02", status=MachineStatus.RETIRED, retired_at="2026-01-01T00:00Z")
    MachineFactory(hostname="lab-01")
    client.force_login(requester)
    response = client.get(reverse("machine-suggestions"), {"target_machine": "WS-NEW"})
    assert response.content.decode().strip() == '<option value="ws-new-01"></option>'
