"""What every list shares: a free-text search, and the audit trail's filters."""

import django_filters
from django.db import connection
from django.db.models import Q

from core.models import AuditEvent

SEARCH_ID_LIST_LIMIT = 1000


def matching_ids(queryset):
    """The ids a search matched, as a list when they are few (the outer query then ORs
    index scans on its own foreign keys), or as a subquery when they are many (then
    the first page fills quickly in index order anyway)."""
    ids = list(queryset.values_list("pk", flat=True)[: SEARCH_ID_LIST_LIMIT + 1])
    return ids if len(ids) <= SEARCH_ID_LIST_LIMIT else queryset.values("pk")


def int_or_none(value: str):
    try:
        number = int(value)
    except (TypeError, ValueError):
        return None
    # Beyond a 64-bit column no id can match, and SQLite cannot even compare with it.
    if not -(2**63) <= number < 2**63:
        return None
    return number


class SearchFilterSet(django_filters.FilterSet):
    """Adds ``q``: a free-text search across the fields ``search_q`` names."""

    q = django_filters.CharFilter(method="filter_q", label="Search")

    def search_q(self, value: str) -> Q:  # pragma: no cover - every subclass overrides
        raise NotImplementedError

    def filter_q(self, queryset, name, value):
        value = value.strip()
        return queryset.filter(self.search_q(value)) if value else queryset


class AuditEventFilterSet(SearchFilterSet):
    since = django_filters.IsoDateTimeFilter(field_name="occurred_at", lookup_expr="gte")
    until = django_filters.IsoDateTimeFilter(field_name="occurred_at", lookup_expr="lte")
    action = django_filters.CharFilter(method="filter_action")
    machine = django_filters.NumberFilter(method="filter_ref", label="Machine id")
    key_pack = django_filters.NumberFilter(method="filter_ref", label="Key pack id")

    class Meta:
        model = AuditEvent
        fields = ["object_type", "object_id", "actor"]

    def filter_action(self, queryset, name, value):
        # "transfer" matches every transfer.* action; "transfer.approved" only that one.
        if "." in value:
            return queryset.filter(action=value)
        return queryset.filter(action__startswith=f"{value}.")

    def filter_ref(self, queryset, name, value):
        """Events that touched this machine or key pack: as their object, or in data.refs."""
        object_type = {"machine": "clientmachine", "key_pack": "keypack"}[name]
        pk = int(value)
        if connection.vendor == "postgresql":
            # JSON containment, served by the GIN index on data->'refs' (migration 0003).
            touched = Q(data__refs__contains={name: [pk]})
        else:
            # data.refs.<kind> is a JSON list of ids; match the id as a whole list element.
            touched = Q(**{f"data__refs__{name}__regex": rf"[\[,\s]{pk}[,\]]"})
        return queryset.filter(Q(object_type=object_type, object_id=str(pk)) | touched)

    def search_q(self, value):
        return Q(summary__icontains=value) | Q(actor__iexact=value) | Q(action__istartswith=value)
