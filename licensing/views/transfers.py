"""The transfer pages: filing, the article's checklist, and its workflow actions."""

from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from core import roles
from core.lists import KeysetListView
from core.views import require_admin, require_can_file, run_service
from licensing import filtersets, tables
from licensing import forms as lf
from licensing import models as m
from licensing.services import transfers as transfer_services

REGISTRY_KEY = r"HKEY_LOCAL_MACHINE\SOFTWARE\Microsoft\MSLicensing"


class TransferListView(KeysetListView):
    filterset_class = filtersets.TransferFilterSet
    template_name = "licensing/transfer_list.html"
    title = "Transfer requests"
    table = tables.TRANSFERS
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
