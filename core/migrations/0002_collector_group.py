# The collector role: an account that is not a person and only pushes imports through the
# API. Its group holds no model permission.

from django.db import migrations

COLLECTOR = "collector"


def create_collector_group(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Group.objects.get_or_create(name=COLLECTOR)


class Migration(migrations.Migration):
    dependencies = [
        ("core", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
    ]

    operations = [
        migrations.RunPython(create_collector_group, migrations.RunPython.noop),
    ]
