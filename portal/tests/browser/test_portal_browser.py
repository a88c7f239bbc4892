"""The article's path through the UI alone, in a real browser, plus log-in and role checks."""

import re
from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from core.roles import ADMIN, AUDITOR
from licensing import models as m
from licensing.services import transfers as transfer_services
from licensing.tests.factories import (
    CscContactFactory,
    KeyPackFactory,
    LicenseFactory,
    LicenseServerFactory,
    MachineFactory,
    UserFactory,
)
from portal.tests.browser.conftest import log_in, log_out, screenshot

pytestmark = pytest.mark.browser


@pytest.fixture
def article_data(key_pack, admin_user):
    lab_pack = KeyPackFactory(license_server=key_pack.license_server, key_pack_id=4712, total_licenses=25)
    lab = [LicenseFactory(key_pack=lab_pack, machine=MachineFactory(hostname=f"ws-lab-{i:02d}")) for i in range(9)]
    branch_pack = KeyPackFactory(license_server=LicenseServerFactory(name="TSLS-BRANCH"), total_licenses=40,
                                 product_version=m.WindowsVersion.WINDOWS_SERVER_2008)
    for i in range(31):
        LicenseFactory(key_pack=branch_pack, machine=MachineFactory(hostname=f"ws-branch-{i:02d}"))
    now = timezone.now()
    m.License.objects.create(
        machine=MachineFactory(hostname="ws-branch-temp"), license_server=branch_pack.license_server,
        product_version=branch_pack.product_version, kind=m.LicenseKind.TEMPORARY,
        issued_at=now - timedelta(days=84), expires_at=now + timedelta(days=6),
    )
    transfer_services.transfer_file(license=lab[0], target_machine=MachineFactory(hostname="ws-lab-spare"),
                                    reason="Motherboard failure", actor=admin_user)
    cal = LicenseFactory(key_pack=key_pack, machine=MachineFactory(hostname="ws-old-pc"))
    target = MachineFactory(hostname="ws-new-pc")
    CscContactFactory(location="North America", phone_number="+1 888 571 2048")
    return cal, target


def test_article_path_from_filing_to_reissued_pack(page, admin_user, second_admin, article_data):
    cal, target = article_data
    # Admin A files the transfer, starting from the license's page.
    log_in(page, "alice")
    page.get_by_role("link", name="Licenses", exact=True).click()
    expect(page.get_by_role("heading", name="Licenses")).to_be_visible()
    screenshot(page, "licenses.png")
    page.goto(f"/licenses/{cal.pk}/")
    expect(page.locator("#transferability")).to_have_text("transferable (one time, permanently)")
    page.get_by_role("button", name="File a transfer").click()
    expect(page.get_by_label("Source CAL (portal id)")).to_have_value(str(cal.pk))
    page.get_by_label("Target machine (host name)").fill("ws-new")
    expect(page.locator('#machine-suggestions option[value="ws-new-pc"]')).to_have_count(1)  # htmx
    page.get_by_label("Target machine (host name)").fill("ws-new-pc")
    page.get_by_label("Reason").fill("ws-old-pc is being replaced")
    page.get_by_role("button", name="File transfer").click()
    expect(page.locator("#transfer-status")).to_have_text("Requested")
    expect(page.get_by_role("button", name="Approve")).to_have_count(0)
    log_out(page)

    # Admin B approves, confirms the removal, logs the CSC call and installs the pack.
    log_in(page, "bob")
    page.goto(m.TransferRequest.objects.get(license=cal).get_absolute_url())
    page.get_by_role("button", name="Approve").click()
    expect(page.locator("#transfer-status")).to_have_text("Approved")
    page.get_by_label("License registry key deleted").check()
    page.get_by_role("button", name="Confirm removal").click()
    expect(page.locator("#transfer-status")).to_have_text("Removal confirmed")
    page.get_by_role("button", name="Log a CSC call").click()
    page.get_by_label("CSC called (phone book)").select_option(label="North America (+1 888 571 2048)")
    page.get_by_label("Called at").fill("2026-11-20T10:30")
    page.get_by_label("Representative").fill("Pat")
    page.get_by_label("Confirmation number").fill("TSL-4471-2209")
    expect(page.get_by_label(re.compile(r"ws-old-pc -> ws-new-pc"))).to_be_checked()
    page.get_by_role("button", name="Log call").click()
    expect(page.locator("#call-status")).to_have_text("Open")
    page.get_by_label("KeyPackId of the reissued pack").fill("90001")
    page.get_by_label("CALs granted").fill("1")
    page.get_by_role("button", name="Install reissued pack").click()
    expect(page.locator("#call-status")).to_have_text("Fulfilled")

    transfer = m.TransferRequest.objects.get(license=cal)
    page.goto(transfer.get_absolute_url())
    expect(page.locator("#transfer-status")).to_have_text("Completed")
    expect(page.locator("#step-installed")).to_contain_text("by bob")
    expect(page.locator("#step-removed")).to_contain_text(r"HKEY_LOCAL_MACHINE\SOFTWARE\Microsoft\MSLicensing")
    screenshot(page, "transfer-checklist.png", full_page=True)
    page.get_by_role("link", name=f"CAL #{transfer.resulting_license_id}").click()
    expect(page.locator("#transferability")).to_have_text("not transferable (one-time transfer used)")

    page.goto("/")
    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()
    screenshot(page, "dashboard.png")

    # A CSV export of the filtered list downloads.
    page.goto("/licenses/?q=ws-new-pc")
    with page.expect_download() as info:
        page.get_by_role("button", name="Export CSV").click()
    content = open(info.value.path(), encoding="utf-8-sig").read()
    assert "ws-new-pc" in content and "ws-lab-00" not in content

    # The reports page runs a background export and shows its progress and download link.
    page.goto("/reports/")
    report = page.locator("#report-transfers")
    report.get_by_role("button", name="Background CSV").click()
    expect(report.get_by_role("link", name="Download the file")).to_be_visible()
    expect(report.locator("progress")).to_have_attribute("value", "100")
    page.evaluate("window.scrollTo(0, 0)")
    page.wait_for_timeout(500)  # let the progress bar finish its transition
    screenshot(page, "reports.png", full_page=True)


