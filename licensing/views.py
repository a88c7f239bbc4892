"""Licensing pages: lists, detail pages and the article's workflow forms."""

from django import forms
from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from licensing import filtersets
from licensing import forms as lf
from licensing import models as m
from licensing.services import inventory as inventory_services
from licensing.services import reissue as reissue_services
from licensing.services import transfers as transfer_services
from portal import roles
from portal.views import (
    KeysetListView,
    form_page,
    polish_filter_form,
    require_admin,
    require_can_file,
    run_service,
)

KEY_PACK_LICENSES_SHOWN = 50
REGISTRY_KEY = r"HKEY_LOCAL_MACHINE\SOFTWARE\Microsoft\MSLicensing"


# --- lists -------------------------------------------------------------------------------


class LicenseListView(KeysetListView):
    filterset_class = filtersets.LicenseFilterSet
    template_name = "licensing/license_list.html"
    title = "Licenses"
    columns = (("CAL", "id"), ("Host name", "hostname"), ("Product", "product_version"),
               ("Kind", "kind"), ("Status", "status"), ("Key pack", None), ("License server", None),
               ("Issued", "issued_at"))
    sort_fields = {"id": "pk", "hostname": "machine__hostname", "product_version": "product_version",
                   "kind": "kind", "status": "status", "issued_at": "issued_at"}
    default_sort = "-id"
    export_report = "licenses"
    empty_message = "No licenses match these filters."
    filter_fields = ("q", "status", "kind", "product_version", "license_server", "license_program",
                     "os_edition", "issued_after", "issued_before")

    def get_queryset(self):
        return m.License.objects.select_related("machine", "key_pack", "license_server")

    def present(self, rows):
        """Plain values per row, so the template only prints: the assignment browser is the
        busiest page, and per-cell method calls and URL reversals were most of its time."""
        license_url = reverse("license-detail", args=[0])[:-2]
        machine_url = reverse("machine-detail", args=[0])[:-2]
        pack_url = reverse("keypack-detail", args=[0])[:-2]
        products = dict(m.WindowsVersion.choices)
        kinds = dict(m.LicenseKind.choices)
        statuses = dict(m.LicenseStatus.choices)
        return [
            {
                "pk": lic.pk,
                "url": f"{license_url}{lic.pk}/",
                "license_id": lic.license_id,
                "hostname": lic.machine.hostname,
                "machine_url": f"{machine_url}{lic.machine_id}/",
                "product": products.get(lic.product_version, lic.product_version),
                "kind": kinds.get(lic.kind, lic.kind),
                "status": lic.status,
                "status_label": statuses.get(lic.status, lic.status),
                "by_transfer": lic.transferred_from_id is not None,
                "key_pack_id": lic.key_pack.key_pack_id if lic.key_pack_id else None,
                "key_pack_url": f"{pack_url}{lic.key_pack_id}/" if lic.key_pack_id else None,
                "server": lic.license_server.name,
                "issued_iso": lic.issued_at.isoformat(),
                "issued_on": lic.issued_at.date().isoformat(),
                "expires_on": lic.expires_at.date().isoformat() if lic.expires_at else None,
            }
            for lic in rows
        ]


class KeyPackListView(KeysetListView):
    filterset_class = filtersets.KeyPackFilterSet
    template_name = "licensing/keypack_list.html"
    title = "Key packs"
    columns = (("KeyPackId", "key_pack_id"), ("License server", "license_server"),
               ("Product", "product_version"), ("CAL type", "cal_type"), ("Program", None),
               ("Total", "total_licenses"), ("Issued", None), ("Available", None),
               ("Origin", "origin"), ("Installed", "installed_on"))
    sort_fields = {"id": "pk", "key_pack_id": "key_pack_id", "license_server": "license_server__name",
                   "product_version": "product_version", "cal_type": "cal_type",
                   "total_licenses": "total_licenses", "origin": "origin", "installed_on": "installed_on"}
    default_sort = "-id"
    empty_message = "No key packs match these filters."

    def get_queryset(self):
        return m.KeyPack.objects.with_counts().select_related("license_server")


