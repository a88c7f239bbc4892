"""What every app records: the hash-chained audit trail and the alerts that were sent.

The tables keep the names they were created with (``licensing_*``): the models moved here
when the audit trail became shared by every app, and their rows never move.
"""

from django.db import models
from django.db.models import Q


class AuditChainHead(models.Model):
    """A single row that serialises writers of the audit chain (locked FOR UPDATE)."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    last_sequence = models.PositiveBigIntegerField(default=0)
    last_hash = models.CharField(max_length=64, default="0" * 64)

    class Meta:
        db_table = "licensing_auditchainhead"
        constraints = [models.CheckConstraint(condition=Q(id=1), name="audit_head_singleton")]

    def __str__(self) -> str:
        return f"audit chain head at #{self.last_sequence}"


class AuditEvent(models.Model):
    """Append-only, hash-chained record of every change (DOMAIN.md rules 10 and 11)."""

    sequence = models.PositiveBigIntegerField(unique=True)
    occurred_at = models.DateTimeField(db_index=True)
    actor = models.CharField(max_length=150, db_index=True)
    action = models.CharField(max_length=64, db_index=True)
    object_type = models.CharField(max_length=64)
    object_id = models.CharField(max_length=64)
    summary = models.TextField()
    data = models.JSONField(default=dict, blank=True)
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64, unique=True)

    class Meta:
        db_table = "licensing_auditevent"
        ordering = ["sequence"]
        indexes = [models.Index(fields=["object_type", "object_id"], name="audit_object_idx")]

    def __str__(self) -> str:
        return f"#{self.sequence} {self.action} {self.object_type}:{self.object_id}"


class AlertRecord(models.Model):
    """An alert that was sent, so it is sent once per object and threshold."""

    kind = models.CharField(max_length=64)
    object_type = models.CharField(max_length=64)
    object_id = models.CharField(max_length=64)
    threshold = models.CharField(max_length=32)
    sent_at = models.DateTimeField(auto_now_add=True)
    recipients = models.TextField(blank=True)

    class Meta:
        db_table = "licensing_alertrecord"
        constraints = [
            models.UniqueConstraint(
                fields=["kind", "object_type", "object_id", "threshold"],
                name="alert_once_per_object_threshold",
            )
        ]

    def __str__(self) -> str:
        return f"{self.kind} alert for {self.object_type}:{self.object_id} ({self.threshold})"