def test_login_logout_and_a_wrong_password(page, admin_user):
    page.goto("/machines/")
    page.wait_for_url("**/accounts/login/?next=/machines/")
    page.get_by_label("User name").fill("alice")
    page.get_by_label("Password").fill("not-the-password")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("alert")).to_contain_text("did not match")
    # Keyboard only: the user name has focus, Tab reaches the password, Enter submits.
    expect(page.get_by_label("User name")).to_be_focused()
    page.keyboard.press("Tab")
    expect(page.get_by_label("Password")).to_be_focused()
    page.keyboard.type("pw-for-tests-1")
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Client machines")).to_be_visible()
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Skip to content")).to_be_focused()
    log_out(page)
    page.goto("/")
    page.wait_for_url("**/accounts/login/?next=/")


def test_auditor_sees_no_write_buttons(page, key_pack, article_data):
    UserFactory(username="audrey", role=AUDITOR)
    cal, _ = article_data
    log_in(page, "audrey")
    for url in ("/licenses/", f"/licenses/{cal.pk}/", f"/machines/{cal.machine_id}/", "/key-packs/",
                "/transfers/", "/csc-contacts/"):
        page.goto(url)
        expect(page.locator("main form[method=post]")).to_have_count(0)
        expect(page.get_by_role("button", name=re.compile("File a transfer|Add "))).to_have_count(0)
    page.goto("/licenses/")
    expect(page.get_by_role("button", name="Export CSV")).to_be_visible()


def test_second_transfer_attempt_shows_the_refusal(page, article_data):
    UserFactory(username="carol", role=ADMIN)
    cal, target = article_data
    log_in(page, "carol")
    for hostname in ("ws-new-pc", "ws-lab-spare"):
        page.goto(f"/transfers/new/?license={cal.pk}")
        page.get_by_label("Target machine (host name)").fill(hostname)
        page.get_by_label("Reason").fill("replacement")
        page.get_by_role("button", name="File transfer").click()
    expect(page.locator(".refusal").first).to_contain_text(
        f"CAL #{cal.pk} on ws-old-pc already has open transfer request")
    assert m.TransferRequest.objects.filter(license=cal).count() == 1


def test_pages_run_under_the_content_security_policy(page, admin_user, article_data):
    """No page of the portal needs an inline script or style: the browser refuses none."""
    cal, _ = article_data
    refused = []
    page.on("console", lambda message: refused.append(f"{page.url}: {message.text}")
            if "Content Security Policy" in message.text else None)
    log_in(page, "alice")
    for url in ("/", "/licenses/", f"/licenses/{cal.pk}/", f"/key-packs/{cal.key_pack_id}/", "/machines/",
                "/transfers/", "/audit/", "/reports/", "/imports/", "/csc-contacts/", "/api/v1/docs/"):
        page.goto(url)
        page.wait_for_load_state("networkidle")
    page.goto(f"/transfers/new/?license={cal.pk}")
    page.get_by_label("Target machine (host name)").fill("ws-new")  # htmx fetches the suggestions
    expect(page.locator('#machine-suggestions option[value="ws-new-pc"]')).to_have_count(1)
    page.goto("/api/v1/docs/")
    expect(page.locator(".swagger-ui .info")).to_be_visible()
    assert refused == []
