"""An import racing portal issuance on PostgreSQL: the key pack lock keeps rule 1."""

from collections import Counter
from pathlib import Path

import pytest
from django.db import connection

from core.audit import audit_verify_chain
from licensing.models import License, LicenseStatus, WindowsVersion
from licensing.services.imports import license_server_import
from licensing.services.licenses import license_issue_permanent
from licensing.tests.factories import KeyPackFactory, LicenseServerFactory, MachineFactory
from licensing.tests.test_concurrency import Refused, race

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]
FILES = Path(__file__).parent / "import_files"


@pytest.fixture(autouse=True)
def _needs_postgres():
    if connection.vendor != "postgresql":
        pytest.skip("row locks and concurrent transactions need PostgreSQL (SQLite serialises writers)")


def test_an_import_and_portal_issuance_never_oversell_a_pack(admin_user):
    server = LicenseServerFactory(name="TSLS-2019", windows_version=WindowsVersion.WINDOWS_SERVER_2019,
                                  builtin_cal_for_pro_clients=False)
    pack = KeyPackFactory(license_server=server, key_pack_id=7, total_licenses=3,
                          product_version=WindowsVersion.WINDOWS_SERVER_2019)
    machines = [MachineFactory() for _ in range(3)]
    files = [(n, (FILES / n).read_bytes()) for n in ("keypacks_ps7.csv", "issued_ps7.csv")]

    def run_import():
        report = license_server_import(server_name="TSLS-2019", files=files, actor=admin_user)
        if not report.committed:
            raise Refused("import_refused")

    outcome = race([run_import] + [
        (lambda m=m: license_issue_permanent(machine=m, key_pack=pack, actor=admin_user)) for m in machines
    ])

    assert not [o for o in outcome if o.startswith("error")], outcome
    issued = License.objects.filter(key_pack=pack, status=LicenseStatus.ACTIVE).count()
    assert issued <= 3
    if outcome["import_refused"]:
        assert outcome == Counter({"ok": 3, "import_refused": 1})
    else:
        assert outcome == Counter({"ok": 2, "no_licenses_available": 2})
    assert issued == 3
    assert audit_verify_chain().ok
