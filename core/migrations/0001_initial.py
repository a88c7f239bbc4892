# The audit trail and the alert records moved here from the licensing app. Their tables
# stay where they are (``licensing_*``); only Django's record of which app owns them moves.

from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        ("licensing", "0004_background_jobs"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="AlertRecord",
                    fields=[
                        ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False,
                                                   verbose_name="ID")),
                        ("kind", models.CharField(max_length=64)),
                        ("object_type", models.CharField(max_length=64)),
                        ("object_id", models.CharField(max_length=64)),
                        ("threshold", models.CharField(max_length=32)),
                        ("sent_at", models.DateTimeField(auto_now_add=True)),
                        ("recipients", models.TextField(blank=True)),
                    ],
                    options={
                        "db_table": "licensing_alertrecord",
                        "constraints": [models.UniqueConstraint(fields=("kind", "object_type", "object_id", "threshold"),
                                                                name="alert_once_per_object_threshold")],
                    },
                ),
                migrations.CreateModel(
                    name="AuditChainHead",
                    fields=[
                        ("id", models.PositiveSmallIntegerField(default=1, primary_key=True, serialize=False)),
                        ("last_sequence", models.PositiveBigIntegerField(default=0)),
                        ("last_hash", models.CharField(default="0" * 64, max_length=64)),
                    ],
                    options={
                        "db_table": "licensing_auditchainhead",
                        "constraints": [models.CheckConstraint(condition=models.Q(("id", 1)), name="audit_head_singleton")],
                    },
                ),
                migrations.CreateModel(
                    name="AuditEvent",
                    fields=[
                        ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False,
                                                   verbose_name="ID")),
                        ("sequence", models.PositiveBigIntegerField(unique=True)),
                        ("occurred_at", models.DateTimeField(db_index=True)),
                        ("actor", models.CharField(db_index=True, max_length=150)),
                        ("action", models.CharField(db_index=True, max_length=64)),
                        ("object_type", models.CharField(max_length=64)),
                        ("object_id", models.CharField(max_length=64)),
                        ("summary", models.TextField()),
                        ("data", models.JSONField(blank=True, default=dict)),
                        ("prev_hash", models.CharField(max_length=64)),
                        ("hash", models.CharField(max_length=64, unique=True)),
                    ],
                    options={
                        "db_table": "licensing_auditevent",
                        "ordering": ["sequence"],
                        "indexes": [models.Index(fields=["object_type", "object_id"], name="audit_object_idx")],
                    },
                ),
            ],
            database_operations=[],
        ),
    ]
