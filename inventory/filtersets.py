from django.db.models import Q

from inventory.models import ClientMachine
from licensing.filtersets import SearchFilterSet


class ClientMachineFilterSet(SearchFilterSet):
    class Meta:
        model = ClientMachine
        fields = ["status", "os_edition", "hostname"]

    def search_q(self, value):
        return (
            Q(hostname__istartswith=value)
            | Q(asset_tag__iexact=value)
            | Q(hardware_id__iexact=value)
            | Q(owner__icontains=value)
        )
