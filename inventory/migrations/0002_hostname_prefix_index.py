from django.db import migrations

# The unique constraint on lower(hostname) already gives an equality index; a prefix
# search (LIKE 'abc%') needs the pattern operator class on PostgreSQL.
CREATE_SQL = (
    "CREATE INDEX IF NOT EXISTS machine_hostname_prefix_idx "
    "ON inventory_clientmachine (lower(hostname::text) text_pattern_ops)"
)
DROP_SQL = "DROP INDEX IF EXISTS machine_hostname_prefix_idx"


def create_prefix_index(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE_SQL)


def drop_prefix_index(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP_SQL)


class Migration(migrations.Migration):
    dependencies = [
        ("inventory", "0001_initial"),
    ]

    operations = [
        migrations.RemoveIndex(model_name="clientmachine", name="machine_hostname_lower_idx"),
        migrations.RunPython(create_prefix_index, drop_prefix_index),
    ]
