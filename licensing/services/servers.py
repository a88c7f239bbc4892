"""License servers, key packs and CSC contacts."""

from datetime import date

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from core.locks import lock_one
from core.services import create_validated, update_validated
from licensing import rules
from licensing.choices import VERSION_RANK
from licensing.models import (
    CscContact,
    KeyPack,
    KeyPackOrigin,
    LicenseServer,
)
from licensing.rules import refuse_if
from licensing.services.licenses import issued_count
from licensing.services.versions import check_version_supported, newest_product_held

LICENSE_SERVER_FIELDS = (
    "name", "windows_version", "server_id", "activation_status",
    "builtin_cal_for_pro_clients", "location", "notes",
)
KEY_PACK_EDITABLE_FIELDS = (
    "key_pack_id", "license_program", "agreement_number", "total_licenses", "installed_on",
    "expires_on", "description", "notes", "product_version", "cal_type",
)
# Issued CALs copy these from their pack; once a pack has issued, they are fixed.
KEY_PACK_FIELDS_FIXED_ONCE_ISSUED = ("product_version", "cal_type")
CSC_CONTACT_FIELDS = ("location", "phone_number", "hours", "notes")


def license_server_create(*, actor, **fields) -> LicenseServer:
    if fields.get("builtin_cal_for_pro_clients") is None:
        fields["builtin_cal_for_pro_clients"] = LicenseServer.default_builtin_cal(
            fields.get("windows_version")
        )
    with transaction.atomic():
        return create_validated(
            instance=LicenseServer(**fields), actor=actor, action="license_server.created",
            summary=f"License server {fields.get('name')} added.",
        )


def license_server_update(*, license_server: LicenseServer, actor, data: dict) -> LicenseServer:
    with transaction.atomic():
        # FOR UPDATE, not the usual NO KEY UPDATE: a key pack entering the server meanwhile
        # (check_version_supported, FOR KEY SHARE) waits, and this sees it.
        server = LicenseServer.objects.select_for_update(of=("self",)).get(pk=license_server.pk)
        if data.get("windows_version", server.windows_version) not in (server.windows_version, None) and (
                data["windows_version"] in VERSION_RANK):
            refuse_if(rules.server_version_refusal(
                server_name=server.name, server_version=data["windows_version"],
                newest_held=newest_product_held(server.pk),
            ))
        server, _ = update_validated(
            instance=server, data=data, fields=LICENSE_SERVER_FIELDS, actor=actor,
            action="license_server.updated", summary=f"License server {server.name} edited.",
        )
    return server


def key_pack_install(
    *,
    actor,
    license_server: LicenseServer,
    key_pack_id: int,
    product_version: str,
    cal_type: str,
    license_program: str,
    total_licenses: int,
    installed_on: date | None = None,
    agreement_number: str = "",
    expires_on: date | None = None,
    description: str = "",
    notes: str = "",
) -> KeyPack:
    """Record a purchased key pack installed on a license server (origin ``original``);
    installed today unless ``installed_on`` says otherwise. Rule 13: ``version_not_supported``
    for a pack newer than its server."""
    installed_on = installed_on or timezone.localdate()
    pack = KeyPack(
        license_server=license_server, key_pack_id=key_pack_id, product_version=product_version,
        cal_type=cal_type, license_program=license_program, total_licenses=total_licenses,
        installed_on=installed_on, agreement_number=agreement_number, expires_on=expires_on,
        description=description, notes=notes, origin=KeyPackOrigin.ORIGINAL,
    )
    with transaction.atomic():
        if product_version in VERSION_RANK:  # an unknown one is a field error, from full_clean
            check_version_supported(license_server_id=license_server.pk, product_version=product_version)
        return create_validated(
            instance=pack, actor=actor, action="key_pack.installed",
            summary=f"Key pack {key_pack_id} ({total_licenses} {pack.get_cal_type_display()} "
            f"CALs, {pack.get_product_version_display()}) installed on {license_server.name}.",
        )


def key_pack_update(*, key_pack: KeyPack, actor, data: dict) -> KeyPack:
    """Edit a key pack. Its total never drops below what it has issued (``below_issued``)."""
    with transaction.atomic():
        pack = lock_one(KeyPack.objects.select_related("license_server"), key_pack.pk)
        issued = issued_count(pack)
        total = data.get("total_licenses", pack.total_licenses)
        if total is not None:
            refuse_if(rules.below_issued_refusal(
                key_pack_id=pack.key_pack_id, server_name=pack.license_server.name, issued=issued, total=total,
            ))
        if issued:
            fixed = {
                f: f"It cannot change once the pack has issued licenses ({issued} issued)."
                for f in KEY_PACK_FIELDS_FIXED_ONCE_ISSUED
                if f in data and data[f] != getattr(pack, f)
            }
            if fixed:
                raise ValidationError(fixed)
        if data.get("product_version", pack.product_version) != pack.product_version and (
                data["product_version"] in VERSION_RANK):
            check_version_supported(license_server_id=pack.license_server_id,
                                    product_version=data["product_version"])
        pack, _ = update_validated(
            instance=pack, data=data, fields=KEY_PACK_EDITABLE_FIELDS, actor=actor,
            action="key_pack.updated",
            summary=f"Key pack {pack.key_pack_id} on {pack.license_server.name} edited.",
        )
    return pack


def csc_contact_create(*, actor, **fields) -> CscContact:
    with transaction.atomic():
        return create_validated(
            instance=CscContact(**fields), actor=actor, action="csc_contact.created",
            summary=f"CSC contact {fields.get('location')} ({fields.get('phone_number')}) added.",
        )


def csc_contact_update(*, contact: CscContact, actor, data: dict) -> CscContact:
    with transaction.atomic():
        contact = lock_one(CscContact.objects, contact.pk)
        contact, _ = update_validated(
            instance=contact, data=data, fields=CSC_CONTACT_FIELDS, actor=actor,
            action="csc_contact.updated", summary=f"CSC contact {contact.location} edited.",
        )
    return contact

