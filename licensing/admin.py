"""The Django admin shows everything and changes nothing directly.

Every change to licensing data goes through a service, with its rule checks and its
audit event; the admin is a read-only window (the portal's pages and API write).
History is never deleted (rule 10), so no model offers delete here either.
"""

from django.contrib import admin

from core.admin import ReadOnlyAdmin
from licensing import models as m


@admin.register(m.LicenseServer)
class LicenseServerAdmin(ReadOnlyAdmin):
    list_display = ("name", "windows_version", "activation_status", "builtin_cal_for_pro_clients", "location")
    search_fields = ("name", "server_id")


@admin.register(m.KeyPack)
class KeyPackAdmin(ReadOnlyAdmin):
    list_display = ("key_pack_id", "license_server", "product_version", "cal_type", "license_program",
                    "total_licenses", "origin", "installed_on")
    list_filter = ("origin", "cal_type", "product_version", "license_program")
    list_select_related = ("license_server",)
    search_fields = ("=key_pack_id", "agreement_number")


@admin.register(m.License)
class LicenseAdmin(ReadOnlyAdmin):
    list_display = ("id", "license_id", "machine", "key_pack", "license_server", "product_version", "kind",
                    "status", "issued_at", "expires_at")
    list_filter = ("status", "kind", "product_version")
    list_select_related = ("machine", "key_pack", "key_pack__license_server", "license_server")
    search_fields = ("machine__hostname",)
    raw_id_fields = ("machine", "key_pack", "transferred_from")


@admin.register(m.TransferRequest)
class TransferRequestAdmin(ReadOnlyAdmin):
    list_display = ("id", "license", "source_machine", "target_machine", "status", "requested_by", "requested_at")
    list_filter = ("status",)
    list_select_related = ("license", "source_machine", "target_machine", "requested_by")


@admin.register(m.ReissueRequest)
class ReissueRequestAdmin(ReadOnlyAdmin):
    list_display = ("id", "called_at", "csc_location", "license_server", "product_version", "quantity_requested",
                    "quantity_granted", "status")
    list_filter = ("status",)
    list_select_related = ("license_server",)


@admin.register(m.CscContact)
class CscContactAdmin(ReadOnlyAdmin):
    list_display = ("location", "phone_number", "hours")


@admin.register(m.ExportJob)
class ExportJobAdmin(ReadOnlyAdmin):
    list_display = ("id", "report", "format", "status", "progress", "requested_by", "created_at")
