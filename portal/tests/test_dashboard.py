"""The dashboard's compliance table with revoked CALs against their quota, per-user CALs and
the shortfall date (rules 12 and 14), and its shortfall forecast tile."""

import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from licensing import models as m
from licensing.models import WindowsVersion
from licensing.services.imports import license_server_import
from licensing.services.revocations import license_revoke
from licensing.tests.exports import issued, issued_csv, key_pack, key_packs_csv
from licensing.tests.factories import KeyPackFactory, LicenseFactory, LicenseServerFactory, MachineFactory

NOW = timezone.now()


def server_of(name, version):
    return LicenseServerFactory(name=name, windows_version=version, builtin_cal_for_pro_clients=False)


def permanent(pack, count):
    return [LicenseFactory(key_pack=pack, issued_at=NOW - timedelta(days=30)) for _ in range(count)]


def temporary(server, version, *, ends_in_days):
    expires = NOW + timedelta(days=ends_in_days)
    return m.License.objects.create(
        machine=MachineFactory(), license_server=server, product_version=version, kind=m.LicenseKind.TEMPORARY,
        issued_at=expires - timedelta(days=90), expires_at=expires)


@pytest.fixture
def estate(admin_user):
    """TSLS-19: one of 2 revocation places used. TSLS-USERS: 2 per-user CALs issued, 1 installed.
    TSLS-22: no free seat, a temporary CAL ends in 5 days. TSLS-16: 2 free seats, 3 temporary
    CALs end in 20 days."""
    v19, v22, v16 = (WindowsVersion.WINDOWS_SERVER_2019, WindowsVersion.WINDOWS_SERVER_2022,
                     WindowsVersion.WINDOWS_SERVER_2016)
    s19 = server_of("TSLS-19", v19)
    cals = permanent(KeyPackFactory(license_server=s19, product_version=v19, total_licenses=10), 3)
    license_revoke(license=cals[0], actor=admin_user)
    users = server_of("TSLS-USERS", v19)
    report = license_server_import(server_name=users.name, actor=admin_user, files=[
        key_packs_csv(key_pack(20, 1, per_user=True)),
        issued_csv(issued(40, 20, "", user="CONTOSO\\ann"), issued(41, 20, "", user="CONTOSO\\bo")),
    ])
    assert report.committed
    s22 = server_of("TSLS-22", v22)
    permanent(KeyPackFactory(license_server=s22, product_version=v22, total_licenses=2), 2)
    temporary(s22, v22, ends_in_days=5)
    s16 = server_of("TSLS-16", v16)
    permanent(KeyPackFactory(license_server=s16, product_version=v16, total_licenses=3), 1)
    for _ in range(3):
        temporary(s16, v16, ends_in_days=20)
    return {"s22": s22, "s16": s16}


def compliance_rows(page: str) -> dict[str, list[str]]:
    """The compliance table's cells by server name, tags stripped."""
    table = re.search(r'<table class="compliance-table">.*?<tbody>(.*?)</tbody>', page, re.S).group(1)
    rows = {}
    for row in re.findall(r"<tr>(.*?)</tr>", table, re.S):
        cells = [re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", c)).strip()
                 for c in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)]
        rows[cells[0]] = cells
    return rows


def day(days: int) -> str:
    return f"{timezone.localdate(NOW + timedelta(days=days)):%Y-%m-%d}"


def test_compliance_shows_revoked_per_user_and_the_shortfall_date(client, admin_user, estate):
    client.force_login(admin_user)
    page = client.get(reverse("dashboard")).content.decode()
    header = re.search(r'<table class="compliance-table">\s*<thead>(.*?)</thead>', page, re.S).group(1)
    labels = [re.sub(r"<[^>]+>", "", h).strip() for h in re.findall(r"<th[^>]*>(.*?)</th>", header, re.S)]
    assert labels[-3:] == ["Revoked of quota", "Per user issued of installed", "Shortfall"]
    rows = compliance_rows(page)
    # Revoked against the quota; the revoked CAL's seat is available again (10 installed, 2 issued).
    assert rows["TSLS-19"][3:6] == ["10", "2", "8"]
    assert rows["TSLS-19"][-3:] == ["1 of 2", "—", "—"]
    assert rows["TSLS-USERS"][-2] == "2 of 1 (over-allocated)"
    assert re.search(r'<td class="num over-allocated">2 of 1', page)
    assert page.count('class="num over-allocated"') == 1  # only that row is over-allocated
    assert rows["TSLS-22"][-1] == day(5)
    assert rows["TSLS-16"][-1] == day(20)


def test_the_forecast_tile_lists_shortfalls_soonest_first(client, admin_user, estate):
    client.force_login(admin_user)
    page = client.get(reverse("dashboard")).content.decode()
    tile = re.search(r'<article aria-labelledby="shortfall-heading" id="shortfall-forecast">(.*?)</article>', page,
                     re.S).group(1)
    items = [re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", li)).strip() for li in re.findall(r"<li>(.*?)</li>", tile,
                                                                                          re.S)]
    assert items == [
        f"{day(5)} (in 5 days) TSLS-22: Windows Server 2022: 1 temporary CAL ending by then, 0 free seats",
        f"{day(20)} (in 20 days) TSLS-16: Windows Server 2016: 3 temporary CALs ending by then, 2 free seats",
    ]
    assert f'license_server={estate["s22"].pk}&amp;product_version=windows_server_2022&amp;kind=temporary' in tile
    assert "No shortfall coming" not in tile


def test_the_forecast_tile_says_when_no_shortfall_is_coming(client, admin_user, key_pack):
    # 5 seats free, 2 temporary CALs to end: covered.
    for days in (3, 9):
        temporary(key_pack.license_server, key_pack.product_version, ends_in_days=days)
    client.force_login(admin_user)
    page = client.get(reverse("dashboard")).content.decode()
    tile = re.search(r'id="shortfall-forecast">(.*?)</article>', page, re.S).group(1)
    assert "No shortfall coming" in tile and "<li>" not in tile
    assert compliance_rows(page)["TSLS-HQ"][-1] == "—"
