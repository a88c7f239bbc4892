"""Rule 12: revocation in RD Licensing Manager, within 20% of a version's installed CALs."""

from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone

from core.errors import DomainError
from core.models import AuditEvent
from licensing import models as m
from licensing.selectors import compliance_rows
from licensing.services.licenses import license_issue_permanent, license_issue_temporary
from licensing.services.revocations import license_revoke, quota_state
from licensing.services.transfers import transfer_file
from licensing.tests.factories import KeyPackFactory, LicenseFactory, LicenseServerFactory, MachineFactory
from portal.tests.api_mixins import api_client

pytestmark = pytest.mark.django_db
PRODUCT = "windows_server_2019"


@pytest.fixture
def server_2019(db):
    return LicenseServerFactory(name="TSLS-2019", windows_version=PRODUCT, builtin_cal_for_pro_clients=False)


@pytest.fixture
def pack(server_2019):
    return KeyPackFactory(license_server=server_2019, key_pack_id=19, product_version=PRODUCT, total_licenses=10)


def issue(pack, actor, n=1):
    return [license_issue_permanent(machine=MachineFactory(), key_pack=pack, actor=actor) for _ in range(n)]


def state():
    """What a refused revocation must leave as it was."""
    return (list(m.License.objects.order_by("pk").values_list("pk", "status", "end_reason", "ended_at")),
            list(m.Revocation.objects.values_list("pk")), AuditEvent.objects.count())


def test_a_revoked_cal_frees_its_seat_at_once_and_holds_a_quota_place(pack, admin_user):
    lic, _ = issue(pack, admin_user, 2)
    available = m.KeyPack.objects.with_counts().get(pk=pack.pk).available_count

    revoked = license_revoke(license=lic, actor=admin_user, note="PC re-imaged")

    assert (revoked.status, revoked.end_reason) == (m.LicenseStatus.REVOKED, m.LicenseEndReason.REVOKED)
    assert revoked.revoked_at == revoked.ended_at
    assert m.KeyPack.objects.with_counts().get(pk=pack.pk).available_count == available + 1
    revocation = revoked.revocation
    assert (revocation.recorded_by, revocation.note) == (admin_user, "PC re-imaged")
    # A CAL issued in the portal has no known expiry: its place is held for 89 days.
    assert revocation.holds_quota_until == revocation.revoked_at + timedelta(days=89)
    assert quota_state(license_server_id=pack.license_server_id, product_version=PRODUCT) == type(
        quota_state(license_server_id=pack.license_server_id, product_version=PRODUCT))(
        installed=10, quota=2, held=1, next_free_on=timezone.localdate(revocation.holds_quota_until))
    event = AuditEvent.objects.get(action="license.revoked")
    assert event.data["quota"] == {"installed": 10, "quota": 2, "held": 1}
    assert "1 of 2 used" in event.summary
    # The machine that held it needs a new CAL, and may get one.
    assert license_issue_permanent(machine=lic.machine, key_pack=pack, actor=admin_user).status == "active"


def test_a_known_expiry_date_ends_the_quota_place(pack, admin_user):
    lic = LicenseFactory(key_pack=pack, expires_at=timezone.now() + timedelta(days=20))
    revocation = license_revoke(license=lic, actor=admin_user).revocation
    assert revocation.holds_quota_until == lic.expires_at


def test_the_quota_is_twenty_percent_rounded_down_and_frees_on_its_date(pack, admin_user):
    a, b, c = issue(pack, admin_user, 3)  # 10 installed: 2 places
    license_revoke(license=a, actor=admin_user)
    license_revoke(license=b, actor=admin_user)
    before = state()
    with pytest.raises(DomainError) as refused:
        license_revoke(license=c, actor=admin_user)
    assert refused.value.code == "revoke_quota_exceeded"
    free_on = timezone.localdate(a.revocation.holds_quota_until)
    assert str(refused.value.detail).endswith(f"The next place frees on {free_on:%Y-%m-%d}.")
    assert "at most 2 (20%)" in refused.value.detail
    assert state() == before

    # Once the places have freed (their dates passed), a revocation is allowed again.
    m.Revocation.objects.update(holds_quota_until=timezone.now() - timedelta(minutes=1))
    assert license_revoke(license=c, actor=admin_user).status == "revoked"


def test_each_version_on_each_server_has_its_own_quota(server_2019, admin_user):
    small = KeyPackFactory(license_server=server_2019, product_version="windows_server_2016", total_licenses=4)
    big = KeyPackFactory(license_server=server_2019, product_version=PRODUCT, total_licenses=5)
    with pytest.raises(DomainError, match="at most 0"):  # 4 installed: 20% rounds down to none
        license_revoke(license=issue(small, admin_user)[0], actor=admin_user)
    assert license_revoke(license=issue(big, admin_user)[0], actor=admin_user).status == "revoked"


