"""The list pages write their filter inputs directly; they must keep what the user chose."""

import pytest

pytestmark = pytest.mark.django_db


def test_filter_controls_keep_the_chosen_values(client, admin_user, key_pack):
    client.force_login(admin_user)
    html = client.get(
        f"/licenses/?status=active&issued_after=2024-01-02&license_server={key_pack.license_server_id}"
        "&kind=%3Cscript%3E"
    ).content.decode()
    assert '<option value="active" selected>Active</option>' in html
    assert f'<option value="{key_pack.license_server_id}" selected>TSLS-HQ</option>' in html
    assert '<input type="date" name="issued_after" id="id_issued_after" value="2024-01-02">' in html
    assert "<script>" not in html  # a bad choice is an error on the field, never echoed raw
    assert 'id="id_kind"' in html and "Select a valid choice" in html
