"""Pages of licenses, key packs and the CSC phone book."""

from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse

from core.lists import KeysetListView
from core.views import form_page, require_admin, run_service
from licensing import filtersets, tables
from licensing import forms as lf
from licensing import models as m
from licensing.services import servers as server_services

KEY_PACK_LICENSES_SHOWN = 50


class LicenseListView(KeysetListView):
    filterset_class = filtersets.LicenseFilterSet
    template_name = "licensing/license_list.html"
    title = "Licenses"
    table = tables.LICENSES
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
    table = tables.KEY_PACKS
    empty_message = "No key packs match these filters."

    def get_queryset(self):
        return m.KeyPack.objects.with_counts().select_related("license_server")


class CscContactListView(KeysetListView):
    filterset_class = filtersets.CscContactFilterSet
    template_name = "licensing/csccontact_list.html"
    title = "CSC phone book"
    table = tables.CSC_CONTACTS
    empty_message = "The phone book is empty. Add the Customer Service Center nearest you."

    def get_queryset(self):
        return m.CscContact.objects.all()


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
            form, lambda: server_services.key_pack_install(actor=request.user, **form.cleaned_data))
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
            form, lambda: server_services.csc_contact_create(actor=request.user, **form.cleaned_data))
        if contact is not None:
            messages.success(request, f"CSC contact {contact} added to the phone book.")
            return redirect("csccontact-list")
    return form_page(request, form, title="Add a CSC contact", submit="Add contact",
                      cancel_url="csccontact-list", refusal=refusal)
