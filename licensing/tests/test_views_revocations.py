"""Rule 12 and 13 on the pages: revoking a CAL from its page, each refusal with its code and
nothing changed, the quota the page shows, revoked seats on the key pack pages, and the key
pack form refusing a pack newer than its server."""

import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from core.models import AuditEvent
from licensing import models as m
from licensing.models import WindowsVersion
from licensing.services.imports import license_server_import
from licensing.services.revocations import license_revoke
from licensing.services.transfers import transfer_file
from licensing.tests.exports import issued, issued_csv, key_pack, key_packs_csv
from licensing.tests.factories import KeyPackFactory, LicenseFactory, LicenseServerFactory, MachineFactory

ISSUED_AT = timezone.now() - timedelta(days=10)


@pytest.fixture
def server19(db):
    return LicenseServerFactory(name="TSLS-19", windows_version=WindowsVersion.WINDOWS_SERVER_2019,
                                builtin_cal_for_pro_clients=False)


@pytest.fixture
def pack19(server19):
    # 10 installed: 2 may be revoked at one time.
    return KeyPackFactory(license_server=server19, key_pack_id=1900, product_version=WindowsVersion.WINDOWS_SERVER_2019,
                          total_licenses=10)


def cal(pack, hostname, **fields):
    return LicenseFactory(key_pack=pack, machine=MachineFactory(hostname=hostname), issued_at=ISSUED_AT, **fields)


def revoke(client, lic, **data):
    return client.post(reverse("license-revoke", args=[lic.pk]),
                       {f"revoke-{name}": value for name, value in data.items()})


def snapshot_of_state():
    return (list(m.License.objects.order_by("pk").values_list("pk", "status", "end_reason", "ended_at")),
            m.Revocation.objects.count(), AuditEvent.objects.count())


def quota_text(page: str) -> str:
    found = re.search(r'<p id="revocation-quota"[^>]*>([^<]+)</p>', page)
    assert found, "the page shows no revocation quota"
    return found.group(1)


def test_the_page_offers_revocation_with_the_servers_quota(client, admin_user, pack19):
    lic = cal(pack19, "ws-19-01")
    client.force_login(admin_user)
    page = client.get(lic.get_absolute_url()).content.decode()
    assert f'action="{reverse("license-revoke", args=[lic.pk])}"' in page
    assert quota_text(page) == "0 of 2 revocation places used, 2 left."
    assert "at most 20% of the 10 Windows Server 2019 per-device CALs installed" in page


def test_revoking_through_the_page_frees_the_seat_and_takes_a_quota_place(client, admin_user, pack19):
    lic = cal(pack19, "ws-19-01")
    client.force_login(admin_user)
    response = revoke(client, lic, note="Reimaged; new hardware id")
    assert response.status_code == 302 and response["Location"] == lic.get_absolute_url()

    lic.refresh_from_db()
    revocation = m.Revocation.objects.get(license=lic)
    assert (lic.status, lic.end_reason) == (m.LicenseStatus.REVOKED, m.LicenseEndReason.REVOKED)
    assert (revocation.recorded_by, revocation.note) == (admin_user, "Reimaged; new hardware id")
    assert AuditEvent.objects.filter(action="license.revoked", object_id=str(lic.pk)).count() == 1

    page = client.get(lic.get_absolute_url()).content.decode()
    assert "revoked on" in page and "its seat is back in key pack 1900" in page  # the success message
    assert '<span class="status status-revoked">Revoked</span>' in page
    facts = re.search(r'<dl class="facts" id="revocation-facts">(.*?)</dl>', page, re.S).group(1)
    holds_until = timezone.localdate(revocation.revoked_at + timedelta(days=89))
    revoked_on = facts.split("<dt>Revoked</dt>")[1].split("</dd>")[0]
    assert revoked_on.endswith(f">{timezone.localtime(revocation.revoked_at):%Y-%m-%d %H:%M}</time>")
    assert "<dt>End reason</dt><dd>Revoked in RD Licensing Manager</dd>" in facts
    assert f"<dt>Holds a quota place until</dt><dd>{holds_until:%Y-%m-%d}</dd>" in facts
    assert "<dt>Recorded by</dt><dd>alice on " in facts
    assert "<dt>Note</dt><dd>Reimaged; new hardware id</dd>" in facts
    assert quota_text(page) == f"1 of 2 revocation places used, 1 left; next frees on {holds_until:%Y-%m-%d}."
    assert 'aria-label="Revoke"' not in page  # no second revocation offered


