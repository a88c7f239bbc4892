from django.core.management import call_command


def test_schema_generates_without_warnings(tmp_path):
    # --fail-on-warn: every enum has one name, every view documents its shapes.
    call_command("spectacular", "--fail-on-warn", "--file", str(tmp_path / "schema.yaml"))
    assert (tmp_path / "schema.yaml").read_text().startswith("openapi: 3")
