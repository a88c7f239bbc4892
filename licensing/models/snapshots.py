"""Staying in step with the license servers (DOMAIN.md "Snapshots and reconciliation").

An ``ImportJob`` reads a server's exports in the background; once it commits, its
``Snapshot`` records what the server said at that moment. Reconciliation then keeps a
``DriftItem`` for every place where the server and the portal disagree. Per-user CALs the
server lists are ``PerUserIssuance`` rows: inventory only, never a machine's CAL.
"""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.urls import reverse

from core.jobs import BackgroundJob
from inventory.models import ClientMachine
from licensing.choices import DriftKind, DriftState, WindowsVersion
from licensing.models.licenses import License
from licensing.models.servers import KeyPack, LicenseServer

DATE_ORDERS = (("mdy", "mdy"), ("dmy", "dmy"), ("ymd", "ymd"))


class ImportJob(BackgroundJob):
    """One import of a license server's export files: a preview (``dry_run``) or the real one."""

    license_server = models.ForeignKey(LicenseServer, on_delete=models.PROTECT, related_name="import_jobs")
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True,
                                     related_name="+", help_text="Empty for an import run from the shell.")
    dry_run = models.BooleanField(default=False)
    date_order = models.CharField(max_length=3, choices=DATE_ORDERS, default="mdy")
    installed_on = models.DateField(
        null=True, blank=True, help_text="Recorded for new key packs (the export has none); default the day it runs."
    )
    files = models.JSONField(default=list, help_text='[{"name", "stored", "size"}]: the files in the imports storage.')
    summary = models.JSONField(default=dict, blank=True)
    problems = models.JSONField(default=list, blank=True, help_text="The first problems found (see problem_count).")
    problem_count = models.PositiveIntegerField(default=0)
    preview_of = models.ForeignKey(
        "self", on_delete=models.PROTECT, null=True, blank=True, related_name="confirmations",
        help_text="The dry run this import confirms.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta(BackgroundJob.Meta):
        ordering = ["-id"]

    def __str__(self) -> str:
        what = "preview" if self.dry_run else "import"
        return f"{what} #{self.pk} of {self.license_server} ({self.status})"

    def get_absolute_url(self) -> str:
        return reverse("import-job", args=[self.pk])


class Snapshot(models.Model):
    """What one license server listed at one moment: one committed import. Never deleted."""

    license_server = models.ForeignKey(LicenseServer, on_delete=models.PROTECT, related_name="snapshots")
    taken_at = models.DateTimeField()
    sent_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True,
                                related_name="+")
    import_job = models.OneToOneField(ImportJob, on_delete=models.PROTECT, related_name="snapshot")
    files = models.JSONField(default=list, help_text='[{"name", "sha256", "rows", "class"}]')
    lists_key_packs = models.BooleanField(default=False, help_text="It holds a Win32_TSLicenseKeyPack export.")
    lists_licenses = models.BooleanField(default=False, help_text="It holds a Win32_TSIssuedLicense export.")

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["license_server", "-id"], name="snapshot_server_idx")]

    def __str__(self) -> str:
        return f"snapshot #{self.pk} of {self.license_server} ({self.taken_at:%Y-%m-%d %H:%M})"


class PerUserIssuance(models.Model):
    """A per-user CAL the license server lists (``DOMAIN\\user``): inventory only."""

    license_server = models.ForeignKey(LicenseServer, on_delete=models.PROTECT, related_name="per_user_issuances")
    key_pack = models.ForeignKey(KeyPack, on_delete=models.PROTECT, null=True, blank=True,
                                 related_name="per_user_issuances")
    product_version = models.CharField(max_length=32, choices=WindowsVersion.choices)
    user = models.CharField(max_length=256)
    license_id = models.PositiveBigIntegerField("LicenseId")
    issued_at = models.DateTimeField()
    expires_at = models.DateTimeField(null=True, blank=True)
    first_snapshot = models.ForeignKey(Snapshot, on_delete=models.PROTECT, related_name="+")
    snapshot = models.ForeignKey(Snapshot, on_delete=models.PROTECT, related_name="per_user_issuances",
                                 help_text="The latest snapshot that listed it.")

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(fields=["license_server", "license_id"], name="per_user_license_id_unique"),
        ]

    def __str__(self) -> str:
        return f"per-user CAL {self.license_id} of {self.user}"