class TransferListView(KeysetListView):
    filterset_class = filtersets.TransferFilterSet
    template_name = "licensing/transfer_list.html"
    title = "Transfer requests"
    columns = (("Transfer", "id"), ("CAL", None), ("From", None), ("To", None), ("Status", "status"),
               ("Requested by", None), ("Requested", "requested_at"))
    sort_fields = {"id": "pk", "status": "status", "requested_at": "requested_at"}
    default_sort = "-id"
    export_report = "transfers"
    filter_fields = ("q", "status", "product_version", "license_server", "requested_by", "since", "until")

    def get_queryset(self):
        return m.TransferRequest.objects.select_related(
            "license", "source_machine", "target_machine", "requested_by")

    def get_extra_context(self):
        status = self.request.GET.get("status")
        messages_by_status = {
            m.TransferStatus.REQUESTED: "No transfers waiting for approval.",
            m.TransferStatus.APPROVED: "No approved transfers waiting for the CAL's removal.",
            m.TransferStatus.REMOVAL_CONFIRMED: "No transfers ready for a CSC call.",
            m.TransferStatus.AWAITING_REISSUE: "No transfers waiting for a reissued key pack.",
        }
        return {"empty_message": messages_by_status.get(status, "No transfers match these filters.")}


class ReissueRequestListView(KeysetListView):
    filterset_class = filtersets.ReissueRequestFilterSet
    template_name = "licensing/reissuerequest_list.html"
    title = "CSC reissue calls"
    columns = (("Call", "id"), ("Called", "called_at"), ("CSC", None), ("License server", None),
               ("Product", "product_version"), ("Requested", None), ("Granted", None),
               ("Status", "status"))
    sort_fields = {"id": "pk", "called_at": "called_at", "status": "status",
                   "product_version": "product_version"}
    default_sort = "-id"
    export_report = "reissue-requests"
    empty_message = "No CSC calls match these filters."
    filter_fields = ("q", "status", "license_server", "product_version", "license_program", "since", "until")

    def get_queryset(self):
        return m.ReissueRequest.objects.select_related("license_server", "key_pack")


class AuditEventListView(KeysetListView):
    filterset_class = filtersets.AuditEventFilterSet
    template_name = "licensing/audit_list.html"
    title = "Audit trail"
    columns = (("#", "sequence"), ("When", "occurred_at"), ("Actor", None), ("Action", None),
               ("Object", None), ("Summary", None))
    sort_fields = {"sequence": "sequence", "occurred_at": "occurred_at"}
    default_sort = "-sequence"
    export_report = "audit-trail"
    empty_message = "No audit events match these filters."
    filter_fields = ("q", "action", "actor", "machine", "key_pack", "since", "until")

    def get_queryset(self):
        return m.AuditEvent.objects.defer("data", "prev_hash")


class CscContactListView(KeysetListView):
    filterset_class = filtersets.CscContactFilterSet
    template_name = "licensing/csccontact_list.html"
    title = "CSC phone book"
    columns = (("Location", "location"), ("Phone number", "phone_number"), ("Hours", None),
               ("Notes", None))
    sort_fields = {"location": "location", "phone_number": "phone_number", "id": "pk"}
    default_sort = "location"
    empty_message = "The phone book is empty. Add the Customer Service Center nearest you."

    def get_queryset(self):
        return m.CscContact.objects.all()


# --- licenses and key packs ---------------------------------------------------------------


def license_detail(request, pk):
    license = get_object_or_404(
        m.License.objects.select_related("machine", "key_pack", "license_server",
                                         "transferred_from__machine"), pk=pk)
    lineage = []
    current = license
    while current.transferred_from_id and len(lineage) < 10:
        current = current.transferred_from
        lineage.append(current)
    lineage.reverse()
    successor = (m.License.objects.select_related("machine")
                 .filter(transferred_from=license).first())
    transfers = list(license.transfer_requests.select_related("target_machine", "requested_by")
                     .order_by("-pk"))
    produced_by = (m.TransferRequest.objects.select_related("source_machine")
                   .filter(resulting_license=license).first())
    reason = license.transferability_reason
    open_transfer = next((t for t in transfers if t.is_open), None)
    return render(request, "licensing/license_detail.html", {
        "license": license,
        "lineage": lineage,
        "successor": successor,
        "transfers": transfers,
        "produced_by": produced_by,
        "transferable": reason is None,
        "transferability_reason": reason,
        "transferability_short": reason.split(":")[0] if reason else "",
        "open_transfer": open_transfer,
    })


def keypack_detail(request, pk):
    pack = get_object_or_404(
        m.KeyPack.objects.with_counts().select_related("license_server", "reissue_request"), pk=pk)
    licenses = list(pack.licenses.select_related("machine").order_by("-pk")[:KEY_PACK_LICENSES_SHOWN])
    return render(request, "licensing/keypack_detail.html", {
        "pack": pack, "licenses": licenses, "licenses_shown": KEY_PACK_LICENSES_SHOWN,
    })


