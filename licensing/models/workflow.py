"""The article's workflow: transfer requests, CSC reissue calls and the CSC phone book."""

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.db.models.functions import Lower
from django.urls import reverse

from inventory.models import ClientMachine
from licensing.choices import (
    OPEN_TRANSFER_STATUSES,
    LicenseProgram,
    ReissueChannel,
    ReissueStatus,
    RemovalMethod,
    TransferStatus,
    WindowsVersion,
)
from licensing.models.licenses import License
from licensing.models.servers import LicenseServer


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