class DriftItem(models.Model):
    """One disagreement between a license server and the portal, from the snapshot that first
    showed it to the last; resolved when a later snapshot no longer shows it. Never deleted."""

    kind = models.CharField(max_length=40, choices=DriftKind.choices)
    license_server = models.ForeignKey(LicenseServer, on_delete=models.PROTECT, related_name="drift_items")
    # What the item is about, one key per kind (e.g. a LicenseId, or a host name and product),
    # so a later snapshot finds the same item again.
    subject = models.CharField(max_length=300)
    key_pack = models.ForeignKey(KeyPack, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    license = models.ForeignKey(License, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    machine = models.ForeignKey(ClientMachine, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    product_version = models.CharField(max_length=32, choices=WindowsVersion.choices, blank=True)
    detail = models.TextField()
    first_seen_snapshot = models.ForeignKey(Snapshot, on_delete=models.PROTECT, related_name="+")
    last_seen_snapshot = models.ForeignKey(Snapshot, on_delete=models.PROTECT, related_name="+")
    resolved_snapshot = models.ForeignKey(Snapshot, on_delete=models.PROTECT, null=True, blank=True,
                                          related_name="+")
    state = models.CharField(max_length=16, choices=DriftState.choices, default=DriftState.OPEN)
    acknowledged_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True,
                                        blank=True, related_name="+")
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    note = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.CheckConstraint(condition=Q(kind__in=DriftKind.values), name="drift_kind_valid"),
            models.CheckConstraint(condition=Q(state__in=DriftState.values), name="drift_state_valid"),
            # Acknowledged means someone accepted it, with a note.
            models.CheckConstraint(
                condition=~Q(state=DriftState.ACKNOWLEDGED) | Q(acknowledged_by__isnull=False),
                name="drift_acknowledged_has_who",
            ),
            models.CheckConstraint(
                condition=Q(state=DriftState.RESOLVED, resolved_snapshot__isnull=False)
                | (~Q(state=DriftState.RESOLVED) & Q(resolved_snapshot__isnull=True)),
                name="drift_resolved_has_snapshot",
            ),
            # A subject has at most one item that is not resolved: a later snapshot finds it.
            models.UniqueConstraint(
                fields=["license_server", "kind", "subject"], condition=~Q(state=DriftState.RESOLVED),
                name="drift_one_live_item_per_subject",
            ),
        ]
        indexes = [
            models.Index(fields=["state", "kind", "-id"], name="drift_state_kind_idx"),
            models.Index(fields=["license_server", "state"], name="drift_server_state_idx"),
        ]

    def __str__(self) -> str:
        return f"drift #{self.pk} ({self.get_kind_display().lower()}, {self.state})"

    def get_absolute_url(self) -> str:
        return reverse("drift-detail", args=[self.pk])


class CollectorBinding(models.Model):
    """A collector account (role ``collector``) and the one license server it pushes for."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="collector_binding")
    license_server = models.ForeignKey(LicenseServer, on_delete=models.PROTECT, related_name="collectors")

    def __str__(self) -> str:
        return f"{self.user} collects for {self.license_server}"


class ImportRow(models.Model):
    """A row of an issued-license export while its import job runs (staging: the job's rows
    are deleted when it ends). The planner reads them in stages, a chunk at a time."""

    ENDED, PERMANENT, TEMPORARY, PER_USER, IGNORED = 0, 1, 2, 3, 9

    job = models.ForeignKey(ImportJob, on_delete=models.CASCADE, related_name="+")
    file = models.PositiveSmallIntegerField()
    line = models.PositiveIntegerField()
    stage = models.PositiveSmallIntegerField()
    license_id = models.BigIntegerField()
    key_pack_id = models.BigIntegerField()
    computer = models.CharField(max_length=253, blank=True)
    computer_key = models.CharField(max_length=253, blank=True, help_text="The host name in lower case.")
    hardware_id = models.CharField(max_length=128, blank=True)
    user = models.CharField(max_length=256, blank=True)
    status = models.PositiveSmallIntegerField()
    issued_at = models.DateTimeField()
    expires_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["job", "stage", "id"], name="import_row_stage_idx"),
            models.Index(fields=["job", "license_id"], name="import_row_license_idx"),
            models.Index(fields=["job", "computer_key"], name="import_row_computer_idx"),
        ]

    def __str__(self) -> str:
        return f"row {self.line} of file {self.file} of import #{self.job_id}"
