from datetime import UTC, datetime

from django_filters import utils
from django_filters.rest_framework import DjangoFilterBackend
from rest_framework.exceptions import ValidationError


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
