"""The Django admin shows everything and changes nothing directly.

Every change goes through a service, with its rule checks and its audit event; the admin
is a read-only window. History is never deleted (rule 10), so no model offers delete.
"""

from django.contrib import admin

from core.models import AlertRecord, AuditEvent


class ReadOnlyAdmin(admin.ModelAdmin):
    list_per_page = 50
    show_full_result_count = False

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    list_display = ("sequence", "occurred_at", "actor", "action", "object_type", "object_id", "summary")
    list_filter = ("action",)
    search_fields = ("=actor", "summary")


@admin.register(AlertRecord)
class AlertRecordAdmin(ReadOnlyAdmin):
    list_display = ("kind", "object_type", "object_id", "threshold", "sent_at")
