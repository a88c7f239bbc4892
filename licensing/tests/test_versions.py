"""Rule 13: a license server holds CALs of its own Windows version or older, wherever a key
pack or a CAL enters it: the key pack services and API, CSC calls and reissue installs,
temporary CALs, a server's own version, and imports."""

from datetime import timedelta

import pytest
from django.utils import timezone

from core.errors import DomainError
from core.models import AuditEvent
from licensing import models as m
from licensing.services.imports import license_server_import
from licensing.services.licenses import license_issue_temporary
from licensing.services.reissue import reissue_install, reissue_log_call
from licensing.services.servers import key_pack_install, key_pack_update, license_server_update
from licensing.tests.exports import issued, issued_csv, key_pack, key_packs_csv
from licensing.tests.factories import LicenseServerFactory, MachineFactory
from portal.tests.api_mixins import api_client

pytestmark = pytest.mark.django_db


@pytest.fixture
def server_2019(db):
    return LicenseServerFactory(name="TSLS-2019", windows_version="windows_server_2019",
                                builtin_cal_for_pro_clients=False)


def state():
    return (list(m.KeyPack.objects.values_list("pk", "product_version")),
            list(m.License.objects.values_list("pk")), list(m.ReissueRequest.objects.values_list("pk", "status")),
            list(m.LicenseServer.objects.values_list("pk", "windows_version")), AuditEvent.objects.count())


def install(server, product, **extra):
    return key_pack_install(actor="alice", license_server=server, key_pack_id=extra.pop("key_pack_id", 77),
                            product_version=product, cal_type="per_device", license_program="select",
                            total_licenses=10, **extra)


def test_a_server_holds_packs_of_its_own_version_or_older(server_2019):
    assert install(server_2019, "windows_server_2019", key_pack_id=1).pk
    assert install(server_2019, "windows_server_2008_r2", key_pack_id=2).pk
    before = state()
    with pytest.raises(DomainError) as refused:
        install(server_2019, "windows_server_2022", key_pack_id=3)
    assert refused.value.code == "version_not_supported"
    assert refused.value.detail.startswith("License server TSLS-2019 runs Windows Server 2019; it cannot hold "
                                           "Windows Server 2022 CALs")
    assert state() == before


def test_a_packs_product_is_not_edited_to_a_newer_one(server_2019):
    pack = install(server_2019, "windows_server_2016")
    before = state()
    with pytest.raises(DomainError, match="Windows Server 2025"):
        key_pack_update(key_pack=pack, actor="alice", data={"product_version": "windows_server_2025"})
    assert state() == before
    assert key_pack_update(key_pack=pack, actor="alice", data={"product_version": "windows_server_2019"})


def test_a_server_is_not_set_back_below_what_it_holds(server_2019):
    install(server_2019, "windows_server_2019")
    before = state()
    with pytest.raises(DomainError) as refused:
        license_server_update(license_server=server_2019, actor="alice",
                              data={"windows_version": "windows_server_2016"})
    assert refused.value.code == "version_not_supported"
    assert "holds Windows Server 2019 CALs" in refused.value.detail
    assert state() == before
    newer = license_server_update(license_server=server_2019, actor="alice",
                                  data={"windows_version": "windows_server_2022"})
    assert newer.windows_version == "windows_server_2022"


def test_a_temporary_cal_of_a_newer_version_is_refused(server_2019, admin_user):
    before = state()
    with pytest.raises(DomainError, match="version_not_supported|cannot hold"):
        license_issue_temporary(machine=MachineFactory(), license_server=server_2019,
                                product_version="windows_server_2022", actor=admin_user)
    assert state() == before


def test_a_csc_call_and_its_reissued_pack_obey_the_rule(server_2019, admin_user):
    before = state()
    with pytest.raises(DomainError, match="cannot hold Windows Server 2025"):
        reissue_log_call(actor=admin_user, called_at=timezone.now(), license_server=server_2019,
                         product_version="windows_server_2025", license_program="select", quantity_requested=1,
                         csc_location="North America", csc_phone_number="+1 888 571 2048")
    assert state() == before
    # A call logged while the server ran 2022 (then set back without packs): its install is refused.
    server_2019.windows_version = "windows_server_2022"
    server_2019.save()
    call = reissue_log_call(actor=admin_user, called_at=timezone.now(), license_server=server_2019,
                            product_version="windows_server_2022", license_program="select", quantity_requested=1,
                            csc_location="North America", csc_phone_number="+1 888 571 2048")
    m.LicenseServer.objects.filter(pk=server_2019.pk).update(windows_version="windows_server_2019")
    before = state()
    with pytest.raises(DomainError) as refused:
        reissue_install(reissue_request=call, actor=admin_user, key_pack_id=5150, total_licenses=1)
    assert refused.value.code == "version_not_supported"
    assert state() == before


def test_the_api_refuses_with_409_and_its_code(server_2019, admin_user):
    client = api_client(admin_user)
    body = {"license_server": server_2019.pk, "key_pack_id": 22, "product_version": "windows_server_2022",
            "cal_type": "per_device", "license_program": "select", "total_licenses": 10}
    before = state()
    response = client.post("/api/v1/key-packs/", body, format="json")
    assert response.status_code == 409 and response.json()["code"] == "version_not_supported"
    assert state() == before
    created = client.post("/api/v1/key-packs/", body | {"product_version": "windows_server_2019"}, format="json")
    assert created.status_code == 201
    assert created.json()["installed_on"] == timezone.localdate().isoformat()  # today, when not given
    response = client.patch(f"/api/v1/license-servers/{server_2019.pk}/", {"windows_version": "windows_server_2012"},
                            format="json")
    assert response.status_code == 409 and response.json()["code"] == "version_not_supported"


def test_an_import_of_a_newer_pack_imports_nothing(server_2019):
    now = timezone.now()
    files = [key_packs_csv(key_pack(31, 10, issued=1), key_pack(32, 5, product="windows_server_2022")),
             issued_csv(issued(9001, 31, "WS-ALPHA", issued_at=now - timedelta(days=3)))]
    before = state()
    report = license_server_import(server_name="TSLS-2019", actor="alice", files=files)
    assert not report.committed
    (problem,) = report.errors
    assert (problem.file, problem.line, problem.column, problem.code) == ("keypacks.csv", 4, "ProductVersion",
                                                                         "version_not_supported")
    assert "Key pack 32" in problem.message
    assert state() == before and not m.Snapshot.objects.exists()


def test_older_packs_on_a_newer_server_import(server_2019):
    files = [key_packs_csv(key_pack(31, 10, issued=1, product="windows_server_2008_r2"))]
    assert license_server_import(server_name="TSLS-2019", actor="alice", files=files).committed
    assert m.KeyPack.objects.get(key_pack_id=31).product_version == "windows_server_2008_r2"

