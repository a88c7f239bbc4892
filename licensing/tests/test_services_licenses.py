"""Rules 1-6 through their services: each one refusing, and the happy paths."""

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from core.models import AuditEvent
from inventory.models import MachineStatus, OsEdition
from inventory.services import machine_create, machine_retire, machine_update
from licensing.models import CalType, KeyPack, License, LicenseEndReason, LicenseKind, LicenseStatus, WindowsVersion
from licensing.services.licenses import (
    license_expire_temporary,
    license_issue_permanent,
    license_issue_temporary,
)
from licensing.services.servers import key_pack_install, key_pack_update, license_server_create
from licensing.tests.factories import KeyPackFactory, LicenseServerFactory, MachineFactory
from licensing.tests.helpers import refused

pytestmark = pytest.mark.django_db
W2003 = WindowsVersion.WINDOWS_SERVER_2003


def issue(machine, pack, actor):
    return license_issue_permanent(machine=machine, key_pack=pack, actor=actor)


def test_issue_permanent_writes_license_and_event(admin_user, machine, key_pack):
    license = issue(machine, key_pack, admin_user)
    assert license.kind == LicenseKind.PERMANENT and license.status == LicenseStatus.ACTIVE
    assert license.license_server == key_pack.license_server
    pack = KeyPack.objects.with_counts().get(pk=key_pack.pk)
    assert (pack.issued_count, pack.available_count) == (1, 4)
    event = AuditEvent.objects.get()
    assert (event.actor, event.action, event.object_id) == ("alice", "license.issued", str(license.pk))
    assert "ws-xphome-01" in event.summary


def test_rule1_no_licenses_available(admin_user, server):
    pack = KeyPackFactory(license_server=server, total_licenses=2)
    for _ in range(2):
        issue(MachineFactory(), pack, admin_user)
    with refused("no_licenses_available") as info:
        issue(MachineFactory(), pack, admin_user)
    assert f"Key pack {pack.key_pack_id}" in info.value.detail and "2 of 2" in info.value.detail


def test_rule1_transferred_seat_does_not_come_back(admin_user, server):
    pack = KeyPackFactory(license_server=server, total_licenses=1)
    license = issue(MachineFactory(), pack, admin_user)
    License.objects.filter(pk=license.pk).update(
        status=LicenseStatus.TRANSFERRED, ended_at=timezone.now()
    )
    with refused("no_licenses_available"):
        issue(MachineFactory(), pack, admin_user)


def test_rule2_per_user_pack_never_issues(admin_user, server, machine):
    pack = KeyPackFactory(license_server=server, cal_type=CalType.PER_USER)
    with refused("per_user_key_pack") as info:
        issue(machine, pack, admin_user)
    assert "per user" in info.value.detail


@pytest.mark.parametrize(
    "edition",
    [OsEdition.WINDOWS_2000_PROFESSIONAL, OsEdition.WINDOWS_2000_SERVER, OsEdition.WINDOWS_XP_PROFESSIONAL],
)
def test_rule3_os_includes_cal(admin_user, key_pack, edition):
    machine = MachineFactory(os_edition=edition)
    with refused("os_includes_cal"):
        issue(machine, key_pack, admin_user)
    with refused("os_includes_cal"):
        license_issue_temporary(
            machine=machine, license_server=key_pack.license_server, product_version=W2003,
            actor=admin_user,
        )


def test_rule3_xp_home_needs_a_cal_and_flag_off_issues(admin_user):
    server = LicenseServerFactory(builtin_cal_for_pro_clients=False)
    pack = KeyPackFactory(license_server=server)
    assert issue(MachineFactory(os_edition=OsEdition.WINDOWS_XP_PROFESSIONAL), pack, admin_user)
    flag_on = KeyPackFactory(license_server=LicenseServerFactory(builtin_cal_for_pro_clients=True))
    assert issue(MachineFactory(os_edition=OsEdition.WINDOWS_XP_HOME), flag_on, admin_user)


def test_rule4_one_active_permanent_per_product(admin_user, machine, key_pack, server):
    issue(machine, key_pack, admin_user)
    other_pack = KeyPackFactory(license_server=server)
    with refused("machine_already_licensed") as info:
        issue(machine, other_pack, admin_user)
    assert machine.hostname in info.value.detail
    # Another product is fine.
    assert issue(machine, KeyPackFactory(license_server=server, product_version="windows_server_2008"),
                 admin_user)


def test_rule4_no_temporary_while_permanent(admin_user, machine, key_pack, server):
    issue(machine, key_pack, admin_user)
    with refused("machine_already_licensed"):
        license_issue_temporary(machine=machine, license_server=server, product_version=W2003,
                                actor=admin_user)


def test_rule4_permanent_ends_the_temporary(admin_user, machine, key_pack, server):
    temporary = license_issue_temporary(machine=machine, license_server=server, product_version=W2003,
                                        actor=admin_user)
    permanent = issue(machine, key_pack, admin_user)
    temporary.refresh_from_db()
    assert temporary.status == LicenseStatus.EXPIRED
    assert temporary.end_reason == LicenseEndReason.REPLACED_BY_PERMANENT
    assert permanent.status == LicenseStatus.ACTIVE


