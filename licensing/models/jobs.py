"""Background jobs of the licensing app (``core.jobs``)."""

from django.conf import settings
from django.db import models

from core.jobs import BackgroundJob


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
