"""The search boxes and filters shared by the pages, the API and the reports."""

import pytest

from core import filtersets as core_filtersets
from inventory.filtersets import ClientMachineFilterSet
from inventory.models import ClientMachine
from licensing import filtersets
from licensing.models import License
from licensing.tests.factories import KeyPackFactory, LicenseFactory, MachineFactory

pytestmark = pytest.mark.django_db


def search(filterset_class, model, q):
    return set(filterset_class({"q": q}, queryset=model.objects.all()).qs.values_list("pk", flat=True))


def test_machine_search():
    a = MachineFactory(hostname="LON-WS-0001", asset_tag="AT-77", owner="Dana Scully", hardware_id="ABC123")
    b = MachineFactory(hostname="lon-ws-0002", owner="Fox Mulder")
    MachineFactory(hostname="dub-ws-0001")
    assert search(ClientMachineFilterSet, ClientMachine, "lon-ws") == {a.pk, b.pk}
    assert search(ClientMachineFilterSet, ClientMachine, "LON-WS-0001") == {a.pk}
    assert search(ClientMachineFilterSet, ClientMachine, "at-77") == {a.pk}
    assert search(ClientMachineFilterSet, ClientMachine, "abc123") == {a.pk}
    assert search(ClientMachineFilterSet, ClientMachine, "fox") == {b.pk}
    assert search(ClientMachineFilterSet, ClientMachine, "ws-0001") == set()  # a prefix, not a substring
    assert search(ClientMachineFilterSet, ClientMachine, "%") == set()  # LIKE wildcards are literal


@pytest.mark.parametrize("limit", [1000, 0])  # few matches as an id list, many as a subquery
def test_license_search(limit, monkeypatch):
    monkeypatch.setattr(core_filtersets, "SEARCH_ID_LIST_LIMIT", limit)
    pack = KeyPackFactory(key_pack_id=4242, agreement_number="EA-991")
    on_pack = LicenseFactory(key_pack=pack, machine=MachineFactory(hostname="zz-top"))
    by_host = LicenseFactory(machine=MachineFactory(hostname="LON-WS-0009"))
    by_id = LicenseFactory(license_id=777_001)
    assert search(filtersets.LicenseFilterSet, License, "lon-ws") == {by_host.pk}
    assert search(filtersets.LicenseFilterSet, License, "ea-991") == {on_pack.pk}
    assert search(filtersets.LicenseFilterSet, License, "4242") == {on_pack.pk}
    assert search(filtersets.LicenseFilterSet, License, "777001") == {by_id.pk}
    assert search(filtersets.LicenseFilterSet, License, str(by_host.pk)) >= {by_host.pk}
    assert search(filtersets.LicenseFilterSet, License, "9" * 30) == set()
