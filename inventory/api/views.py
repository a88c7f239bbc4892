from drf_spectacular.utils import extend_schema, extend_schema_view

from core.api.base import DETAIL_ERRORS, LIST_ERRORS, WRITE_DETAIL_ERRORS, WRITE_ERRORS, ServiceCrudViewSet, conflict
from core.errors import DomainCode
from inventory import services
from inventory.api.serializers import ClientMachineSerializer, ClientMachineUpdateSerializer
from inventory.filtersets import ClientMachineFilterSet
from inventory.models import ClientMachine


@extend_schema_view(
    list=extend_schema(responses={200: ClientMachineSerializer(many=True), **LIST_ERRORS}),
    retrieve=extend_schema(responses={200: ClientMachineSerializer, **DETAIL_ERRORS}),
    create=extend_schema(
        description="Adds a machine; it starts `active`.",
        responses={201: ClientMachineSerializer, **WRITE_ERRORS},
    ),
    partial_update=extend_schema(
        description="Edits a machine. `status: retired` retires it; a retired machine is not "
        "brought back (`invalid_state`).",
        request=ClientMachineUpdateSerializer,
        responses={200: ClientMachineSerializer, 409: conflict(DomainCode.INVALID_STATE), **WRITE_DETAIL_ERRORS},
    ),
)
class ClientMachineViewSet(ServiceCrudViewSet):
    queryset = ClientMachine.objects.all()
    serializer_class = ClientMachineSerializer
    update_serializer_class = ClientMachineUpdateSerializer
    filterset_class = ClientMachineFilterSet

    def create_service(self, *, actor, data):
        return services.machine_create(actor=actor, **data)

    def update_service(self, *, instance, actor, data):
        return services.machine_update(machine=instance, actor=actor, data=data)
