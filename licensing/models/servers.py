"""License servers and the key packs installed on them.

A key pack's issued and available seats are derived from its licenses, never stored."""

from django.db import models
from django.db.models import Count, F, Q
from django.db.models.functions import Lower
from django.urls import reverse

from licensing.choices import (
    ISSUED_STATUSES,
    VERSIONS_WITH_BUILTIN_PRO_CAL,
    ActivationStatus,
    CalType,
    KeyPackOrigin,
    LicenseKind,
    LicenseProgram,
    WindowsVersion,
)


class LicenseServer(models.Model):
    name = models.CharField(max_length=128)
    windows_version = models.CharField(max_length=32, choices=WindowsVersion.choices)
    server_id = models.CharField("license server ID", max_length=64, blank=True)
    activation_status = models.CharField(
        max_length=16, choices=ActivationStatus.choices, default=ActivationStatus.NOT_ACTIVATED
    )
    builtin_cal_for_pro_clients = models.BooleanField(
        "built-in CAL for Windows 2000/XP Professional clients",
        help_text="On for Windows 2000 Server and Windows Server 2003 by default: their "
        "Windows 2000 and XP Professional clients receive no TS CAL.",
    )
    location = models.CharField(max_length=128, blank=True)
    notes = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                Lower("name"),
                name="license_server_name_unique_ci",
                violation_error_message="A license server with this name already exists.",
            ),
            models.CheckConstraint(
                condition=Q(windows_version__in=WindowsVersion.values),
                name="license_server_windows_version_valid",
            ),
            models.CheckConstraint(
                condition=Q(activation_status__in=ActivationStatus.values),
                name="license_server_activation_status_valid",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @staticmethod
    def default_builtin_cal(windows_version: str) -> bool:
        return windows_version in VERSIONS_WITH_BUILTIN_PRO_CAL


def issued_q(prefix: str = "") -> Q:
    """DOMAIN.md's "issued": permanent CALs that are active or transferred (a transferred
    seat does not come back). ``prefix`` reaches the licenses through a relation."""
    return Q(**{f"{prefix}kind": LicenseKind.PERMANENT, f"{prefix}status__in": ISSUED_STATUSES})


class KeyPackQuerySet(models.QuerySet):
    def with_counts(self):
        """Annotate ``issued_count`` and ``available_count``, derived from the licenses."""
        return self.annotate(
            issued_count=Count("licenses", filter=issued_q("licenses__"))
        ).annotate(available_count=F("total_licenses") - F("issued_count"))


class KeyPack(models.Model):
    """One installation of CALs on a license server. Never deleted."""

    license_server = models.ForeignKey(
        LicenseServer, on_delete=models.PROTECT, related_name="key_packs"
    )
    key_pack_id = models.PositiveBigIntegerField(
        "KeyPackId", help_text="The license server's own KeyPackId."
    )
    product_version = models.CharField(max_length=32, choices=WindowsVersion.choices)
    cal_type = models.CharField(max_length=16, choices=CalType.choices)
    license_program = models.CharField(max_length=32, choices=LicenseProgram.choices)
    agreement_number = models.CharField(max_length=64, blank=True)
    total_licenses = models.PositiveIntegerField()
    installed_on = models.DateField()
    expires_on = models.DateField(null=True, blank=True)
    origin = models.CharField(
        max_length=16, choices=KeyPackOrigin.choices, default=KeyPackOrigin.ORIGINAL
    )
    reissue_request = models.OneToOneField(
        "ReissueRequest",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="key_pack",
    )
    description = models.CharField(max_length=255, blank=True)
    notes = models.TextField(blank=True)
    last_seen_snapshot = models.ForeignKey(
        "licensing.Snapshot", on_delete=models.PROTECT, null=True, blank=True, related_name="+",
        help_text="The latest snapshot of its license server that listed it.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    objects = KeyPackQuerySet.as_manager()

    class Meta:
        ordering = ["license_server_id", "key_pack_id"]
        constraints = [
            models.UniqueConstraint(
                fields=["license_server", "key_pack_id"],
                name="key_pack_id_unique_per_server",
                violation_error_message="This license server already has a key pack with "
                "this KeyPackId.",
            ),
            models.CheckConstraint(
                condition=Q(total_licenses__gt=0), name="key_pack_total_positive"
            ),
            models.CheckConstraint(
                condition=Q(product_version__in=WindowsVersion.values),
                name="key_pack_product_version_valid",
            ),
            models.CheckConstraint(
                condition=Q(cal_type__in=CalType.values), name="key_pack_cal_type_valid"
            ),
            models.CheckConstraint(
                condition=Q(license_program__in=LicenseProgram.values),
                name="key_pack_license_program_valid",
            ),
            models.CheckConstraint(
                condition=(
                    Q(origin=KeyPackOrigin.ORIGINAL, reissue_request__isnull=True)
                    | Q(origin=KeyPackOrigin.REISSUE, reissue_request__isnull=False)
                ),
                name="key_pack_reissue_link_matches_origin",
            ),
        ]
        indexes = [
            models.Index(fields=["product_version"], name="key_pack_product_idx"),
            models.Index(fields=["agreement_number"], name="key_pack_agreement_idx"),
        ]

    def __str__(self) -> str:
        return f"key pack {self.key_pack_id} on {self.license_server}"

    def get_absolute_url(self) -> str:
        return reverse("keypack-detail", args=[self.pk])
