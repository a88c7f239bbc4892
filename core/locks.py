"""Row locks, always taken in one fixed order so that concurrent services cannot deadlock.

Order: workflow rows (reissue request, then transfer requests) -> client machines ->
key packs -> licenses, each group by ascending primary key. A service takes the
locks it needs from left to right and re-reads what it checks from the locked rows.
Only the named rows are locked (``of=("self",)``), never the rows a ``select_related``
joins in: a license server row is shared by every CAL and must not become a mutex.
"""

from django.db.models import Model, QuerySet


def lock_rows(queryset: QuerySet, pks) -> dict[int, Model]:
    """Lock the rows with these primary keys, in key order, and return them by key."""
    ordered = sorted({pk for pk in pks if pk is not None})
    rows = queryset.select_for_update(of=("self",)).filter(pk__in=ordered).order_by("pk")
    return {row.pk: row for row in rows}


def lock_one(queryset: QuerySet, pk) -> Model:
    return queryset.select_for_update(of=("self",)).get(pk=pk)
