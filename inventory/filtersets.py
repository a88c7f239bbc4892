from django.db.models import Q
from django.db.models.functions import Lower

from core.filtersets import SearchFilterSet
from inventory.models import ClientMachine


class ClientMachineFilterSet(SearchFilterSet):
    class Meta:
        model = ClientMachine
        fields = ["status", "os_edition", "hostname"]

    def filter_q(self, queryset, name, value):
        # Same-table conditions on lower-cased columns, each served by an index on
        # PostgreSQL (inventory migration 0003), so the search ORs index scans.
        value = value.strip()
        if not value:
            return queryset
        return queryset.alias(
            lower_hostname=Lower("hostname"), lower_asset_tag=Lower("asset_tag"),
            lower_hardware_id=Lower("hardware_id"), lower_owner=Lower("owner"),
        ).filter(self.search_q(value.lower()))

    def search_q(self, value):
        """Host name or owner starting with ``value``, or exactly its asset tag or hardware ID."""
        return (
            Q(lower_hostname__startswith=value)
            | Q(lower_asset_tag=value)
            | Q(lower_hardware_id=value)
            | Q(lower_owner__startswith=value)
        )
