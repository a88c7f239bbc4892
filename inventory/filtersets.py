from django.db.models import Q

from inventory.models import ClientMachine, hostname_prefix_ids
from licensing.filtersets import SearchFilterSet


class ClientMachineFilterSet(SearchFilterSet):
    class Meta:
        model = ClientMachine
        fields = ["status", "os_edition", "hostname"]

    def search_q(self, value):
        return (
            Q(pk__in=hostname_prefix_ids(value))
            | Q(asset_tag__iexact=value)
            | Q(hardware_id__iexact=value)
            | Q(owner__icontains=value)
        )
