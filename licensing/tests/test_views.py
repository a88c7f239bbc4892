"""Licensing pages: the article's workflow through the HTML forms, refusals and role checks."""

import pytest
from django.urls import reverse
from django.utils import timezone

from licensing import models as m
from licensing.services import transfers as transfer_services
from licensing.services.reissue import reissue_log_call
from licensing.tests.factories import CscContactFactory, KeyPackFactory, LicenseFactory, MachineFactory
from licensing.tests.helpers import table_state


@pytest.fixture
def cal(key_pack):
    return LicenseFactory(key_pack=key_pack, machine=MachineFactory(hostname="old-pc"))


@pytest.fixture
def target(db):
    return MachineFactory(hostname="new-pc")


def _file(client, cal, target, reason="PC replaced"):
    return client.post(reverse("transfer-new"), {"license": cal.pk, "target_machine": target.hostname,
                                                 "reason": reason})


def test_article_workflow_through_the_pages(client, admin_user, second_admin, cal, target):
    contact = CscContactFactory(location="North America", phone_number="+1 888 571 2048")
    client.force_login(admin_user)
    form_page = client.get(reverse("transfer-new"), {"license": cal.pk})
    assert form_page.context["form"]["license"].value() == cal.pk
    response = _file(client, cal, target)
    transfer = m.TransferRequest.objects.get()
    assert response.status_code == 302 and response["Location"] == transfer.get_absolute_url()

    # The requester sees no approve button; posting anyway is the four-eyes refusal.
    page = client.get(transfer.get_absolute_url())
    assert not page.context["can_approve"] and b"another administrator approves" in page.content
    before = table_state()
    refused = client.post(reverse("transfer-action", args=[transfer.pk, "approve"]), {"approve-note": ""})
    assert refused.status_code == 409
    assert "another administrator must approve it" in refused.content.decode()
    assert table_state() == before

    client.force_login(second_admin)
    assert client.get(transfer.get_absolute_url()).context["can_approve"]
    client.post(reverse("transfer-action", args=[transfer.pk, "approve"]), {"approve-note": "ok"})
    page = client.post(reverse("transfer-action", args=[transfer.pk, "confirm-removal"]),
                       {"removal-method": "registry_key_deleted"}, follow=True)
    assert "HKEY_LOCAL_MACHINE\\SOFTWARE\\Microsoft\\MSLicensing" in page.content.decode()
    assert "does not erase the issuance history" in page.content.decode()
    transfer.refresh_from_db()
    assert transfer.status == m.TransferStatus.REMOVAL_CONFIRMED

    new_call = client.get(reverse("reissuerequest-new"), {"transfers": transfer.pk})
    assert new_call.context["form"].initial["transfers"] == [transfer.pk]
    response = client.post(reverse("reissuerequest-new"), {
        "csc_contact": contact.pk, "called_at": "2026-11-20T10:30", "representative": "Pat",
        "confirmation_number": "C-1", "license_server": cal.license_server_id,
        "product_version": cal.product_version, "license_program": "select",
        "quantity_requested": 1, "transfers": [transfer.pk],
    })
    call = m.ReissueRequest.objects.get()
    assert response.status_code == 302 and call.csc_phone_number == "+1 888 571 2048"
    response = client.post(reverse("reissuerequest-action", args=[call.pk, "install"]),
                           {"install-key_pack_id": 90001, "install-total_licenses": 1})
    assert response.status_code == 302

    transfer.refresh_from_db()
    assert transfer.status == m.TransferStatus.COMPLETED
    page = client.get(transfer.get_absolute_url()).content.decode()
    assert "Completed on" in page and "key pack 90001" in page
    new_license = transfer.resulting_license
    page = client.get(new_license.get_absolute_url()).content.decode()
    assert "not transferable (one-time transfer used)" in page
    assert f"CAL #{cal.pk}</a> on old-pc" in page  # lineage
    old_page = client.get(cal.get_absolute_url()).content.decode()
    assert "not transferable (one-time transfer used)" in old_page
    assert f"CAL #{new_license.pk}</a> on" in old_page
    pack_page = client.get(new_license.key_pack.get_absolute_url()).content.decode()
    assert f'href="{call.get_absolute_url()}">CSC call #{call.pk}' in pack_page
    call_page = client.get(call.get_absolute_url()).content.decode()
    assert f"#{transfer.pk}</a>" in call_page and "Key pack 90001" in call_page


