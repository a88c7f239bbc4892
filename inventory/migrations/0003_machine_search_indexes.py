from django.db import migrations

from core.migrations_sql import postgresql_only

# The machine list's search box: asset tag and hardware ID exactly, owner by prefix,
# all without regard to case (see ClientMachineFilterSet.filter_q).
CREATE_SQL = """
CREATE INDEX IF NOT EXISTS machine_asset_tag_lower_idx ON inventory_clientmachine (lower(asset_tag::text));
CREATE INDEX IF NOT EXISTS machine_hardware_id_lower_idx ON inventory_clientmachine (lower(hardware_id::text));
CREATE INDEX IF NOT EXISTS machine_owner_prefix_idx ON inventory_clientmachine (lower(owner::text) text_pattern_ops);
"""
DROP_SQL = """
DROP INDEX IF EXISTS machine_asset_tag_lower_idx;
DROP INDEX IF EXISTS machine_hardware_id_lower_idx;
DROP INDEX IF EXISTS machine_owner_prefix_idx;
"""


class Migration(migrations.Migration):
    dependencies = [
        ("inventory", "0002_hostname_prefix_index"),
    ]

    operations = [postgresql_only(CREATE_SQL, DROP_SQL)]