def test_rule5_temporary_lasts_90_days_and_only_once(admin_user, machine, server):
    temporary = license_issue_temporary(machine=machine, license_server=server, product_version=W2003,
                                        actor=admin_user)
    assert temporary.expires_at - temporary.issued_at == timedelta(days=90)
    with refused("temporary_already_used"):
        license_issue_temporary(machine=machine, license_server=server, product_version=W2003,
                                actor=admin_user)
    # Still refused after it expired: once means once.
    assert license_expire_temporary(license=temporary, now=temporary.expires_at + timedelta(seconds=1))
    with refused("temporary_already_used"):
        license_issue_temporary(machine=machine, license_server=server, product_version=W2003,
                                actor=admin_user)


def test_rule5_expire_is_idempotent(admin_user, machine, server):
    temporary = license_issue_temporary(machine=machine, license_server=server, product_version=W2003,
                                        actor=admin_user)
    assert not license_expire_temporary(license=temporary)  # not due yet
    later = temporary.expires_at + timedelta(minutes=1)
    assert license_expire_temporary(license=temporary, now=later)
    assert not license_expire_temporary(license=temporary, now=later)
    assert AuditEvent.objects.filter(action="license.expired").count() == 1
    assert AuditEvent.objects.get(action="license.expired").actor == "system"


def test_rule6_machine_retired(admin_user, machine, key_pack, server):
    machine_retire(machine=machine, actor=admin_user)
    with refused("machine_retired"):
        issue(machine, key_pack, admin_user)
    with refused("machine_retired"):
        license_issue_temporary(machine=machine, license_server=server, product_version=W2003,
                                actor=admin_user)
    with refused("invalid_state"):
        machine_retire(machine=machine, actor=admin_user)
    with refused("invalid_state"):
        machine_update(machine=machine, actor=admin_user, data={"status": MachineStatus.ACTIVE})


def test_below_issued(admin_user, key_pack):
    for _ in range(3):
        issue(MachineFactory(), key_pack, admin_user)
    with refused("below_issued") as info:
        key_pack_update(key_pack=key_pack, actor=admin_user, data={"total_licenses": 2})
    assert "3" in info.value.detail
    key_pack_update(key_pack=key_pack, actor=admin_user, data={"total_licenses": 3})
    key_pack.refresh_from_db()
    assert key_pack.total_licenses == 3


def test_key_pack_product_fixed_once_issued(admin_user, key_pack, machine):
    issue(machine, key_pack, admin_user)
    with pytest.raises(ValidationError) as info:
        key_pack_update(key_pack=key_pack, actor=admin_user, data={"product_version": "windows_server_2008"})
    assert "product_version" in info.value.message_dict


def test_install_key_pack_and_bad_input(admin_user, server):
    pack = key_pack_install(
        actor=admin_user, license_server=server, key_pack_id=77, product_version=W2003,
        cal_type=CalType.PER_DEVICE, license_program="open", total_licenses=25,
        installed_on=timezone.now().date(),
    )
    assert pack.origin == "original"
    events = AuditEvent.objects.count()
    bad = [
        {"key_pack_id": 77},  # duplicate KeyPackId on the same server
        {"key_pack_id": 78, "total_licenses": 0},
        {"key_pack_id": 79, "product_version": "windows_95"},
        {"key_pack_id": 80, "license_program": "gift"},
    ]
    for override in bad:
        fields = dict(
            actor=admin_user, license_server=server, key_pack_id=77, product_version=W2003,
            cal_type=CalType.PER_DEVICE, license_program="open", total_licenses=25,
            installed_on=timezone.now().date(),
        ) | override
        with pytest.raises(ValidationError):
            key_pack_install(**fields)
    assert KeyPack.objects.count() == 1 and AuditEvent.objects.count() == events
    # The same KeyPackId on another server is fine.
    other = LicenseServerFactory()
    assert key_pack_install(
        actor=admin_user, license_server=other, key_pack_id=77, product_version=W2003,
        cal_type=CalType.PER_DEVICE, license_program="open", total_licenses=1,
        installed_on=timezone.now().date(),
    )


@pytest.mark.parametrize(
    "hostname",
    ["a" * 64, "x" * 254, "bad host", "under$core", "-leading", "trailing-", "dot..dot", ""],
)
def test_machine_bad_hostnames(admin_user, hostname):
    with pytest.raises(ValidationError) as info:
        machine_create(actor=admin_user, hostname=hostname, os_edition=OsEdition.WINDOWS_10)
    assert "hostname" in info.value.message_dict


def test_machine_hostname_unique_case_insensitive_and_enums(admin_user):
    machine_create(actor=admin_user, hostname="WS-0001.corp.example", os_edition=OsEdition.WINDOWS_10)
    with pytest.raises(ValidationError):
        machine_create(actor=admin_user, hostname="ws-0001.CORP.example", os_edition=OsEdition.WINDOWS_10)
    with pytest.raises(ValidationError) as info:
        machine_create(actor=admin_user, hostname="ws-0002", os_edition="windows_12")
    assert "os_edition" in info.value.message_dict
    assert AuditEvent.objects.filter(action="machine.created").count() == 1


def test_license_server_builtin_flag_defaults_by_version(admin_user):
    old = license_server_create(actor=admin_user, name="LS-2003", windows_version=W2003)
    new = license_server_create(actor=admin_user, name="LS-2019", windows_version="windows_server_2019")
    assert old.builtin_cal_for_pro_clients is True
    assert new.builtin_cal_for_pro_clients is False
    with pytest.raises(ValidationError):
        license_server_create(actor=admin_user, name="ls-2003", windows_version=W2003)
