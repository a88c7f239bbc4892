"""Issued CALs: permanent ones from a key pack, temporary ones for 90 days."""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.urls import reverse

from core.errors import DomainCode, DomainError
from inventory.models import ClientMachine
from licensing import rules
from licensing.choices import (
    LicenseEndReason,
    LicenseKind,
    LicenseStatus,
    WindowsVersion,
)
from licensing.models.servers import KeyPack, LicenseServer, issued_q


class LicenseQuerySet(models.QuerySet):
    def active(self):
        return self.filter(status=LicenseStatus.ACTIVE)

    def permanent(self):
        return self.filter(kind=LicenseKind.PERMANENT)

    def temporary(self):
        return self.filter(kind=LicenseKind.TEMPORARY)

    def issued(self):
        return self.filter(issued_q())


class License(models.Model):
    """An issued CAL held by one machine. Never deleted."""

    license_id = models.PositiveBigIntegerField(
        "LicenseId",
        null=True,
        blank=True,
        help_text="The license server's own LicenseId, when known (imported licenses).",
    )
    machine = models.ForeignKey(ClientMachine, on_delete=models.PROTECT, related_name="licenses")
    key_pack = models.ForeignKey(
        KeyPack, on_delete=models.PROTECT, null=True, blank=True, related_name="licenses"
    )
    license_server = models.ForeignKey(
        LicenseServer, on_delete=models.PROTECT, related_name="licenses"
    )
    product_version = models.CharField(max_length=32, choices=WindowsVersion.choices)
    kind = models.CharField(max_length=16, choices=LicenseKind.choices)
    status = models.CharField(
        max_length=16, choices=LicenseStatus.choices, default=LicenseStatus.ACTIVE
    )
    issued_at = models.DateTimeField()
    expires_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    end_reason = models.CharField(max_length=32, choices=LicenseEndReason.choices, blank=True)
    transferred_from = models.OneToOneField(
        "self",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="transferred_to",
        help_text="The license this one replaced through a one-time transfer.",
    )
    hardware_id = models.CharField(max_length=128, blank=True)
    last_seen_snapshot = models.ForeignKey(
        "licensing.Snapshot", on_delete=models.PROTECT, null=True, blank=True, related_name="+",
        help_text="The latest snapshot of its license server that listed it.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    objects = LicenseQuerySet.as_manager()

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(kind__in=LicenseKind.values), name="license_kind_valid"
            ),
            models.CheckConstraint(
                condition=Q(status__in=LicenseStatus.values), name="license_status_valid"
            ),
            models.CheckConstraint(
                condition=Q(product_version__in=WindowsVersion.values),
                name="license_product_version_valid",
            ),
            models.CheckConstraint(
                condition=(
                    Q(kind=LicenseKind.PERMANENT, key_pack__isnull=False)
                    | Q(kind=LicenseKind.TEMPORARY, key_pack__isnull=True, expires_at__isnull=False)
                ),
                name="license_kind_matches_source",
            ),
            models.CheckConstraint(
                condition=~Q(status=LicenseStatus.TRANSFERRED, kind=LicenseKind.TEMPORARY),
                name="license_only_permanent_transferred",
            ),
            # Rule 12: only permanent CALs are revoked.
            models.CheckConstraint(
                condition=~Q(status=LicenseStatus.REVOKED, kind=LicenseKind.TEMPORARY),
                name="license_only_permanent_revoked",
            ),
            # Rule 7: the license a transfer creates can never be transferred away.
            models.CheckConstraint(
                condition=~Q(status=LicenseStatus.TRANSFERRED, transferred_from__isnull=False),
                name="license_transfer_product_not_transferred",
            ),
            models.CheckConstraint(
                condition=Q(status=LicenseStatus.ACTIVE, ended_at__isnull=True)
                | (~Q(status=LicenseStatus.ACTIVE) & Q(ended_at__isnull=False)),
                name="license_ended_at_matches_status",
            ),
            # Rule 4: one active permanent CAL per machine and product.
            models.UniqueConstraint(
                fields=["machine", "product_version"],
                condition=Q(kind=LicenseKind.PERMANENT, status=LicenseStatus.ACTIVE),
                name="license_one_active_permanent_per_product",
                violation_error_message="This machine already holds an active permanent "
                "CAL for this product.",
            ),
            # Rule 5: a machine gets a temporary CAL for a product only once, ever.
            models.UniqueConstraint(
                fields=["machine", "product_version"],
                condition=Q(kind=LicenseKind.TEMPORARY),
                name="license_one_temporary_per_product",
                violation_error_message="This machine has already had a temporary CAL for "
                "this product.",
            ),
            models.UniqueConstraint(
                fields=["license_server", "license_id"],
                condition=Q(license_id__isnull=False),
                name="license_id_unique_per_server",
                violation_error_message="This license server already has a license with "
                "this LicenseId.",
            ),
        ]
        indexes = [
            models.Index(fields=["key_pack", "status"], name="license_pack_status_idx"),
            models.Index(fields=["status", "kind", "-id"], name="license_status_kind_idx"),
            models.Index(fields=["product_version", "-id"], name="license_product_idx"),
            models.Index(fields=["license_server", "product_version"], name="license_srv_prod_idx"),
            models.Index(fields=["issued_at"], name="license_issued_at_idx"),
            models.Index(fields=["license_id"], name="license_license_id_idx"),
            models.Index(
                fields=["expires_at"],
                condition=Q(kind=LicenseKind.TEMPORARY, status=LicenseStatus.ACTIVE),
                name="license_temp_active_exp_idx",
            ),
        ]

    def __str__(self) -> str:
        kind = "temporary" if self.kind == LicenseKind.TEMPORARY else "permanent"
        return f"{kind} CAL #{self.pk} ({self.get_product_version_display()})"

    def get_absolute_url(self) -> str:
        return reverse("license-detail", args=[self.pk])

    @property
    def revoked_at(self):
        """When it was revoked in RD Licensing Manager (rule 12), or None."""
        return self.ended_at if self.status == LicenseStatus.REVOKED else None

    @property
    def transferable(self) -> bool:
        """Rule 7, read-only: may this license still be the source of a transfer?

        Open transfer requests do not make a license untransferable here; that
        is a separate refusal (``transfer_pending``).
        """
        return self.transferability_reason is None

    @property
    def transferability_reason(self) -> str | None:
        return rules.transferability_reason(
            kind=self.kind, status=self.status, transferred_from_id=self.transferred_from_id
        )

    def end(self, *, status: str, reason: str, at, save: bool = True) -> None:
        """The one way a CAL ends: an active CAL becomes expired, transferred or revoked,
        with its reason and time. It is saved, unless the caller writes many at once."""
        if self.status != LicenseStatus.ACTIVE:
            raise DomainError(
                DomainCode.INVALID_STATE,
                f"CAL #{self.pk} is {LicenseStatus(self.status).label.lower()}; only an active CAL can end.",
            )
        if status == LicenseStatus.ACTIVE:
            raise ValueError("a CAL ends in a status other than active")
        self.status, self.end_reason, self.ended_at = status, reason, at
        if save:
            self.save(update_fields=["status", "end_reason", "ended_at"])


