"""Rules 12 and 13 under real concurrency on PostgreSQL: the key pack locks keep the
revocation quota, and the server row's locks keep a server from being set back below a pack
that lands at the same moment."""

from collections import Counter

import pytest
from django.db import connection

from core.audit import audit_verify_chain
from licensing.models import KeyPack, License, LicenseStatus, Revocation
from licensing.services.licenses import license_issue_permanent
from licensing.services.revocations import license_revoke
from licensing.tests.factories import KeyPackFactory, LicenseServerFactory, MachineFactory
from licensing.tests.test_concurrency import THREADS, race

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def _needs_postgres():
    if connection.vendor != "postgresql":
        pytest.skip("row locks and concurrent transactions need PostgreSQL (SQLite serialises writers)")


def test_24_concurrent_revokes_against_a_quota_of_4(admin_user):
    server = LicenseServerFactory(name="TSLS-2022", windows_version="windows_server_2022",
                                  builtin_cal_for_pro_clients=False)
    # 24 CALs installed in packs of 8, 12 and 4 x 1, all issued: 24 * 20% = 4.8, so 4 places,
    # counted across the packs of the version.
    packs = [KeyPackFactory(license_server=server, product_version="windows_server_2022", total_licenses=n)
             for n in (8, 12, 1, 1, 1, 1)]
    licenses = [license_issue_permanent(machine=MachineFactory(), key_pack=pack, actor=admin_user)
                for pack in packs for _ in range(pack.total_licenses)]
    assert len(licenses) == THREADS

    outcome = race([lambda lic=lic: license_revoke(license=lic, actor=admin_user) for lic in licenses])

    assert outcome == Counter({"ok": 4, "revoke_quota_exceeded": THREADS - 4})
    assert License.objects.filter(status=LicenseStatus.REVOKED).count() == Revocation.objects.count() == 4
    assert sum(p.available_count for p in KeyPack.objects.with_counts()) == 4  # the revoked seats came back
    assert audit_verify_chain().ok


def test_a_server_set_back_and_a_newer_pack_never_both_land():
    from licensing.services.servers import key_pack_install, license_server_update

    for round_ in range(8):
        server = LicenseServerFactory(name=f"TSLS-RACE-{round_}", windows_version="windows_server_2019",
                                      builtin_cal_for_pro_clients=False)
        outcome = race([
            lambda s=server: license_server_update(license_server=s, actor="alice",
                                                   data={"windows_version": "windows_server_2016"}),
            lambda s=server, n=round_: key_pack_install(
                actor="alice", license_server=s, key_pack_id=100 + n, product_version="windows_server_2019",
                cal_type="per_device", license_program="select", total_licenses=5),
        ])
        assert outcome == Counter({"ok": 1, "version_not_supported": 1}), outcome
        server.refresh_from_db()
        held = KeyPack.objects.filter(license_server=server).values_list("product_version", flat=True)
        assert (server.windows_version, list(held)) in [("windows_server_2019", ["windows_server_2019"]),
                                                        ("windows_server_2016", [])]