def keypack_new(request):
    require_admin(request.user)
    form = lf.KeyPackForm(request.POST or None)
    refusal = None
    if request.method == "POST" and form.is_valid():
        pack, refusal = run_service(
            form, lambda: inventory_services.key_pack_install(actor=request.user, **form.cleaned_data))
        if pack is not None:
            messages.success(request, f"Key pack {pack.key_pack_id} installed on {pack.license_server}.")
            return redirect(pack)
    return form_page(request, form, title="Add a purchased key pack", submit="Add key pack",
                      cancel_url="keypack-list", refusal=refusal,
                      intro="Reissued packs are added from their CSC call's page.")


def csccontact_new(request):
    require_admin(request.user)
    form = lf.CscContactForm(request.POST or None)
    refusal = None
    if request.method == "POST" and form.is_valid():
        contact, refusal = run_service(
            form, lambda: inventory_services.csc_contact_create(actor=request.user, **form.cleaned_data))
        if contact is not None:
            messages.success(request, f"CSC contact {contact} added to the phone book.")
            return redirect("csccontact-list")
    return form_page(request, form, title="Add a CSC contact", submit="Add contact",
                      cancel_url="csccontact-list", refusal=refusal)


# --- transfers ----------------------------------------------------------------------------


def transfer_new(request):
    require_can_file(request.user)
    initial = {}
    if request.method == "GET" and request.GET.get("license", "").isdigit():
        initial["license"] = int(request.GET["license"])
    form = lf.TransferFileForm(request.POST or None, initial=initial)
    refusal = None
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        transfer, refusal = run_service(form, lambda: transfer_services.transfer_file(
            license=data["license"], target_machine=data["target_machine"], reason=data["reason"],
            actor=request.user))
        if transfer is not None:
            messages.success(request, f"Transfer #{transfer.pk} filed; a second administrator "
                             "approves it next.")
            return redirect(transfer)
    source = None
    license_id = form["license"].value()
    if license_id and str(license_id).isdigit():
        source = (m.License.objects.select_related("machine", "license_server")
                  .filter(pk=int(license_id)).first())
    status = 200 if request.method == "GET" else (409 if refusal else 400)
    return render(request, "licensing/transfer_form.html",
                  {"form": form, "refusal": refusal, "source": source}, status=status)


def transfer_steps(transfer) -> list[dict]:
    """The article's steps, each with who did it and when."""
    call = transfer.reissue_request
    completed = transfer.status == m.TransferStatus.COMPLETED
    on_call = call is not None
    pack = getattr(call, "key_pack", None) if (call and completed) else None
    return [
        {"key": "filed", "title": "Transfer filed", "done": True,
         "by": transfer.requested_by, "at": transfer.requested_at,
         "detail": transfer.reason},
        {"key": "approved", "title": "Approved by a second administrator",
         "done": transfer.approved_at is not None, "by": transfer.approved_by,
         "at": transfer.approved_at, "detail": transfer.decision_note if transfer.approved_at else ""},
        {"key": "removed", "title": "CAL removed from the source machine",
         "done": transfer.removal_confirmed_at is not None, "by": transfer.removal_confirmed_by,
         "at": transfer.removal_confirmed_at,
         "detail": transfer.get_removal_method_display() if transfer.removal_method else "",
         "registry": True},
        {"key": "called", "title": "Reissue requested from the CSC by telephone",
         "done": on_call, "by": call.logged_by if on_call else None,
         "at": call.called_at if on_call else None, "call": call},
        {"key": "installed", "title": "Reissued key pack installed",
         "done": completed, "by": call.closed_by if (on_call and completed) else None,
         "at": transfer.completed_at, "pack": pack, "resulting_license": transfer.resulting_license},
    ]


def _transfer_context(request, transfer, **extra) -> dict:
    user = request.user
    role = roles.role_of(user)
    status = transfer.status
    is_admin = role == roles.ADMIN
    four_eyes_ok = transfer.requested_by_id != user.pk
    cancellable = status in transfer_services.ALLOWED_FROM["cancel"] and (
        is_admin or (role == roles.REQUESTER and not four_eyes_ok))
    context = {
        "transfer": transfer,
        "steps": transfer_steps(transfer),
        "registry_key": REGISTRY_KEY,
        "earlier_calls": [c for c in transfer.reissue_calls.all() if c.pk != transfer.reissue_request_id],
        "can_approve": is_admin and four_eyes_ok and status in transfer_services.ALLOWED_FROM["approve"],
        "can_reject": is_admin and four_eyes_ok and status in transfer_services.ALLOWED_FROM["reject"],
        "can_confirm_removal": is_admin and status in transfer_services.ALLOWED_FROM["confirm_removal"],
        "can_cancel": cancellable,
        "can_log_call": is_admin and status == m.TransferStatus.REMOVAL_CONFIRMED,
        "own_request_awaiting_other_admin": is_admin and not four_eyes_ok
        and status == m.TransferStatus.REQUESTED,
        "approve_form": lf.DecisionNoteForm(prefix="approve"),
        "reject_form": lf.RequiredNoteForm(prefix="reject"),
        "removal_form": lf.ConfirmRemovalForm(prefix="removal"),
        "cancel_form": lf.DecisionNoteForm(prefix="cancel"),
    }
    context.update(extra)
    return context


