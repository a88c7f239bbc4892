"""License servers, key packs, issued CALs, transfers, CSC reissue calls and the audit trail.

Counts that can be derived (a key pack's issued and available seats, a license's
transferability) are derived, never stored, so they cannot drift. Rules that
concurrency could break are backed by constraints here; the services in
``licensing/services`` own the rules and their refusal codes.
"""

from django.conf import settings
from django.db import models
from django.db.models import Count, F, Q
from django.db.models.functions import Lower
from django.urls import reverse

from core.errors import DomainCode, DomainError
from core.jobs import BackgroundJob
from inventory.models import ClientMachine
from licensing import rules
from licensing.choices import (  # noqa: F401 - the vocabularies are read from here too
    ISSUED_STATUSES,
    OPEN_TRANSFER_STATUSES,
    VERSIONS_WITH_BUILTIN_PRO_CAL,
    ActivationStatus,
    CalType,
    KeyPackOrigin,
    LicenseEndReason,
    LicenseKind,
    LicenseProgram,
    LicenseStatus,
    ReissueChannel,
    ReissueStatus,
    RemovalMethod,
    TransferStatus,
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


class CscContact(models.Model):
    """The phone book of Customer Service Center locations (article: step 1)."""

    location = models.CharField(max_length=128)
    phone_number = models.CharField(max_length=64)
    hours = models.CharField(max_length=128, blank=True)
    notes = models.TextField(blank=True)

    class Meta:
        ordering = ["location"]
        constraints = [
            models.UniqueConstraint(
                Lower("location"),
                Lower("phone_number"),
                name="csc_contact_unique",
                violation_error_message="This CSC location and phone number are already "
                "in the phone book.",
            )
        ]

    def __str__(self) -> str:
        return f"{self.location} ({self.phone_number})"


class ReissueRequest(models.Model):
    """One telephone call to the CSC asking for reissued CALs. Never deleted."""

    called_at = models.DateTimeField()
    csc_contact = models.ForeignKey(
        CscContact, on_delete=models.PROTECT, null=True, blank=True, related_name="calls"
    )
    csc_location = models.CharField("CSC location", max_length=128)
    csc_phone_number = models.CharField("CSC phone number dialled", max_length=64)
    representative = models.CharField(max_length=128, blank=True)
    confirmation_number = models.CharField(max_length=64, blank=True)
    channel = models.CharField(
        max_length=16, choices=ReissueChannel.choices, default=ReissueChannel.TELEPHONE
    )
    license_server = models.ForeignKey(
        LicenseServer, on_delete=models.PROTECT, related_name="reissue_requests"
    )
    product_version = models.CharField(max_length=32, choices=WindowsVersion.choices)
    license_program = models.CharField(max_length=32, choices=LicenseProgram.choices)
    agreement_number = models.CharField(max_length=64, blank=True)
    quantity_requested = models.PositiveIntegerField()
    quantity_granted = models.PositiveIntegerField(null=True, blank=True)
    transfers = models.ManyToManyField(
        "TransferRequest",
        blank=True,
        related_name="reissue_calls",
        help_text="Every transfer this call covered, kept even if the call was denied.",
    )
    status = models.CharField(
        max_length=16, choices=ReissueStatus.choices, default=ReissueStatus.OPEN
    )
    logged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    logged_at = models.DateTimeField(auto_now_add=True)
    notes = models.TextField(blank=True)
    decision_note = models.TextField(blank=True)
    closed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(channel=ReissueChannel.TELEPHONE),
                name="reissue_channel_is_telephone",
            ),
            models.CheckConstraint(
                condition=Q(status__in=ReissueStatus.values), name="reissue_status_valid"
            ),
            models.CheckConstraint(
                condition=Q(quantity_requested__gt=0), name="reissue_quantity_requested_positive"
            ),
            models.CheckConstraint(
                condition=Q(status=ReissueStatus.FULFILLED, quantity_granted__gt=0)
                | (~Q(status=ReissueStatus.FULFILLED) & Q(quantity_granted__isnull=True)),
                name="reissue_granted_iff_fulfilled",
            ),
        ]
        indexes = [
            models.Index(fields=["status", "called_at"], name="reissue_status_called_idx"),
        ]

    def __str__(self) -> str:
        return f"CSC call #{self.pk} ({self.called_at:%Y-%m-%d})"

    def get_absolute_url(self) -> str:
        return reverse("reissuerequest-detail", args=[self.pk])


