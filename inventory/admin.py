from django.contrib import admin

from core.admin import ReadOnlyAdmin
from inventory.models import ClientMachine


@admin.register(ClientMachine)
class ClientMachineAdmin(ReadOnlyAdmin):
    """Read-only: machines are added, edited and retired through the portal's services."""

    list_display = ("hostname", "os_edition", "status", "asset_tag", "location", "owner")
    list_filter = ("status", "os_edition")
    search_fields = ("hostname", "asset_tag")