def _get_transfer(pk):
    return get_object_or_404(
        m.TransferRequest.objects.select_related(
            "license__license_server", "license__key_pack", "source_machine", "target_machine",
            "requested_by", "approved_by", "removal_confirmed_by", "closed_by",
            "reissue_request__logged_by", "reissue_request__closed_by", "reissue_request__key_pack",
            "resulting_license"),
        pk=pk)


def transfer_detail(request, pk):
    transfer = _get_transfer(pk)
    return render(request, "licensing/transfer_detail.html", _transfer_context(request, transfer))


# action -> (form class, form prefix, admin only, what happened, service call)
TRANSFER_ACTIONS = {
    "approve": (lf.DecisionNoteForm, "approve", True, "approved",
                lambda t, u, d: transfer_services.transfer_approve(transfer=t, actor=u, note=d["note"])),
    "reject": (lf.RequiredNoteForm, "reject", True, "rejected",
               lambda t, u, d: transfer_services.transfer_reject(transfer=t, actor=u, note=d["note"])),
    "confirm-removal": (lf.ConfirmRemovalForm, "removal", True, "removal confirmed",
                        lambda t, u, d: transfer_services.transfer_confirm_removal(
                            transfer=t, actor=u, method=d["method"])),
    "cancel": (lf.DecisionNoteForm, "cancel", False, "cancelled",
               lambda t, u, d: transfer_services.transfer_cancel(transfer=t, actor=u, note=d["note"])),
}


@require_POST
def transfer_action(request, pk, action):
    form_class, prefix, admin_only, done, call = TRANSFER_ACTIONS[action]
    if admin_only:
        require_admin(request.user)
    else:
        require_can_file(request.user)
    transfer = _get_transfer(pk)
    form = form_class(request.POST, prefix=prefix)
    refusal = None
    if form.is_valid():
        result, refusal = run_service(form, lambda: call(transfer, request.user, form.cleaned_data))
        if result is not None:
            messages.success(request, f"Transfer #{transfer.pk} {done}.")
            return redirect(transfer)
    context = _transfer_context(request, transfer, **{f"{prefix}_form": form,
                                                     f"{prefix}_refusal": refusal})
    return render(request, "licensing/transfer_detail.html", context, status=409 if refusal else 400)


# --- CSC reissue calls --------------------------------------------------------------------


def reissuerequest_new(request):
    require_admin(request.user)
    initial = {}
    if request.method == "GET":
        ids = [int(x) for x in request.GET.getlist("transfers") if x.isdigit()]
        ready = list(m.TransferRequest.objects.filter(
            pk__in=ids, status=m.TransferStatus.REMOVAL_CONFIRMED).select_related("license__key_pack"))
        initial = {"called_at": timezone.now(), "transfers": [t.pk for t in ready]}
        if ready:
            first = ready[0].license
            initial.update(license_server=first.license_server_id, product_version=first.product_version,
                           quantity_requested=len(ready))
            if first.key_pack:
                initial.update(license_program=first.key_pack.license_program,
                               agreement_number=first.key_pack.agreement_number)
    form = lf.LogCallForm(request.POST or None, initial=initial)
    refusal = None
    if request.method == "POST" and form.is_valid():
        data = dict(form.cleaned_data)
        data["transfers"] = list(data["transfers"])
        call, refusal = run_service(form, lambda: reissue_services.reissue_log_call(actor=request.user, **data))
        if call is not None:
            messages.success(request, f"CSC call #{call.pk} logged; {len(data['transfers'])} transfer(s) "
                             "now await the reissued key pack.")
            return redirect(call)
    status = 200 if request.method == "GET" else (409 if refusal else 400)
    return render(request, "licensing/reissuerequest_form.html", {"form": form, "refusal": refusal},
                  status=status)


