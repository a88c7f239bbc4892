"""Pages of licenses, key packs and the CSC phone book."""

from django.contrib import messages
from django.db.models import Count, Q
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from core import roles
from core.lists import KeysetListView
from core.views import form_page, require_admin, run_service
from licensing import filtersets, rules, tables
from licensing import forms as lf
from licensing import models as m
from licensing.choices import REVOCATION_FROM, version_rank
from licensing.services import revocations as revocation_services
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
        return (m.KeyPack.objects.with_counts().select_related("license_server")
                .annotate(revoked_count=_revoked_count()))


def _revoked_count() -> Count:
    """A pack's CALs revoked (rule 12): their seats came back to it."""
    return Count("licenses", filter=Q(licenses__status=m.LicenseStatus.REVOKED))


class CscContactListView(KeysetListView):
    filterset_class = filtersets.CscContactFilterSet
    template_name = "licensing/csccontact_list.html"
    title = "CSC phone book"
    table = tables.CSC_CONTACTS
    empty_message = "The phone book is empty. Add the Customer Service Center nearest you."

    def get_queryset(self):
        return m.CscContact.objects.all()


def _get_license(pk):
    return get_object_or_404(
        m.License.objects.select_related("machine", "key_pack", "license_server",
                                         "transferred_from__machine"), pk=pk)


def _revocation_context(user, license, open_transfer) -> dict:
    """Rule 12 on the license's page: its revocation, the server's quota for its product,
    and whether it may be revoked now (or why not, as the service would refuse it)."""
    server = license.license_server
    revocation = None
    if license.status == m.LicenseStatus.REVOKED:
        revocation = m.Revocation.objects.select_related("recorded_by", "key_pack").filter(license=license).first()
    supported = version_rank(server.windows_version) >= version_rank(REVOCATION_FROM)
    quota = None
    if supported and license.kind == m.LicenseKind.PERMANENT:
        quota = revocation_services.quota_state(license_server_id=server.pk, product_version=license.product_version)
    refusal = None
    if revocation is None:
        refusal = rules.revoke_refusal(
            license_pk=license.pk, hostname=license.machine.hostname, server_name=server.name,
            server_version=server.windows_version, kind=license.kind,
            cal_type=license.key_pack.cal_type if license.key_pack_id else None, status=license.status,
            pending=(f"#{open_transfer.pk} ({open_transfer.status.replace('_', ' ')})" if open_transfer else None),
        )
    return {
        "revocation": revocation,
        "revocation_supported": supported,
        "revocation_from": m.WindowsVersion(REVOCATION_FROM).label,
        "quota": quota,
        "quota_percent": rules.REVOKE_QUOTA_PERCENT,
        "revoke_refusal_now": refusal,
        "can_revoke": refusal is None and revocation is None and roles.is_admin(user),
        "revoke_form": lf.RevokeLicenseForm(prefix="revoke"),
    }


def _license_context(request, license, **extra) -> dict:
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
    context = {
        "license": license,
        "lineage": lineage,
        "successor": successor,
        "transfers": transfers,
        "produced_by": produced_by,
        "transferable": reason is None,
        "transferability_reason": reason,
        "transferability_short": reason.split(":")[0] if reason else "",
        "open_transfer": open_transfer,
        **_revocation_context(request.user, license, open_transfer),
    }
    context.update(extra)
    return context


def license_detail(request, pk):
    license = _get_license(pk)
    return render(request, "licensing/license_detail.html", _license_context(request, license))


@require_POST
def license_revoke(request, pk):
    """Record a revocation done in RD Licensing Manager (rule 12): one service call; a
    refusal shows on the license's page, with its code, and changes nothing."""
    require_admin(request.user)
    license = _get_license(pk)
    form = lf.RevokeLicenseForm(request.POST, prefix="revoke")
    refusal = None
    if form.is_valid():
        data = form.cleaned_data
        revoked, refusal = run_service(form, lambda: revocation_services.license_revoke(
            license=license, actor=request.user, note=data["note"], revoked_at=data["revoked_at"]))
        if revoked is not None:
            pack = revoked.key_pack
            messages.success(request, f"CAL #{revoked.pk} on {revoked.machine.hostname} revoked on "
                             f"{timezone.localtime(revoked.revoked_at):%Y-%m-%d %H:%M}; its seat is back in key pack "
                             f"{pack.key_pack_id}.")
            return redirect(revoked)
    context = _license_context(request, license, revoke_form=form, revoke_refusal=refusal)
    return render(request, "licensing/license_detail.html", context, status=409 if refusal else 400)


def keypack_detail(request, pk):
    pack = get_object_or_404(
        m.KeyPack.objects.with_counts().select_related("license_server", "reissue_request")
        .annotate(revoked_count=_revoked_count()), pk=pk)
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