class Revocation(models.Model):
    """A permanent per-device CAL revoked in RD Licensing Manager (rule 12): recorded by an
    administrator, or seen in a snapshot. Its seat went back to its pack at once; the CAL
    holds a place in its server's revocation quota (20% of the version's installed per-device
    CALs) until ``holds_quota_until``. Never deleted."""

    license = models.OneToOneField(License, on_delete=models.PROTECT, related_name="revocation")
    license_server = models.ForeignKey(LicenseServer, on_delete=models.PROTECT, related_name="revocations")
    product_version = models.CharField(max_length=32, choices=WindowsVersion.choices)
    key_pack = models.ForeignKey(KeyPack, on_delete=models.PROTECT, related_name="revocations")
    revoked_at = models.DateTimeField(help_text="When the CAL was revoked in RD Licensing Manager.")
    holds_quota_until = models.DateTimeField(
        help_text="Its expiry date when known, otherwise 89 days after the revocation.")
    recorded_at = models.DateTimeField(auto_now_add=True)
    recorded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True,
                                    related_name="+", help_text="Empty when a snapshot showed it.")
    snapshot = models.ForeignKey("licensing.Snapshot", on_delete=models.PROTECT, null=True, blank=True,
                                 related_name="+", help_text="The snapshot that showed it, when it came from one.")
    note = models.TextField(blank=True)

    class Meta:
        ordering = ["-revoked_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(product_version__in=WindowsVersion.values), name="revocation_product_version_valid",
            ),
        ]
        indexes = [
            models.Index(fields=["license_server", "product_version", "holds_quota_until"],
                         name="revocation_quota_idx"),
        ]

    def __str__(self) -> str:
        return f"revocation of CAL #{self.license_id}"