def test_a_late_record_is_refused_when_the_quota_was_full_at_any_moment_of_its_place(pack, admin_user):
    a, b, c = issue(pack, admin_user, 3)
    now = timezone.now()
    for lic in (a, b, c):
        m.License.objects.filter(pk=lic.pk).update(issued_at=now - timedelta(days=200))
    license_revoke(license=a, actor=admin_user, revoked_at=now - timedelta(days=100))  # held until 11 days ago
    license_revoke(license=b, actor=admin_user, revoked_at=now - timedelta(days=10))  # held 79 more days
    # Revoked 50 days ago: its place overlaps a's, then b's: never more than 2 at once.
    assert license_revoke(license=c, actor=admin_user, revoked_at=now - timedelta(days=50)).status == "revoked"
    d = issue(pack, admin_user)[0]
    m.License.objects.filter(pk=d.pk).update(issued_at=now - timedelta(days=200))
    before = state()
    with pytest.raises(DomainError, match="revoke_quota_exceeded|at most 2"):
        license_revoke(license=d, actor=admin_user, revoked_at=now - timedelta(days=60))  # a and c both held then
    assert state() == before


@pytest.mark.parametrize("case", ["old_server", "temporary", "per_user", "expired", "transferred", "revoked",
                                  "pending_transfer"])
def test_what_cannot_be_revoked_is_refused_and_nothing_changes(case, pack, server_2019, admin_user, server):
    if case == "old_server":  # the article's server: a CAL moves by the one-time transfer
        lic = issue(KeyPackFactory(license_server=server), admin_user)[0]
    elif case == "temporary":
        lic = license_issue_temporary(machine=MachineFactory(), license_server=server_2019, product_version=PRODUCT,
                                      actor=admin_user)
    elif case == "per_user":
        lic = LicenseFactory(key_pack=KeyPackFactory(license_server=server_2019, product_version=PRODUCT,
                                                     cal_type="per_user"))
    elif case in ("expired", "transferred"):
        lic = LicenseFactory(key_pack=pack, status=case, ended_at=timezone.now())
    elif case == "revoked":
        lic = issue(pack, admin_user)[0]
        license_revoke(license=lic, actor=admin_user)
    else:
        lic = issue(pack, admin_user)[0]
        transfer_file(license=lic, target_machine=MachineFactory(), reason="Replaced", actor=admin_user)
    before = state()
    with pytest.raises(DomainError) as refused:
        license_revoke(license=lic, actor=admin_user)
    expected = "transfer_pending" if case == "pending_transfer" else "revoke_not_supported"
    assert refused.value.code == expected
    assert f"CAL #{lic.pk}" in refused.value.detail
    assert state() == before


def test_bad_input_and_other_roles_change_nothing(pack, admin_user, requester, auditor):
    lic = issue(pack, admin_user)[0]
    before = state()
    with pytest.raises(ValidationError, match="future"):
        license_revoke(license=lic, actor=admin_user, revoked_at=timezone.now() + timedelta(days=1))
    with pytest.raises(ValidationError, match="before that"):
        license_revoke(license=lic, actor=admin_user, revoked_at=lic.issued_at - timedelta(days=1))
    for actor in (requester, auditor):
        with pytest.raises(PermissionDenied):
            license_revoke(license=lic, actor=actor)
    assert state() == before


def test_the_api_revokes_and_shows_revoked_at(pack, admin_user, requester):
    lic = issue(pack, admin_user)[0]
    url = f"/api/v1/licenses/{lic.pk}/revoke/"
    assert api_client(requester).post(url, {}, format="json").status_code == 403
    response = api_client(admin_user).post(url, {"note": "Stolen laptop"}, format="json")
    assert response.status_code == 200
    body = response.json()
    assert (body["status"], body["end_reason"]) == ("revoked", "revoked")
    assert body["revoked_at"] is not None and body["transferable"] is False
    listed = api_client(admin_user).get("/api/v1/licenses/", {"status": "revoked"}).json()["results"]
    assert [(r["id"], r["revoked_at"]) for r in listed] == [(lic.pk, body["revoked_at"])]
    assert api_client(admin_user).post(url, {}, format="json").json()["code"] == "revoke_not_supported"
    bad = api_client(admin_user).post(f"/api/v1/licenses/{issue(pack, admin_user)[0].pk}/revoke/",
                                      {"revoked_at": "not a date"}, format="json")
    assert bad.status_code == 400 and "revoked_at" in bad.json()


def test_compliance_counts_revoked_cals_holding_places_and_the_quota(pack, admin_user):
    lic = issue(pack, admin_user, 3)[0]
    license_revoke(license=lic, actor=admin_user)
    (row,) = [r for r in compliance_rows() if r.license_server == pack.license_server_id]
    assert (row.installed, row.issued, row.available) == (10, 2, 8)  # a revoked CAL is not issued
    assert (row.revoked, row.revoke_quota, row.revoke_quota_left) == (1, 2, 1)
    m.Revocation.objects.update(holds_quota_until=timezone.now() - timedelta(seconds=1))
    (row,) = [r for r in compliance_rows() if r.license_server == pack.license_server_id]
    assert (row.revoked, row.revoke_quota_left) == (0, 2)
