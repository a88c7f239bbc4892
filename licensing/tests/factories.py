"""factory_boy factories for the test suite.

Factories build rows directly (fast set-up for tests of reads); tests of rules go
through the services.
"""

from datetime import date, timedelta

import factory
from django.utils import timezone

from core.tests.factories import UserFactory  # noqa: F401 - the licensing tests take it from here
from inventory.models import ClientMachine, OsEdition
from licensing import models as m


class LicenseServerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = m.LicenseServer

    name = factory.Sequence(lambda n: f"TSLS{n:02d}")
    windows_version = m.WindowsVersion.WINDOWS_SERVER_2003
    activation_status = m.ActivationStatus.ACTIVATED
    builtin_cal_for_pro_clients = True


class KeyPackFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = m.KeyPack

    license_server = factory.SubFactory(LicenseServerFactory)
    key_pack_id = factory.Sequence(lambda n: 1000 + n)
    product_version = m.WindowsVersion.WINDOWS_SERVER_2003
    cal_type = m.CalType.PER_DEVICE
    license_program = m.LicenseProgram.SELECT
    agreement_number = factory.Sequence(lambda n: f"AGR-{n:05d}")
    total_licenses = 10
    installed_on = factory.LazyFunction(lambda: date.today() - timedelta(days=400))
    origin = m.KeyPackOrigin.ORIGINAL


class MachineFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ClientMachine

    hostname = factory.Sequence(lambda n: f"ws-{n:05d}")
    os_edition = OsEdition.WINDOWS_XP_HOME


class LicenseFactory(factory.django.DjangoModelFactory):
    """A permanent, active CAL (build through services in tests of the rules)."""

    class Meta:
        model = m.License

    machine = factory.SubFactory(MachineFactory)
    key_pack = factory.SubFactory(KeyPackFactory)
    license_server = factory.SelfAttribute("key_pack.license_server")
    product_version = factory.SelfAttribute("key_pack.product_version")
    kind = m.LicenseKind.PERMANENT
    status = m.LicenseStatus.ACTIVE
    issued_at = factory.LazyFunction(timezone.now)


class CscContactFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = m.CscContact

    location = factory.Sequence(lambda n: f"CSC location {n}")
    phone_number = factory.Sequence(lambda n: f"+1 888 555 {n:04d}")
    hours = "Mon-Fri 08:00-18:00"