def test_second_transfer_attempt_shows_the_rule_and_changes_nothing(client, admin_user, cal, target):
    client.force_login(admin_user)
    _file(client, cal, target)
    before = table_state()
    response = _file(client, cal, MachineFactory(hostname="third-pc"))
    assert response.status_code == 409
    assert "already has open transfer request" in response.content.decode()
    assert 'class="refusal"' in response.content.decode()
    # The sentence comes with the rule's stable code, as the API gives it.
    assert '<code class="refusal-code">transfer_pending</code>' in response.content.decode()
    assert table_state() == before


def test_unknown_target_is_a_field_error(client, admin_user, cal):
    client.force_login(admin_user)
    response = client.post(reverse("transfer-new"), {"license": cal.pk, "target_machine": "nope",
                                                     "reason": "x"})
    assert response.status_code == 400
    assert response.context["form"].errors["target_machine"] == ["No machine is named nope."]


def test_reject_needs_a_note(client, admin_user, second_admin, cal, target):
    transfer = transfer_services.transfer_file(license=cal, target_machine=target, reason="r",
                                               actor=admin_user)
    client.force_login(second_admin)
    response = client.post(reverse("transfer-action", args=[transfer.pk, "reject"]), {"reject-note": ""})
    assert response.status_code == 400 and response.context["reject_form"].errors["note"]
    client.post(reverse("transfer-action", args=[transfer.pk, "reject"]), {"reject-note": "not now"})
    transfer.refresh_from_db()
    assert transfer.status == m.TransferStatus.REJECTED


@pytest.mark.parametrize("action,data", [
    ("approve", {}), ("reject", {"reject-note": "x"}),
    ("confirm-removal", {"removal-method": "registry_key_deleted"}),
])
def test_requesters_and_auditors_cannot_decide(client, requester, auditor, admin_user, cal, target, action,
                                               data):
    transfer = transfer_services.transfer_file(license=cal, target_machine=target, reason="r",
                                               actor=admin_user)
    for user in (requester, auditor):
        client.force_login(user)
        assert client.post(reverse("transfer-action", args=[transfer.pk, action]), data).status_code == 403
    transfer.refresh_from_db()
    assert transfer.status == m.TransferStatus.REQUESTED


def test_auditor_cannot_file_and_requester_cancels_only_their_own(client, auditor, requester, admin_user,
                                                                  cal, target):
    client.force_login(auditor)
    assert client.get(reverse("transfer-new")).status_code == 403
    assert _file(client, cal, target).status_code == 403
    theirs = transfer_services.transfer_file(license=cal, target_machine=target, reason="r",
                                             actor=admin_user)
    client.force_login(requester)
    page = client.get(theirs.get_absolute_url())
    assert not page.context["can_cancel"]
    assert client.post(reverse("transfer-action", args=[theirs.pk, "cancel"]), {}).status_code == 403
    other = LicenseFactory(key_pack=cal.key_pack)
    client.force_login(requester)
    _file(client, other, target)
    own = m.TransferRequest.objects.get(license=other)
    assert client.get(own.get_absolute_url()).context["can_cancel"]
    client.post(reverse("transfer-action", args=[own.pk, "cancel"]), {"cancel-note": "typo"})
    own.refresh_from_db()
    assert own.status == m.TransferStatus.CANCELLED


def test_auditor_sees_no_write_buttons(client, auditor, cal, target, admin_user):
    transfer = transfer_services.transfer_file(license=cal, target_machine=target, reason="r",
                                               actor=admin_user)
    client.force_login(auditor)
    for url in (cal.get_absolute_url(), transfer.get_absolute_url(), reverse("license-list"),
                reverse("transfer-list"), reverse("keypack-list"), reverse("csccontact-list")):
        page = client.get(url).content.decode()
        assert 'method="post" action="/accounts/logout/"' in page
        assert page.count('method="post"') == 1, url  # only the log-out form
        assert "File a transfer" not in page and "Add key pack" not in page
    assert "Export CSV" in client.get(reverse("license-list")).content.decode()


