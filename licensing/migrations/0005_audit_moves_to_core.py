# The audit trail and the alert records now belong to the core app (core 0001); their
# tables and rows stay as they are.

from django.db import migrations


def sync_roles(apps, schema_editor):
    from core.roles import sync_role_groups

    sync_role_groups(apps)


class Migration(migrations.Migration):
    dependencies = [
        ("licensing", "0004_background_jobs"),
        ("core", "0001_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.DeleteModel(name="AlertRecord"),
                migrations.DeleteModel(name="AuditChainHead"),
                migrations.DeleteModel(name="AuditEvent"),
            ],
            database_operations=[],
        ),
        # The admin site's view permissions of the audit trail are now core's.
        migrations.RunPython(sync_roles, migrations.RunPython.noop),
    ]
