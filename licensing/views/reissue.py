"""CSC reissue calls: logging a call, and installing the reissued key pack."""

from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from core import roles
from core.lists import KeysetListView
from core.views import require_admin, run_service
from licensing import filtersets, tables
from licensing import forms as lf
from licensing import models as m
from licensing.services import reissue as reissue_services


class ReissueRequestListView(KeysetListView):
    filterset_class = filtersets.ReissueRequestFilterSet
    template_name = "licensing/reissuerequest_list.html"
    title = "CSC reissue calls"
    table = tables.REISSUE_REQUESTS
    export_report = "reissue-requests"
    empty_message = "No CSC calls match these filters."
    filter_fields = ("q", "status", "license_server", "product_version", "license_program", "since", "until")

    def get_queryset(self):
        return m.ReissueRequest.objects.select_related("license_server", "key_pack")


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