class TransferRequest(models.Model):
    """Moving one permanent CAL to another machine, once, along the article's steps."""

    license = models.ForeignKey(License, on_delete=models.PROTECT, related_name="transfer_requests")
    source_machine = models.ForeignKey(
        ClientMachine, on_delete=models.PROTECT, related_name="transfers_out"
    )
    target_machine = models.ForeignKey(
        ClientMachine, on_delete=models.PROTECT, related_name="transfers_in"
    )
    reason = models.TextField()
    status = models.CharField(
        max_length=24, choices=TransferStatus.choices, default=TransferStatus.REQUESTED
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    requested_at = models.DateTimeField(auto_now_add=True)
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    approved_at = models.DateTimeField(null=True, blank=True)
    decision_note = models.TextField(blank=True)
    removal_method = models.CharField(max_length=32, choices=RemovalMethod.choices, blank=True)
    removal_confirmed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    removal_confirmed_at = models.DateTimeField(null=True, blank=True)
    reissue_request = models.ForeignKey(
        ReissueRequest,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="current_transfers",
        help_text="The CSC call this transfer is waiting on, or was completed by.",
    )
    resulting_license = models.OneToOneField(
        License,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="produced_by_transfer",
    )
    completed_at = models.DateTimeField(null=True, blank=True)
    closed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=TransferStatus.values), name="transfer_status_valid"
            ),
            models.CheckConstraint(
                condition=~Q(source_machine=F("target_machine")),
                name="transfer_target_differs_from_source",
            ),
            # Rule 8 (four eyes), as the database's last word.
            models.CheckConstraint(
                condition=Q(approved_by__isnull=True) | ~Q(approved_by=F("requested_by")),
                name="transfer_four_eyes",
            ),
            models.CheckConstraint(
                condition=~Q(status=TransferStatus.COMPLETED)
                | Q(resulting_license__isnull=False, completed_at__isnull=False),
                name="transfer_completed_has_result",
            ),
            models.CheckConstraint(
                condition=~Q(
                    status__in=(
                        TransferStatus.REMOVAL_CONFIRMED,
                        TransferStatus.AWAITING_REISSUE,
                        TransferStatus.COMPLETED,
                    )
                )
                | Q(removal_confirmed_at__isnull=False) & ~Q(removal_method=""),
                name="transfer_removal_recorded",
            ),
            # Rule 7: at most one open request per license ...
            models.UniqueConstraint(
                fields=["license"],
                condition=Q(status__in=OPEN_TRANSFER_STATUSES),
                name="transfer_one_open_per_license",
                violation_error_message="This license already has an open transfer request.",
            ),
            # ... and at most one completed transfer per source license.
            models.UniqueConstraint(
                fields=["license"],
                condition=Q(status=TransferStatus.COMPLETED),
                name="transfer_one_completed_per_license",
                violation_error_message="This license has already been transferred.",
            ),
        ]
        indexes = [
            models.Index(fields=["status", "-id"], name="transfer_status_idx"),
        ]

    def __str__(self) -> str:
        return f"transfer #{self.pk}"

    def get_absolute_url(self) -> str:
        return reverse("transfer-detail", args=[self.pk])

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_TRANSFER_STATUSES


class ExportJob(BackgroundJob):
    """A report written in the background; its file is kept for EXPORT_RETENTION."""

    report = models.CharField(max_length=32)
    format = models.CharField(max_length=8)
    filters = models.JSONField(default=dict, blank=True)
    rows = models.PositiveBigIntegerField(default=0)
    file_name = models.CharField(
        max_length=512, blank=True, help_text="The file's name in the exports storage, once written."
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(null=True, blank=True)

    class Meta(BackgroundJob.Meta):
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"{self.report}.{self.format} export #{self.pk} ({self.status})"
