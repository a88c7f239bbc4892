from django.core.validators import RegexValidator
from django.db import models
from django.db.models.functions import Lower
from django.urls import reverse

# A DNS or NetBIOS host name: labels of letters, digits, '-' and '_', separated by dots,
# each label at most 63 characters and not starting or ending with '-'.
HOSTNAME_MAX_LENGTH = 253
hostname_validator = RegexValidator(
    regex=r"^(?=.{1,253}$)[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?"
    r"(?:\.[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?)*$",
    message="Enter a valid host name: letters, digits, '-' and '_', dot-separated labels "
    "of at most 63 characters, not starting or ending with '-'.",
)


class OsEdition(models.TextChoices):
    WINDOWS_2000_PROFESSIONAL = "windows_2000_professional", "Windows 2000 Professional"
    WINDOWS_2000_SERVER = "windows_2000_server", "Windows 2000 Server"
    WINDOWS_XP_PROFESSIONAL = "windows_xp_professional", "Windows XP Professional"
    WINDOWS_XP_HOME = "windows_xp_home", "Windows XP Home Edition"
    NT4_WORKSTATION = "nt4_workstation", "Windows NT 4.0 Workstation"
    WINDOWS_9X = "windows_9x", "Windows 95/98/Me"
    WINDOWS_CE = "windows_ce", "Windows CE thin client"
    WINDOWS_VISTA = "windows_vista", "Windows Vista"
    WINDOWS_7 = "windows_7", "Windows 7"
    WINDOWS_8 = "windows_8", "Windows 8"
    WINDOWS_10 = "windows_10", "Windows 10"
    WINDOWS_11 = "windows_11", "Windows 11"
    OTHER = "other", "Other"


# Article: "a TS CAL is included with all versions of Windows 2000 and Windows XP Professional".
OS_EDITIONS_WITH_BUILTIN_CAL = frozenset(
    {
        OsEdition.WINDOWS_2000_PROFESSIONAL,
        OsEdition.WINDOWS_2000_SERVER,
        OsEdition.WINDOWS_XP_PROFESSIONAL,
    }
)


class MachineStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    RETIRED = "retired", "Retired"


def hostname_prefix_ids(prefix: str) -> models.QuerySet:
    """Ids of machines whose host name starts with ``prefix``, in any case.

    On PostgreSQL this reads the ``lower(hostname) text_pattern_ops`` index (migration
    0002), so a search box stays fast on 100,000 machines.
    """
    return (
        ClientMachine.objects.alias(lower_hostname=Lower("hostname"))
        .filter(lower_hostname__startswith=prefix.lower())
        .values("pk")
    )


class ClientMachine(models.Model):
    """A computer that connects to terminal servers. Retired, never deleted."""

    hostname = models.CharField(
        max_length=HOSTNAME_MAX_LENGTH, validators=[hostname_validator], db_index=True
    )
    os_edition = models.CharField(max_length=32, choices=OsEdition.choices)
    status = models.CharField(
        max_length=16, choices=MachineStatus.choices, default=MachineStatus.ACTIVE
    )
    hardware_id = models.CharField(max_length=128, blank=True)
    asset_tag = models.CharField(max_length=64, blank=True)
    location = models.CharField(max_length=128, blank=True)
    owner = models.CharField(max_length=128, blank=True)
    notes = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    retired_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["hostname"]
        constraints = [
            models.UniqueConstraint(
                Lower("hostname"),
                name="machine_hostname_unique_ci",
                violation_error_message="A machine with this host name already exists "
                "(host names are compared without regard to case).",
            ),
            models.CheckConstraint(
                condition=models.Q(status__in=MachineStatus.values),
                name="machine_status_valid",
            ),
            models.CheckConstraint(
                condition=models.Q(os_edition__in=OsEdition.values),
                name="machine_os_edition_valid",
            ),
            models.CheckConstraint(
                condition=(
                    models.Q(status=MachineStatus.RETIRED, retired_at__isnull=False)
                    | models.Q(status=MachineStatus.ACTIVE, retired_at__isnull=True)
                ),
                name="machine_retired_at_matches_status",
            ),
        ]
        indexes = [
            models.Index(fields=["status", "hostname"], name="machine_status_host_idx"),
            models.Index(fields=["os_edition", "hostname"], name="machine_os_host_idx"),
        ]

    def __str__(self) -> str:
        return self.hostname

    def get_absolute_url(self) -> str:
        return reverse("machine-detail", args=[self.pk])

    @property
    def is_retired(self) -> bool:
        return self.status == MachineStatus.RETIRED

    @property
    def os_includes_cal(self) -> bool:
        return self.os_edition in OS_EDITIONS_WITH_BUILTIN_CAL
