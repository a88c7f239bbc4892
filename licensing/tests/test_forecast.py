"""Rule 14, the shortfall forecast, and per-user CALs in compliance."""

from datetime import datetime, time, timedelta

import pytest
from django.core import mail
from django.utils import timezone

from core.models import AlertRecord
from licensing import alerts
from licensing import models as m
from licensing.selectors import compliance_rows, forecast_rows, shortfall_date
from licensing.services.imports import license_server_import
from licensing.services.licenses import license_issue_permanent, license_issue_temporary
from licensing.tests.exports import issued, issued_csv, key_pack, key_packs_csv
from licensing.tests.factories import KeyPackFactory, LicenseServerFactory, MachineFactory
from portal.tests.api_mixins import api_client

pytestmark = pytest.mark.django_db
PRODUCT = "windows_server_2019"
NOW = timezone.make_aware(datetime.combine(timezone.localdate(), time(9, 0)))


@pytest.fixture
def server_2019(db):
    return LicenseServerFactory(name="TSLS-2019", windows_version=PRODUCT, builtin_cal_for_pro_clients=False)


def temporaries(server, admin_user, *days_left):
    """Active temporary CALs ending in these many days from NOW."""
    for days in days_left:
        lic = license_issue_temporary(machine=MachineFactory(), license_server=server, product_version=PRODUCT,
                                      actor=admin_user)
        m.License.objects.filter(pk=lic.pk).update(expires_at=NOW + timedelta(days=days))


def seats(server, admin_user, total, issued_count=0):
    pack = KeyPackFactory(license_server=server, product_version=PRODUCT, total_licenses=total)
    for _ in range(issued_count):
        license_issue_permanent(machine=MachineFactory(), key_pack=pack, actor=admin_user)
    return pack


def day(n):
    return timezone.localdate(NOW) + timedelta(days=n)


def test_the_shortfall_is_the_first_day_more_have_lost_their_cal_than_seats_are_free(server_2019, admin_user):
    seats(server_2019, admin_user, total=5, issued_count=3)  # 2 free
    temporaries(server_2019, admin_user, 5, 10, 10, 20)

    (row,) = forecast_rows(now=NOW)
    assert (row.license_server, row.product_version, row.free_seats) == (server_2019.pk, PRODUCT, 2)
    assert row.temporary_ending == [{"date": day(5), "count": 1}, {"date": day(10), "count": 2},
                                    {"date": day(20), "count": 1}]
    assert row.shortfall_on == day(10)  # 1 lost by day 5, 3 by day 10: more than 2 free


def test_no_shortfall_while_the_free_seats_cover_every_temporary_cal(server_2019, admin_user):
    seats(server_2019, admin_user, total=3)
    temporaries(server_2019, admin_user, 4, 8, 30)
    assert forecast_rows(now=NOW)[0].shortfall_on is None
    temporaries(server_2019, admin_user, 40)
    assert forecast_rows(now=NOW)[0].shortfall_on == day(40)


def test_a_temporary_cal_past_its_date_counts_as_ending_today(server_2019, admin_user):
    temporaries(server_2019, admin_user, -2)  # the hourly task has not expired it yet
    (row,) = forecast_rows(now=NOW)
    assert (row.free_seats, row.temporary_ending, row.shortfall_on) == (0, [{"date": day(0), "count": 1}], day(0))


def test_shortfall_date_by_itself():
    assert shortfall_date(0, []) is None
    assert shortfall_date(1, [(day(1), 1), (day(2), 1)]) == day(2)
    assert shortfall_date(5, [(day(1), 5)]) is None


def test_the_api_and_compliance_show_the_same_date(server_2019, admin_user, auditor, server):
    seats(server_2019, admin_user, total=1)
    temporaries(server_2019, admin_user, 12, 12)
    KeyPackFactory(license_server=server)  # another server, no temporary CALs: no shortfall
    client = api_client(auditor)
    body = client.get("/api/v1/forecast/", {"license_server": server_2019.pk}).json()
    assert body["next"] is None
    (row,) = body["results"]
    expected = (timezone.localdate() + timedelta(days=12)).isoformat()
    assert row["temporary_ending"][0]["count"] == 2 and row["shortfall_on"] == row["temporary_ending"][0]["date"]
    assert set(row) == {"license_server", "product_version", "free_seats", "temporary_ending", "shortfall_on"}
    assert row["shortfall_on"] == expected
    everything = client.get("/api/v1/forecast/").json()["results"]
    assert {(r["license_server"], r["shortfall_on"] is None) for r in everything} == {
        (server_2019.pk, False), (server.pk, True)}
    compliance = {r["license_server"]: r for r in client.get("/api/v1/compliance/").json()["results"]}
    assert compliance[server_2019.pk]["shortfall_on"] == row["shortfall_on"]
    assert client.get("/api/v1/forecast/", {"license_server": "x"}).status_code == 400


