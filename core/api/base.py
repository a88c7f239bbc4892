"""What every API view shares: the FilterSet backend, error responses, and service-backed create and edit."""

from datetime import UTC, datetime

from django_filters import utils
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse
from rest_framework import mixins, status, viewsets
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from core.api.serializers import ConflictSerializer, DetailSerializer


class PortalFilterBackend(DjangoFilterBackend):
    """The shared FilterSets, with datetimes turned to UTC before they reach the database.

    Python accepts offsets up to +/-23:59 and PostgreSQL only up to about 16 hours, and
    a datetime near year 1 or 9999 can leave the calendar when converted; either is a
    400 field error here, never a database error.
    """

    # Query parameters that are not filters: paging and the browsable API's format switch.
    NON_FILTER_PARAMS = frozenset({"cursor", "page_size", "format"})

    def filter_queryset(self, request, queryset, view):
        if self.NON_FILTER_PARAMS.issuperset(request.query_params):
            # Nothing to filter: skip building the FilterSet (its form and a deep copy of
            # every filter), which is most of an unfiltered list's cost.
            return queryset
        filterset = self.get_filterset(request, queryset, view)
        if filterset is None:
            return queryset
        if not filterset.is_valid():
            raise utils.translate_validation(filterset.errors)
        cleaned = filterset.form.cleaned_data
        errors = {}
        for name, value in cleaned.items():
            if isinstance(value, datetime) and value.tzinfo is not None:
                try:
                    cleaned[name] = value.astimezone(UTC)
                except OverflowError:
                    errors[name] = ["This date and time is out of range."]
        if errors:
            raise ValidationError(errors)
        return filterset.qs


def conflict(*codes: str) -> OpenApiResponse:
    return OpenApiResponse(
        ConflictSerializer,
        description="A domain rule refused the request and nothing changed. Codes: "
        + ", ".join(f"`{c}`" for c in codes)
        + ".",
    )


BAD_REQUEST = OpenApiResponse(
    OpenApiTypes.OBJECT,
    description='Field errors, `{"field": ["message"]}`, or `{"detail": "..."}` for a body that '
    "is not JSON.",
)


UNAUTHENTICATED = OpenApiResponse(DetailSerializer, description="No token or a bad token.")


FORBIDDEN = OpenApiResponse(DetailSerializer, description="Your role does not allow this action.")


NOT_FOUND = OpenApiResponse(DetailSerializer, description="No such object.")


READ_ERRORS = {401: UNAUTHENTICATED, 403: FORBIDDEN}


LIST_ERRORS = {400: BAD_REQUEST, 404: OpenApiResponse(DetailSerializer, description="Bad cursor."),
               **READ_ERRORS}


DETAIL_ERRORS = {404: NOT_FOUND, **READ_ERRORS}


WRITE_ERRORS = {400: BAD_REQUEST, **READ_ERRORS}


WRITE_DETAIL_ERRORS = {400: BAD_REQUEST, 404: NOT_FOUND, **READ_ERRORS}


class PortalViewSet(viewsets.GenericViewSet):
    """Ids are integers; lists use the shared FilterSets."""

    lookup_value_regex = r"[0-9]+"
    filter_backends = [PortalFilterBackend]
    http_method_names = ["get", "post", "patch", "head", "options"]

    def actor(self):
        return self.request.user

    def creating(self) -> bool:
        """POST to the list, including its description in the browsable API's form (rendered
        under ``list``) and in OPTIONS (under ``metadata``), which clone the request as a POST."""
        request = getattr(self, "request", None)
        return self.action == "create" or (
            self.action in ("list", "metadata") and request is not None and request.method == "POST"
        )

    def validated_input(self) -> dict:
        """The request body, checked by this action's input serializer."""
        serializer = self.get_serializer(data=self.request.data)
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data

    def reread(self, instance):
        """The written row as the list shows it (annotations and related rows loaded)."""
        return self.get_queryset().get(pk=instance.pk)

    def respond(self, instance, status_code=status.HTTP_200_OK, serializer_class=None):
        serializer_class = serializer_class or self.output_serializer_class
        data = serializer_class(self.reread(instance), context=self.get_serializer_context()).data
        return Response(data, status=status_code)


class ServiceCrudViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, PortalViewSet
):
    """GET, POST and PATCH, where POST and PATCH each call one service (which audits).

    Subclasses set ``create_service(actor, data)`` and ``update_service(instance, actor, data)``.
    """

    update_serializer_class = None

    @property
    def output_serializer_class(self):
        return self.serializer_class

    def get_serializer_class(self):
        if self.action == "partial_update" and self.update_serializer_class is not None:
            return self.update_serializer_class
        return self.serializer_class

    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        instance = self.create_service(actor=self.actor(), data=serializer.validated_data)
        return self.respond(instance, status.HTTP_201_CREATED)

    def partial_update(self, request, *args, **kwargs):
        instance = self.get_object()
        serializer = self.get_serializer(instance, data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        instance = self.update_service(
            instance=instance, actor=self.actor(), data=serializer.validated_data
        )
        return self.respond(instance)

    def create_service(self, *, actor, data):  # pragma: no cover - every subclass overrides
        raise NotImplementedError

    def update_service(self, *, instance, actor, data):  # pragma: no cover
        raise NotImplementedError
