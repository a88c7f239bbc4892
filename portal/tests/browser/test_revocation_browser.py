"""Rule 12 in a real browser: an admin revokes a CAL on a Windows Server 2019 license server
from its page, and the server's revocation quota shows one place fewer."""

from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from licensing import models as m
from licensing.tests.factories import KeyPackFactory, LicenseFactory, LicenseServerFactory, MachineFactory
from portal.tests.browser.conftest import log_in, screenshot

pytestmark = pytest.mark.browser


@pytest.fixture
def cals_2019(db):
    server = LicenseServerFactory(name="TSLS-2019", windows_version=m.WindowsVersion.WINDOWS_SERVER_2019,
                                  builtin_cal_for_pro_clients=False)
    pack = KeyPackFactory(license_server=server, key_pack_id=1900, total_licenses=10,
                          product_version=m.WindowsVersion.WINDOWS_SERVER_2019)
    issued_at = timezone.now() - timedelta(days=10)
    return [LicenseFactory(key_pack=pack, machine=MachineFactory(hostname=f"ws-2019-{i:02d}"), issued_at=issued_at)
            for i in range(3)]


def test_revoking_a_cal_on_a_2019_server_uses_a_quota_place(page, admin_user, cals_2019):
    refused = []
    page.on("console", lambda message: refused.append(message.text)
            if "Content Security Policy" in message.text else None)
    first, second, _ = cals_2019
    log_in(page, "alice")
    page.goto(f"/licenses/{first.pk}/")
    quota = page.locator("#revocation-quota")
    expect(quota).to_have_text("0 of 2 revocation places used, 2 left.")
    expect(page.get_by_role("heading", level=1)).to_contain_text("Active")

    form = page.get_by_role("form", name="Revoke")
    form.get_by_label("Note").fill("Reimaged; RD Licensing Manager revoked its CAL")
    form.get_by_role("button", name="Revoke").click()

    expect(page.get_by_role("heading", level=1)).to_contain_text("Revoked")
    expect(page.locator(".notice-success, [role=status]").first).to_contain_text("its seat is back in key pack 1900")
    expect(quota).to_contain_text("1 of 2 revocation places used, 1 left; next frees on ")
    expect(page.locator("#revocation-facts")).to_contain_text("Revoked in RD Licensing Manager")
    expect(page.locator("#revocation-facts")).to_contain_text("Reimaged; RD Licensing Manager revoked its CAL")
    expect(page.get_by_role("form", name="Revoke")).to_have_count(0)
    screenshot(page, "license-revoked.png", full_page=True)

    # The place is the server's, for that product: another CAL's page shows it used too.
    page.goto(f"/licenses/{second.pk}/")
    expect(page.locator("#revocation-quota")).to_contain_text("1 of 2 revocation places used, 1 left")
    first.refresh_from_db()
    assert first.status == m.LicenseStatus.REVOKED
    assert m.Revocation.objects.get(license=first).recorded_by == admin_user
    assert refused == []
