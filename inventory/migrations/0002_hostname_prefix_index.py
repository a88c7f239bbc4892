from django.db import migrations

from core.migrations_sql import postgresql_only

# The unique constraint on lower(hostname) already gives an equality index; a prefix
# search (LIKE 'abc%') needs the pattern operator class on PostgreSQL.
CREATE_SQL = (
    "CREATE INDEX IF NOT EXISTS machine_hostname_prefix_idx "
    "ON inventory_clientmachine (lower(hostname::text) text_pattern_ops)"
)
DROP_SQL = "DROP INDEX IF EXISTS machine_hostname_prefix_idx"


class Migration(migrations.Migration):
    dependencies = [
        ("inventory", "0001_initial"),
    ]

    operations = [
        migrations.RemoveIndex(model_name="clientmachine", name="machine_hostname_lower_idx"),
        postgresql_only(CREATE_SQL, DROP_SQL),
    ]