def test_a_revocation_recorded_for_an_earlier_moment(client, admin_user, pack19):
    lic = cal(pack19, "ws-19-01")
    when = timezone.localtime(timezone.now() - timedelta(days=2)).replace(second=0, microsecond=0)
    client.force_login(admin_user)
    assert revoke(client, lic, revoked_at=f"{when:%Y-%m-%dT%H:%M}").status_code == 302
    lic.refresh_from_db()
    assert lic.revoked_at == when
    assert m.Revocation.objects.get(license=lic).holds_quota_until == when + timedelta(days=89)


def _refused(client, lic, code, sentence, **data):
    before = snapshot_of_state()
    response = revoke(client, lic, **data)
    page = response.content.decode()
    assert response.status_code == 409, page
    alert = re.search(r'<p class="refusal" role="alert">(.*?)</p>', page, re.S)
    assert alert, "no refusal shown"
    assert sentence in alert.group(1)
    assert f'<code class="refusal-code">{code}</code>' in alert.group(1)
    assert snapshot_of_state() == before


def test_refused_on_a_server_older_than_2008_r2(client, admin_user, key_pack):
    lic = cal(key_pack, "ws-2003-01")  # TSLS-HQ runs Windows Server 2003
    client.force_login(admin_user)
    _refused(client, lic, "revoke_not_supported", "revocation exists from Windows Server 2008 R2 on")


def test_refused_for_a_temporary_cal(client, admin_user, pack19):
    temp = m.License.objects.create(
        machine=MachineFactory(hostname="ws-temp"), license_server=pack19.license_server,
        product_version=pack19.product_version, kind=m.LicenseKind.TEMPORARY, issued_at=ISSUED_AT,
        expires_at=ISSUED_AT + timedelta(days=90))
    client.force_login(admin_user)
    _refused(client, temp, "revoke_not_supported", "is temporary; only permanent per-device CALs are revoked")


def test_refused_when_the_quota_is_used_up(client, admin_user, server19):
    small = KeyPackFactory(license_server=server19, key_pack_id=1901, total_licenses=5,
                           product_version=WindowsVersion.WINDOWS_SERVER_2019)  # quota 1
    first, second = cal(small, "ws-19-01"), cal(small, "ws-19-02")
    license_revoke(license=first, actor=admin_user)
    client.force_login(admin_user)
    page = client.get(second.get_absolute_url()).content.decode()
    assert quota_text(page).startswith("1 of 1 revocation place used, 0 left; next frees on ")
    assert "No place is free now" in page
    _refused(client, second, "revoke_quota_exceeded", "at most 1 (20%) may be revoked at one time, and 1 already are")


def test_refused_while_a_transfer_is_open(client, admin_user, pack19):
    lic = cal(pack19, "ws-19-01")
    transfer = transfer_file(license=lic, target_machine=MachineFactory(hostname="ws-19-new"), reason="replaced",
                             actor=admin_user)
    client.force_login(admin_user)
    page = client.get(lic.get_absolute_url()).content.decode()
    assert 'aria-label="Revoke"' not in page
    assert "transfer_pending" in re.search(r'id="revocation-reason">(.*?)</p>', page, re.S).group(1)
    _refused(client, lic, "transfer_pending", f"has open transfer request #{transfer.pk} (requested)")


def test_refused_a_second_time(client, admin_user, pack19):
    lic = cal(pack19, "ws-19-01")
    license_revoke(license=lic, actor=admin_user)
    client.force_login(admin_user)
    _refused(client, lic, "revoke_not_supported", "is revoked; only an active CAL is revoked")


def test_a_future_moment_is_a_field_error_and_changes_nothing(client, admin_user, pack19):
    lic = cal(pack19, "ws-19-01")
    client.force_login(admin_user)
    before = snapshot_of_state()
    later = timezone.localtime(timezone.now() + timedelta(days=3))
    response = revoke(client, lic, revoked_at=f"{later:%Y-%m-%dT%H:%M}")
    assert response.status_code == 400
    assert response.context["revoke_form"].errors["revoked_at"] == ["A revocation cannot be in the future."]
    assert 'class="field-error"' in response.content.decode()
    assert snapshot_of_state() == before


def test_the_page_says_why_a_cal_on_an_older_server_is_not_revocable(client, admin_user, key_pack):
    lic = cal(key_pack, "ws-2003-01")
    client.force_login(admin_user)
    page = client.get(lic.get_absolute_url()).content.decode()
    reason = re.search(r'id="revocation-reason">(.*?)</p>', page, re.S).group(1)
    assert "License server TSLS-HQ runs Windows Server 2003; revocation exists from Windows Server 2008 R2 on" in reason
    assert "moves by the one-time transfer" in reason and "revoke_not_supported" in reason
    assert 'aria-label="Revoke"' not in page and 'id="revocation-quota"' not in page


