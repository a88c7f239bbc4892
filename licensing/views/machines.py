"""A client machine's page: its CAL history, and issuing and retiring from it."""

from django.contrib import messages
from django.db.models import Q
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from core.models import AuditEvent
from core.views import require_admin, run_service
from inventory import services
from inventory.forms import RetireMachineForm
from inventory.models import ClientMachine
from licensing.forms import IssueLicenseForm
from licensing.models import License, LicenseKind, TransferRequest
from licensing.services import licenses as license_services

TIMELINE_AUDIT_LIMIT = 50


def machine_timeline(machine, licenses, transfers) -> list[dict]:
    """The machine's CAL history, newest first: issued, transferred, temporary, expired."""
    events = []
    for lic in licenses:
        if lic.kind == LicenseKind.TEMPORARY:
            text = (f"Temporary CAL #{lic.pk} ({lic.get_product_version_display()}) issued on "
                    f"{lic.license_server.name}, expires {lic.expires_at:%Y-%m-%d}.")
            kind = "temporary"
        elif lic.transferred_from_id:
            text = (f"Permanent CAL #{lic.pk} ({lic.get_product_version_display()}) received "
                    f"by transfer from CAL #{lic.transferred_from_id}.")
            kind = "transferred-in"
        else:
            pack = lic.key_pack.key_pack_id if lic.key_pack else "?"
            text = (f"Permanent CAL #{lic.pk} ({lic.get_product_version_display()}) issued "
                    f"from key pack {pack} on {lic.license_server.name}.")
            kind = "issued"
        events.append({"at": lic.issued_at, "kind": kind, "text": text, "url": lic.get_absolute_url()})
        if lic.ended_at:
            events.append({
                "at": lic.ended_at,
                "kind": "transferred" if lic.status == "transferred" else "expired",
                "text": f"CAL #{lic.pk} {lic.get_status_display().lower()}: "
                f"{lic.get_end_reason_display() or 'ended'}.",
                "url": lic.get_absolute_url(),
            })
    for transfer in transfers:
        outgoing = transfer.source_machine_id == machine.pk
        other = transfer.target_machine if outgoing else transfer.source_machine
        direction = f"to {other.hostname}" if outgoing else f"from {other.hostname}"
        events.append({
            "at": transfer.requested_at, "kind": "transfer",
            "text": f"Transfer #{transfer.pk} of CAL #{transfer.license_id} {direction} filed by "
            f"{transfer.requested_by.get_username()} ({transfer.get_status_display().lower()}).",
            "url": transfer.get_absolute_url(),
        })
    events.sort(key=lambda e: e["at"], reverse=True)
    return events


def _machine_context(machine, **forms) -> dict:
    licenses = list(
        License.objects.filter(machine=machine)
        .select_related("key_pack", "license_server")
        .order_by("-issued_at", "-pk")
    )
    transfers = list(
        TransferRequest.objects.filter(Q(source_machine=machine) | Q(target_machine=machine))
        .select_related("source_machine", "target_machine", "requested_by")
        .order_by("-pk")
    )
    # Indexed look-ups only (object_type, object_id): the machine, its CALs and transfers.
    audit_q = Q(object_type="clientmachine", object_id=str(machine.pk))
    if licenses:
        audit_q |= Q(object_type="license", object_id__in=[str(x.pk) for x in licenses])
    if transfers:
        audit_q |= Q(object_type="transferrequest", object_id__in=[str(t.pk) for t in transfers])
    audit_events = list(AuditEvent.objects.filter(audit_q).order_by("-sequence")[:TIMELINE_AUDIT_LIMIT])
    context = {
        "machine": machine,
        "licenses": licenses,
        "transfers": transfers,
        "timeline": machine_timeline(machine, licenses, transfers),
        "audit_events": audit_events,
        "issue_form": IssueLicenseForm(prefix="issue"),
        "retire_form": RetireMachineForm(prefix="retire"),
    }
    context.update(forms)
    return context


def machine_detail(request, pk):
    machine = get_object_or_404(ClientMachine, pk=pk)
    return render(request, "inventory/machine_detail.html", _machine_context(machine))


@require_POST
def machine_issue(request, pk):
    require_admin(request.user)
    machine = get_object_or_404(ClientMachine, pk=pk)
    form = IssueLicenseForm(request.POST, prefix="issue")
    refusal = None
    if form.is_valid():
        data = form.cleaned_data

        def call():
            if data["kind"] == LicenseKind.PERMANENT:
                return license_services.license_issue_permanent(
                    machine=machine, key_pack=data["key_pack"], actor=request.user)
            return license_services.license_issue_temporary(
                machine=machine, license_server=data["license_server"],
                product_version=data["product_version"], actor=request.user)

        license, refusal = run_service(form, call)
        if license is not None:
            messages.success(request, f"{license} issued to {machine.hostname}.")
            return redirect(machine)
    context = _machine_context(machine, issue_form=form, issue_refusal=refusal)
    return render(request, "inventory/machine_detail.html", context, status=409 if refusal else 400)


@require_POST
def machine_retire(request, pk):
    require_admin(request.user)
    machine = get_object_or_404(ClientMachine, pk=pk)
    form = RetireMachineForm(request.POST, prefix="retire")
    refusal = None
    if form.is_valid():
        retired, refusal = run_service(
            form, lambda: services.machine_retire(machine=machine, actor=request.user))
        if retired is not None:
            messages.success(request, f"Machine {retired.hostname} retired.")
            return redirect(retired)
    context = _machine_context(machine, retire_form=form, retire_refusal=refusal)
    return render(request, "inventory/machine_detail.html", context, status=409 if refusal else 400)
