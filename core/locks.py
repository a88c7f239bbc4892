"""Row locks, always taken in one fixed order so that concurrent services cannot deadlock.

Order: workflow rows (reissue request, then transfer requests) -> client machines ->
key packs -> licenses, each group by ascending primary key. A service takes the
locks it needs from left to right and re-reads what it checks from the locked rows.
Only the named rows are locked (``of=("self",)``), never the rows a ``select_related``
joins in: a license server row is shared by every CAL and must not become a mutex.
The locks are FOR NO KEY UPDATE: no service changes a primary key, and a row that another
transaction merely references (its foreign key check takes FOR KEY SHARE) stays free, so
an insert that names a locked row never waits for it or deadlocks with its holder.
An import first locks its license server the same way, which serialises imports of one
server and nothing else.
"""

from django.db.models import Model, QuerySet


def lock_rows(queryset: QuerySet, pks) -> dict[int, Model]:
    """Lock the rows with these primary keys, in key order, and return them by key."""
    ordered = sorted({pk for pk in pks if pk is not None})
    rows = queryset.select_for_update(of=("self",), no_key=True).filter(pk__in=ordered).order_by("pk")
    return {row.pk: row for row in rows}


def lock_one(queryset: QuerySet, pk) -> Model:
    return queryset.select_for_update(of=("self",), no_key=True).get(pk=pk)


def share_key(queryset: QuerySet, pk) -> Model:
    """Read a row FOR KEY SHARE: the committed row, which nobody may then lock FOR UPDATE
    (e.g. to change what it allows) until this transaction ends, while other readers and
    FOR NO KEY UPDATE holders go on. Elsewhere than PostgreSQL a plain read: SQLite has one
    writer at a time."""
    from django.db import connection

    if connection.vendor != "postgresql":
        return queryset.get(pk=pk)
    table = queryset.model._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(f'SELECT 1 FROM "{table}" WHERE id = %s FOR KEY SHARE', [pk])
    return queryset.get(pk=pk)
