"""The reconciliation page: where the license servers and the portal disagree."""

from django import forms
from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from core.lists import KeysetListView
from core.views import require_admin, run_service
from licensing import filtersets, tables
from licensing.models import DriftItem, DriftState
from licensing.services.reconciliation import drift_acknowledge


class AcknowledgeForm(forms.Form):
    note = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}),
                           help_text="Why the portal and the server may disagree here (kept with the item).")


class DriftListView(KeysetListView):
    filterset_class = filtersets.DriftItemFilterSet
    template_name = "licensing/drift_list.html"
    title = "Reconciliation"
    table = tables.DRIFT_ITEMS
    export_report = "drift"
    empty_message = "No drift matches these filters: the license servers and the portal agree."
    filter_fields = ("q", "state", "kind", "license_server", "product_version")

    def get_queryset(self):
        return DriftItem.objects.select_related("license_server", "machine", "last_seen_snapshot")

    def get(self, request, *args, **kwargs):
        if "state" not in request.GET and not request.GET.get("after") and not request.GET.get("before"):
            # Open items first: what needs a look.
            request.GET = request.GET.copy()
            request.GET["state"] = DriftState.OPEN
        return super().get(request, *args, **kwargs)


def _item(pk):
    return get_object_or_404(DriftItem.objects.select_related(
        "license_server", "machine", "key_pack", "license", "first_seen_snapshot", "last_seen_snapshot",
        "resolved_snapshot", "acknowledged_by"), pk=pk)


def drift_detail(request, pk, form=None, refusal=None, status=200):
    item = _item(pk)
    return render(request, "licensing/drift_detail.html", {
        "item": item, "form": form or AcknowledgeForm(), "refusal": refusal,
        "can_acknowledge": item.state == DriftState.OPEN, "title": f"Drift #{item.pk}",
    }, status=status)


@require_POST
def drift_acknowledge_view(request, pk):
    require_admin(request.user)
    item = _item(pk)
    form = AcknowledgeForm(request.POST)
    refusal = None
    if form.is_valid():
        done, refusal = run_service(form, lambda: drift_acknowledge(item=item, actor=request.user,
                                                                    note=form.cleaned_data["note"]))
        if done is not None:
            messages.success(request, f"Drift #{item.pk} acknowledged.")
            return redirect(item)
    return drift_detail(request, pk, form=form, refusal=refusal, status=409 if refusal else 400)