@pytest.mark.parametrize("who", ["requester", "auditor"])
def test_only_admins_revoke(client, request, who, pack19):
    lic = cal(pack19, "ws-19-01")
    client.force_login(request.getfixturevalue(who))
    page = client.get(lic.get_absolute_url()).content.decode()
    assert 'aria-label="Revoke"' not in page
    assert quota_text(page) == "0 of 2 revocation places used, 2 left."
    assert "An administrator records a revocation" in page
    before = snapshot_of_state()
    assert revoke(client, lic, note="x").status_code == 403
    assert snapshot_of_state() == before


def test_a_revocation_a_snapshot_showed_names_its_snapshot(client, admin_user, server19):
    pack = key_pack(1950, 10, issued=1)
    first = license_server_import(server_name=server19.name, actor=admin_user,
                                  files=[key_packs_csv(pack), issued_csv(issued(501, 1950, "ws-snap-01"))])
    assert first.committed
    second = license_server_import(server_name=server19.name, actor=admin_user, files=[
        key_packs_csv(key_pack(1950, 10)), issued_csv(issued(501, 1950, "ws-snap-01", status=4))])
    assert second.committed
    lic = m.License.objects.get(license_id=501)
    assert lic.status == m.LicenseStatus.REVOKED
    client.force_login(admin_user)
    page = client.get(lic.get_absolute_url()).content.decode()
    assert f"<dt>Recorded by</dt><dd>snapshot #{second.snapshot_id}</dd>" in page


# --- key packs ---------------------------------------------------------------------------------


def test_key_pack_pages_show_revoked_seats(client, admin_user, pack19):
    cals = [cal(pack19, f"ws-19-{i:02d}") for i in range(3)]
    license_revoke(license=cals[0], actor=admin_user)
    client.force_login(admin_user)
    page = client.get(pack19.get_absolute_url()).content.decode()
    assert "<dt>Issued</dt><dd>2</dd>" in page and "<dt>Available</dt><dd>8</dd>" in page
    revoked = re.search(r'<dd id="pack-revoked">(.*?)</dd>', page, re.S).group(1)
    assert revoked.startswith("1 ") and "their seats came back to this pack" in revoked

    listing = client.get(reverse("keypack-list"), {"license_server": pack19.license_server_id})
    assert [(p.issued_count, p.available_count, p.revoked_count) for p in listing.context["rows"]] == [(2, 8, 1)]
    listed = listing.content.decode()
    headers = [re.sub(r"<[^>]+>", "", h).strip() for h in re.findall(r'<th scope="col"[^>]*>(.*?)</th>', listed, re.S)]
    assert headers[headers.index("Total"):headers.index("Total") + 4] == ["Total", "Issued", "Available", "Revoked"]
    assert re.findall(r'<td class="num">(\d+)</td>', listed) == ["10", "2", "8", "1"]


def test_the_key_pack_form_refuses_a_pack_newer_than_its_server(client, admin_user, server19):
    client.force_login(admin_user)
    form = client.get(reverse("keypack-new")).content.decode()
    assert f'<option value="{server19.pk}">TSLS-19 (Windows Server 2019)</option>' in form
    data = {"license_server": server19.pk, "key_pack_id": 2200, "product_version": WindowsVersion.WINDOWS_SERVER_2022,
            "cal_type": m.CalType.PER_DEVICE, "license_program": m.LicenseProgram.SELECT, "total_licenses": 25,
            "installed_on": timezone.localdate().isoformat()}
    before = (m.KeyPack.objects.count(), AuditEvent.objects.count())
    response = client.post(reverse("keypack-new"), data)
    page = response.content.decode()
    assert response.status_code == 409
    alert = re.search(r'<p class="refusal" role="alert">(.*?)</p>', page, re.S).group(1)
    assert "License server TSLS-19 runs Windows Server 2019; it cannot hold Windows Server 2022 CALs" in alert
    assert '<code class="refusal-code">version_not_supported</code>' in alert
    assert page.count("it cannot hold Windows Server 2022 CALs") == 1  # shown once, not again as a form error
    assert (m.KeyPack.objects.count(), AuditEvent.objects.count()) == before
    # The same pack of the server's own version is installed.
    response = client.post(reverse("keypack-new"), {**data, "product_version": WindowsVersion.WINDOWS_SERVER_2019})
    assert response.status_code == 302
    assert m.KeyPack.objects.filter(license_server=server19, key_pack_id=2200).exists()