def test_export_buttons_keep_the_current_filters(client, auditor, requester, cal):
    client.force_login(auditor)
    response = client.get(reverse("license-list"), {"status": "active", "q": "old", "sort": "hostname"})
    assert response.context["export_csv_url"] == "/api/v1/reports/licenses.csv?status=active&q=old"
    assert response.context["export_xlsx_url"] == "/api/v1/reports/licenses.xlsx?status=active&q=old"
    client.force_login(requester)
    assert "Export CSV" not in client.get(reverse("license-list")).content.decode()


def test_transfer_list_empty_state(client, admin_user):
    client.force_login(admin_user)
    response = client.get(reverse("transfer-list"), {"status": "requested"})
    assert "No transfers waiting for approval." in response.content.decode()


def test_list_filters_and_search(client, admin_user, cal, key_pack):
    LicenseFactory(key_pack=key_pack, machine=MachineFactory(hostname="other-pc"))
    client.force_login(admin_user)
    rows = client.get(reverse("license-list"), {"q": "old"}).context["rows"]
    assert [lic.pk for lic in rows] == [cal.pk]
    rows = client.get(reverse("license-list"), {"key_pack": key_pack.pk, "sort": "hostname"}).context["rows"]
    assert [lic.machine.hostname for lic in rows] == ["old-pc", "other-pc"]
    hidden = client.get(reverse("license-list"), {"key_pack": key_pack.pk}).context["hidden_fields"]
    assert [f.name for f in hidden] == ["key_pack"]


def test_key_pack_form_attaches_service_errors_to_fields(client, admin_user, key_pack, requester):
    client.force_login(admin_user)
    data = {"license_server": key_pack.license_server_id, "key_pack_id": key_pack.key_pack_id,
            "product_version": "windows_server_2003", "cal_type": "per_device", "license_program": "open",
            "total_licenses": 10, "installed_on": "2026-01-05"}
    response = client.post(reverse("keypack-new"), data)
    assert response.status_code == 400
    assert "already has a key pack with this KeyPackId" in response.content.decode()
    data["key_pack_id"] = 5000
    response = client.post(reverse("keypack-new"), data)
    pack = m.KeyPack.objects.get(key_pack_id=5000)
    assert response["Location"] == pack.get_absolute_url()
    assert pack.origin == m.KeyPackOrigin.ORIGINAL
    client.force_login(requester)
    assert client.post(reverse("keypack-new"), data).status_code == 403


def test_csc_contact_form(client, admin_user, auditor):
    client.force_login(admin_user)
    response = client.post(reverse("csccontact-new"), {"location": "EMEA", "phone_number": "+353 1 706 5800"})
    assert response.status_code == 302
    assert m.CscContact.objects.filter(location="EMEA").exists()
    assert "EMEA" in client.get(reverse("csccontact-list"), {"q": "emea"}).content.decode()
    client.force_login(auditor)
    assert client.post(reverse("csccontact-new"), {"location": "X", "phone_number": "1"}).status_code == 403


@pytest.fixture
def open_call(admin_user, second_admin, cal, target):
    transfer = transfer_services.transfer_file(license=cal, target_machine=target, reason="r",
                                               actor=admin_user)
    transfer_services.transfer_approve(transfer=transfer, actor=second_admin)
    transfer_services.transfer_confirm_removal(transfer=transfer, actor=admin_user,
                                               method="machine_decommissioned")
    return reissue_log_call(actor=admin_user, called_at=timezone.now(), license_server=cal.license_server,
                            product_version=cal.product_version, license_program="select",
                            quantity_requested=1, transfers=[transfer], csc_location="EMEA",
                            csc_phone_number="1")


def test_install_refusal_shows_the_sentence(client, admin_user, open_call, key_pack):
    client.force_login(admin_user)
    before = table_state()
    response = client.post(reverse("reissuerequest-action", args=[open_call.pk, "install"]),
                           {"install-key_pack_id": key_pack.key_pack_id, "install-total_licenses": 1})
    assert response.status_code == 400  # KeyPackId already used on this server
    assert "already has a key pack with this KeyPackId" in response.content.decode()
    assert table_state() == before


