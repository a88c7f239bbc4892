from datetime import UTC, datetime

from django_filters import utils
from django_filters.rest_framework import DjangoFilterBackend
from rest_framework.exceptions import ValidationError


def _storable(moment: datetime) -> bool:
    """A datetime the database can compare with: it converts to UTC without leaving
    the calendar (year 1 to 9999)."""
    try:
        moment.astimezone(UTC) if moment.tzinfo else moment
    except OverflowError:
        return False
    return True


class PortalFilterBackend(DjangoFilterBackend):
    """The shared FilterSets, with out-of-range datetimes refused as 400 field errors."""

    def filter_queryset(self, request, queryset, view):
        filterset = self.get_filterset(request, queryset, view)
        if filterset is None:
            return queryset
        if not filterset.is_valid():
            raise utils.translate_validation(filterset.errors)
        errors = {
            name: ["This date and time is out of range."]
            for name, value in filterset.form.cleaned_data.items()
            if isinstance(value, datetime) and not _storable(value)
        }
        if errors:
            raise ValidationError(errors)
        return filterset.qs
