from django.db import migrations

from core.migrations_sql import postgresql_only


def create_roles(apps, schema_editor):
    from core.roles import sync_role_groups

    sync_role_groups(apps)


def create_audit_head(apps, schema_editor):
    AuditChainHead = apps.get_model("licensing", "AuditChainHead")
    AuditChainHead.objects.get_or_create(pk=1)


APPEND_ONLY_SQL = """
CREATE OR REPLACE FUNCTION licensing_audit_event_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'audit events are append-only: % on licensing_auditevent is refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER audit_event_no_update_delete
    BEFORE UPDATE OR DELETE ON licensing_auditevent
    FOR EACH ROW EXECUTE FUNCTION licensing_audit_event_append_only();

CREATE TRIGGER audit_event_no_truncate
    BEFORE TRUNCATE ON licensing_auditevent
    FOR EACH STATEMENT EXECUTE FUNCTION licensing_audit_event_append_only();
"""

DROP_APPEND_ONLY_SQL = """
DROP TRIGGER IF EXISTS audit_event_no_truncate ON licensing_auditevent;
DROP TRIGGER IF EXISTS audit_event_no_update_delete ON licensing_auditevent;
DROP FUNCTION IF EXISTS licensing_audit_event_append_only();
"""


class Migration(migrations.Migration):
    dependencies = [
        ("licensing", "0001_initial"),
        ("inventory", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [
        migrations.RunPython(create_roles, migrations.RunPython.noop),
        migrations.RunPython(create_audit_head, migrations.RunPython.noop),
        postgresql_only(APPEND_ONLY_SQL, DROP_APPEND_ONLY_SQL),
    ]