def test_deny_call_sends_transfers_back(client, admin_user, open_call, auditor):
    client.force_login(auditor)
    assert client.post(reverse("reissuerequest-action", args=[open_call.pk, "deny"]),
                       {"deny-note": "no"}).status_code == 403
    client.force_login(admin_user)
    client.post(reverse("reissuerequest-action", args=[open_call.pk, "deny"]), {"deny-note": "no proof"})
    open_call.refresh_from_db()
    assert open_call.status == m.ReissueStatus.DENIED
    transfer = m.TransferRequest.objects.get()
    assert transfer.status == m.TransferStatus.REMOVAL_CONFIRMED
    response = client.post(reverse("reissuerequest-action", args=[open_call.pk, "cancel"]), {})
    assert response.status_code == 409 and "it cannot be cancelled" in response.content.decode()


def test_key_pack_detail_counts_and_licenses(client, auditor, key_pack, cal):
    KeyPackFactory(license_server=key_pack.license_server)
    client.force_login(auditor)
    response = client.get(key_pack.get_absolute_url())
    assert response.context["pack"].issued_count == 1
    assert response.context["pack"].available_count == 4
    assert "old-pc" in response.content.decode()


def test_reports_page_lists_every_report_with_filters(client, auditor, requester):
    client.force_login(auditor)
    page = client.get(reverse("reports")).content.decode()
    for name in ("audit-trail", "licenses", "compliance", "transfers", "reissue-requests", "drift", "revocations"):
        assert f'formaction="/api/v1/reports/{name}.csv"' in page
        assert f'formaction="/api/v1/reports/{name}.xlsx"' in page
    assert 'id="id_audit_trail_since"' in page and "exports.js" in page
    assert '<label for="id_revocations_recorded_by">Recorded by (user name)</label>' in page
    assert 'type="date" name="since"' in page.split('id="report-revocations"')[1].split("</article>")[0]
    client.force_login(requester)
    page = client.get(reverse("reports")).content.decode()
    assert "does not export reports" in page and "formaction" not in page


def test_audit_list_filters_by_action(client, auditor, admin_user, cal, target):
    transfer_services.transfer_file(license=cal, target_machine=target, reason="r", actor=admin_user)
    client.force_login(auditor)
    rows = client.get(reverse("audit-list"), {"action": "transfer"}).context["rows"]
    assert [e.action for e in rows] == ["transfer.requested"]


@pytest.mark.parametrize("who", ["admin_user", "requester", "auditor", None])
def test_detail_pages_for_every_role_and_login_redirect(client, request, who, open_call):
    transfer = m.TransferRequest.objects.get()
    urls = [transfer.get_absolute_url(), open_call.get_absolute_url(), transfer.license.get_absolute_url(),
            transfer.license.key_pack.get_absolute_url(), transfer.target_machine.get_absolute_url(),
            reverse("reissuerequest-new") if who == "admin_user" else transfer.source_machine.get_absolute_url()]
    if who is None:
        for url in urls:
            assert client.get(url)["Location"].startswith(reverse("login"))
        return
    client.force_login(request.getfixturevalue(who))
    for url in urls:
        assert client.get(url).status_code == 200, url
    if who != "admin_user":
        assert client.get(reverse("reissuerequest-new")).status_code == 403
        assert b"Install reissued pack" not in client.get(open_call.get_absolute_url()).content


def test_audit_report_link_takes_the_pages_date_time_filter(client, auditor, admin_user, cal, target):
    transfer_services.transfer_file(license=cal, target_machine=target, reason="r", actor=admin_user)
    client.force_login(auditor)
    page = client.get(reverse("reports")).content.decode()
    assert 'type="datetime-local" name="since"' in page
    since = (timezone.now() - timezone.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")
    response = client.get("/api/v1/reports/audit-trail.csv", {"since": since, "action": "transfer"})
    assert response.status_code == 200
    body = b"".join(response.streaming_content).decode("utf-8-sig")
    assert "transfer.requested" in body


def test_refused_role_sees_the_reason_on_a_403_page(client, auditor, cal):
    client.force_login(auditor)
    response = client.get(reverse("transfer-new"))
    assert response.status_code == 403
    assert "Only administrators and requesters file transfer requests." in response.content.decode()
    assert client.get("/transfers/999999/").status_code == 404
