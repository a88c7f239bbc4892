"""The database's last line of defence: constraints hold even when code skips the services."""

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from licensing.models import License, TransferRequest
from licensing.tests.factories import KeyPackFactory, LicenseFactory, MachineFactory, UserFactory

pytestmark = pytest.mark.django_db


def refused_by_database(fn):
    with pytest.raises(IntegrityError), transaction.atomic():
        fn()


def test_one_active_permanent_cal_per_machine_and_product():
    first = LicenseFactory()
    refused_by_database(lambda: LicenseFactory(machine=first.machine, key_pack=KeyPackFactory()))


def test_a_transfer_product_is_never_transferred_away():
    source = LicenseFactory()
    product = LicenseFactory(transferred_from=source)
    refused_by_database(
        lambda: License.objects.filter(pk=product.pk).update(status="transferred", ended_at=timezone.now())
    )


def test_one_open_and_one_completed_transfer_per_license():
    license = LicenseFactory()
    user = UserFactory()
    fields = dict(license=license, source_machine=license.machine, reason="r", requested_by=user)
    TransferRequest.objects.create(target_machine=MachineFactory(), **fields)
    refused_by_database(lambda: TransferRequest.objects.create(target_machine=MachineFactory(), **fields))


def test_four_eyes_and_same_machine_in_the_database():
    license = LicenseFactory()
    user = UserFactory()
    refused_by_database(lambda: TransferRequest.objects.create(
        license=license, source_machine=license.machine, target_machine=license.machine, reason="r",
        requested_by=user))
    refused_by_database(lambda: TransferRequest.objects.create(
        license=license, source_machine=license.machine, target_machine=MachineFactory(), reason="r",
        requested_by=user, approved_by=user, status="approved"))


def test_temporary_cal_needs_an_expiry_and_no_key_pack():
    license = LicenseFactory()
    refused_by_database(lambda: License.objects.filter(pk=license.pk).update(kind="temporary"))


def test_key_pack_total_is_positive():
    pack = KeyPackFactory()
    refused_by_database(lambda: type(pack).objects.filter(pk=pack.pk).update(total_licenses=0))
