from rest_framework import serializers

from inventory.models import ClientMachine


class ClientMachineSerializer(serializers.ModelSerializer):
    """A client machine. ``status`` is read-only here: a machine starts active."""

    class Meta:
        model = ClientMachine
        fields = [
            "id", "hostname", "os_edition", "status", "hardware_id", "asset_tag", "location",
            "owner", "notes",
        ]
        read_only_fields = ["status"]


class ClientMachineUpdateSerializer(ClientMachineSerializer):
    """PATCH: ``status: retired`` retires the machine; a retired one stays retired."""

    class Meta(ClientMachineSerializer.Meta):
        read_only_fields = []