def test_per_user_cals_installed_and_issued_with_over_allocation(server_2019):
    """The server does not enforce per-user CALs; the latest snapshot's issuances are counted."""
    packs = key_packs_csv(key_pack(40, 2, product=PRODUCT, per_user=True), key_pack(41, 10, issued=1))
    users = [issued(7000 + n, 40, "", user=f"CONTOSO\\user{n}") for n in range(3)]
    report = license_server_import(server_name="TSLS-2019", actor="alice",
                                   files=[packs, issued_csv(*users, issued(7100, 41, "WS-1"))])
    assert report.committed
    (row,) = compliance_rows()
    assert (row.per_user_installed, row.per_user_issued, row.per_user_over_allocated) == (2, 3, True)
    assert (row.installed, row.issued) == (10, 1)  # per-user CALs never count as per-device seats
    # A later snapshot lists fewer: the count follows the latest snapshot.
    report = license_server_import(server_name="TSLS-2019", actor="alice",
                                   files=[packs, issued_csv(users[0], issued(7100, 41, "WS-1"))])
    assert report.committed
    (row,) = compliance_rows()
    assert (row.per_user_issued, row.per_user_over_allocated) == (1, False)


@pytest.fixture
def recipients(settings):
    settings.PORTAL_ALERT_RECIPIENTS = ["licensing@example.com"]


def test_the_shortfall_is_alerted_once_at_30_and_once_at_7_days(server_2019, admin_user, recipients):
    temporaries(server_2019, admin_user, 25)
    assert alerts.alert_shortfalls(now=NOW - timedelta(days=6)) == 0  # 31 days ahead: not yet
    assert alerts.alert_shortfalls(now=NOW - timedelta(days=5)) == 1  # 30 days ahead
    assert len(mail.outbox) == 1 and "in 30 days" in mail.outbox[0].body
    assert "TSLS-2019, Windows Server 2019: 0 permanent seat(s) free, 1 temporary CAL(s)" in mail.outbox[0].body
    assert alerts.alert_shortfalls(now=NOW) == 0  # 25 days: the 30-day alert went out already
    assert alerts.alert_shortfalls(now=NOW + timedelta(days=17)) == 0  # 8 days ahead
    assert alerts.alert_shortfalls(now=NOW + timedelta(days=18)) == 1  # 7 days ahead
    assert len(mail.outbox) == 2 and "in 7 days" in mail.outbox[1].body
    assert alerts.alert_shortfalls(now=NOW + timedelta(days=19)) == 0
    assert sorted(AlertRecord.objects.values_list("threshold", flat=True)) == [
        f"30d:{day(25).isoformat()}", f"7d:{day(25).isoformat()}"]


def test_a_shortfall_first_seen_within_7_days_sends_one_mail(server_2019, admin_user, recipients):
    temporaries(server_2019, admin_user, 3)
    assert alerts.alert_shortfalls(now=NOW) == 1
    assert alerts.alert_shortfalls(now=NOW) == 0
    assert len(mail.outbox) == 1
    assert AlertRecord.objects.filter(kind="shortfall").count() == 2  # both thresholds are done


def test_a_shortfall_moving_earlier_is_news_and_moving_later_is_not(server_2019, admin_user, recipients):
    temporaries(server_2019, admin_user, 20)
    assert alerts.alert_shortfalls(now=NOW) == 1
    m.License.objects.update(expires_at=NOW + timedelta(days=26))  # later: no news
    assert alerts.alert_shortfalls(now=NOW) == 0
    m.License.objects.update(expires_at=NOW + timedelta(days=12))  # earlier than what was alerted
    assert alerts.alert_shortfalls(now=NOW) == 1
    assert len(mail.outbox) == 2


def test_no_recipients_no_alert_and_no_record(server_2019, admin_user, settings):
    settings.PORTAL_ALERT_RECIPIENTS = []
    temporaries(server_2019, admin_user, 3)
    assert alerts.alert_shortfalls(now=NOW) == 0
    assert not AlertRecord.objects.exists() and not mail.outbox