def _call_context(request, call, **extra) -> dict:
    is_admin = roles.is_admin(request.user)
    is_open = call.status == m.ReissueStatus.OPEN
    context = {
        "call": call,
        "covered": list(call.transfers.select_related("license", "source_machine", "target_machine",
                                                      "resulting_license").order_by("pk")),
        "pack": getattr(call, "key_pack", None),
        "can_act": is_admin and is_open,
        "install_form": lf.InstallReissueForm(prefix="install"),
        "deny_form": lf.RequiredNoteForm(prefix="deny"),
        "cancel_form": lf.DecisionNoteForm(prefix="cancel"),
    }
    context.update(extra)
    return context


def _get_call(pk):
    return get_object_or_404(
        m.ReissueRequest.objects.select_related("license_server", "logged_by", "closed_by",
                                                "csc_contact", "key_pack"), pk=pk)


def reissuerequest_detail(request, pk):
    call = _get_call(pk)
    return render(request, "licensing/reissuerequest_detail.html", _call_context(request, call))


CALL_ACTIONS = {
    "install": (lf.InstallReissueForm, "reissued key pack installed",
                lambda c, u, d: reissue_services.reissue_install(reissue_request=c, actor=u, **d)),
    "deny": (lf.RequiredNoteForm, "marked denied",
             lambda c, u, d: reissue_services.reissue_deny(reissue_request=c, actor=u, note=d["note"])),
    "cancel": (lf.DecisionNoteForm, "cancelled",
               lambda c, u, d: reissue_services.reissue_cancel(reissue_request=c, actor=u, note=d["note"])),
}


@require_POST
def reissuerequest_action(request, pk, action):
    require_admin(request.user)
    form_class, done, service = CALL_ACTIONS[action]
    call = _get_call(pk)
    form = form_class(request.POST, prefix=action)
    refusal = None
    if form.is_valid():
        result, refusal = run_service(form, lambda: service(call, request.user, form.cleaned_data))
        if result is not None:
            messages.success(request, f"CSC call #{call.pk}: {done}.")
            return redirect("reissuerequest-detail", pk=call.pk)
    context = _call_context(request, call, **{f"{action}_form": form, f"{action}_refusal": refusal})
    return render(request, "licensing/reissuerequest_detail.html", context,
                  status=409 if refusal else 400)


# --- reports ------------------------------------------------------------------------------


class ComplianceFilterForm(forms.Form):
    license_server = forms.ModelChoiceField(queryset=m.LicenseServer.objects.all(), required=False)
    product_version = forms.ChoiceField(choices=[("", "---------")] + list(m.WindowsVersion.choices),
                                        required=False)


REPORTS = (
    ("audit-trail", "Audit trail", "Every recorded change, with its actor and time.",
     filtersets.AuditEventFilterSet, ("since", "until", "action", "actor", "machine", "key_pack", "q")),
    ("licenses", "Current licenses", "The per-device CAL report: one row per license.",
     filtersets.LicenseFilterSet, ("status", "kind", "product_version", "license_server",
                                   "license_program", "issued_after", "issued_before", "q")),
    ("compliance", "Compliance", "Installed, issued and available CALs per license server and "
     "product, with temporary CALs active and expiring within 14 days.", ComplianceFilterForm,
     ("license_server", "product_version")),
    ("transfers", "Transfer history", "Every transfer request and where it stands.",
     filtersets.TransferFilterSet, ("status", "product_version", "license_server", "requested_by",
                                    "since", "until", "q")),
    ("reissue-requests", "CSC call log", "Every telephone call to the Customer Service Center.",
     filtersets.ReissueRequestFilterSet, ("status", "license_server", "product_version",
                                          "license_program", "since", "until", "q")),
)


def reports(request):
    # Requesters see what exists; the export buttons are for admins and auditors.
    entries = []
    for name, title, description, form_source, fields in REPORTS:
        if issubclass(form_source, forms.Form):
            form = form_source()
        else:
            form = form_source(queryset=form_source._meta.model.objects.none()).form
        form.auto_id = f"id_{name.replace('-', '_')}_%s"
        polish_filter_form(form)
        if name == "licenses":
            form.initial["status"] = m.LicenseStatus.ACTIVE
        entries.append({"name": name, "title": title, "description": description,
                        "fields": [form[f] for f in fields if f in form.fields],
                        "csv_url": f"/api/v1/reports/{name}.csv",
                        "xlsx_url": f"/api/v1/reports/{name}.xlsx"})
    return render(request, "licensing/reports.html", {"reports": entries})
