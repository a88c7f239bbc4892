import itertools
import re
import weakref

from django.db import OperationalError, connection
from psycopg2.errors import InvalidSqlStatementName
from rest_framework.exceptions import NotFound
from rest_framework.pagination import CursorPagination


class PortalCursorPagination(CursorPagination):
    """``results`` and ``next`` without counting the table: cost does not grow with depth.

    Lists are ordered by id, newest first, unless the view names its own ordering.
    """

    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500
    ordering = "-id"

    def paginate_queryset(self, queryset, request, view=None):
        # A forged cursor can carry a position that is not a value of the ordering field
        # (e.g. "abc" for an id); that is a bad cursor, not a server error.
        try:
            return super().paginate_queryset(queryset, request, view)
        except (TypeError, ValueError) as exc:
            raise NotFound(self.invalid_cursor_message) from exc

    def get_ordering(self, request, queryset, view):
        return getattr(view, "cursor_ordering", None) or (self.ordering,)

    def get_paginated_response(self, data):
        from rest_framework.response import Response

        return Response({"next": self.get_next_link(), "previous": self.get_previous_link(), "results": data})

    def get_paginated_response_schema(self, schema):
        return {
            "type": "object",
            "required": ["results", "next"],
            "properties": {
                "next": {"type": "string", "nullable": True, "format": "uri"},
                "previous": {"type": "string", "nullable": True, "format": "uri"},
                "results": schema,
            },
        }


_statement_numbers = itertools.count(1)


class KeysetQuery:
    """A list's page query, compiled by the ORM once per shape and then run as plain SQL.

    ``PortalCursorPagination`` (DRF's cursor paging) asks its queryset for three things:
    ``order_by``, a ``filter`` on the cursor's position (``<field>__lt`` or ``__gt``) and a
    slice. This object answers them for one fixed, unfiltered queryset: the first time a
    shape is asked for (ordering, comparison, offset, page size) it lets Django compile
    that very query, with a stand-in for the position, and keeps the SQL; afterwards a page
    is one ``execute`` with the position bound. A process keeps at most one statement per
    page size (``max_page_size``) and direction.
    Compiling the ORM query is most of an unfiltered list's cost, and the database sees the
    same statement either way. A filtered list goes through the ORM as usual.

    ``key`` names the queryset in the cache: one key, one queryset (same model, columns and
    base filters) for the life of the process. ``row``, if given, makes each page's item from
    the row's tuple (in ``columns`` order); the paginator reads the cursor's position from it,
    so it must hold the ordering field by the same name. Without, items are ``values()`` dicts.
    """

    _compiled: dict[tuple, tuple[str, list, int | None, dict]] = {}
    _prepared: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()  # per database connection
    _STAND_IN = -7_346_120_017  # a position no id has; found again among the compiled parameters

    def __init__(self, key: str, queryset, columns: tuple[str, ...], *, row=None, ordering=(), position=None):
        self.key, self.queryset, self.columns, self.row = key, queryset, columns, row
        self.ordering, self.position = tuple(ordering), position

    def _with(self, **changes) -> "KeysetQuery":
        state = {"ordering": self.ordering, "position": self.position} | changes
        return KeysetQuery(self.key, self.queryset, self.columns, row=self.row, **state)

    def order_by(self, *ordering) -> "KeysetQuery":
        return self._with(ordering=ordering)

    def filter(self, **lookup) -> "KeysetQuery":
        ((name, value),) = lookup.items()
        attname, comparison = name.rsplit("__", 1)
        if comparison not in ("lt", "gt"):
            raise ValueError(f"KeysetQuery filters on the cursor's position only, not {name}")
        # As the ORM would: a position that is not a value of the field is a ValueError
        # (the paginator's bad cursor), never a database error.
        field = self.queryset.model._meta.get_field(attname)
        value = field.get_prep_value(value)
        ranges = connection.ops.integer_field_ranges
        if isinstance(value, int) and field.get_internal_type() in ranges:
            low, high = ranges[field.get_internal_type()]
            if (low is not None and value < low) or (high is not None and value > high):
                raise ValueError(f"{value} is out of the range of {attname}")  # no real cursor holds it
        return self._with(position=(attname, comparison, value))

    def __getitem__(self, bounds: slice) -> list[dict]:
        offset, stop = bounds.start or 0, bounds.stop
        shape = (self.key, self.ordering, self.position and self.position[:2], offset, stop)
        compiled = self._compiled.get(shape)
        if compiled is None:
            compiled = self._compiled[shape] = self._compile(offset, stop)
        sql, params, index, converters = compiled
        if index is not None:
            params = [*params]
            params[index] = self.position[2]
        rows = self._fetch(shape, sql, params)
        if converters:  # the fields' own conversions from the database, as values() applies them
            converted = []
            for row in rows:
                row = list(row)
                for position, (functions, expression) in converters.items():
                    for function in functions:
                        row[position] = function(row[position], expression, connection)
                converted.append(tuple(row))
            rows = converted
        if self.row is not None:
            return [self.row(row) for row in rows]
        columns = self.columns
        return [dict(zip(columns, row, strict=True)) for row in rows]

    @classmethod
    def _fetch(cls, shape: tuple, sql: str, params: list) -> list[tuple]:
        """Run the page's SQL. On PostgreSQL, outside a transaction, as a prepared statement
        of the connection (PREPARE once, then EXECUTE: the database skips planning it again).
        A connection that lost its statements (``DISCARD ALL`` by a pooler) prepares them anew."""
        with connection.cursor() as cursor:
            if connection.vendor != "postgresql" or connection.in_atomic_block:
                cursor.execute(sql, params)
                return cursor.fetchall()
            statements = cls._prepared.setdefault(connection.connection, {})
            for attempt in (1, 2):
                name = statements.get(shape)
                if name is None:  # a name never used before, so a re-prepare cannot collide
                    name = statements[shape] = f"portal_keyset_{next(_statement_numbers)}"
                    cursor.execute(f"PREPARE {name} AS {_numbered_placeholders(sql)}")
                try:
                    cursor.execute(f"EXECUTE {name}" + (f"({', '.join(['%s'] * len(params))})" if params else ""),
                                   params)
                except OperationalError as exc:  # Django's wrapper of psycopg2's error
                    if attempt == 2 or not isinstance(exc.__cause__, InvalidSqlStatementName):
                        raise
                    statements.clear()
                    continue
                return cursor.fetchall()

    def _compile(self, offset: int, stop: int) -> tuple[str, list, int | None, dict]:
        """The page's SQL and parameters, the stand-in position's index among them, and the
        fields' converters by column."""
        queryset = self.queryset.order_by(*self.ordering)
        if self.position is not None:
            attname, comparison, _ = self.position
            queryset = queryset.filter(**{f"{attname}__{comparison}": self._STAND_IN})
        query = queryset.values(*self.columns)[offset:stop].query
        if (*query.extra_select, *query.values_select, *query.annotation_select) != tuple(self.columns):
            # values() would put them back in the order given; a page's rows come as selected.
            raise ValueError("KeysetQuery's columns must be given in the order SQL selects them: "
                             "fields first, then annotations")
        compiler = query.get_compiler(using=queryset.db)
        sql, params = compiler.as_sql()
        params = list(params)
        converters = compiler.get_converters([expression for expression, _, _ in compiler.select])
        index = None
        if self.position is not None:
            index = params.index(self._STAND_IN)
            if params.count(self._STAND_IN) != 1:
                raise ValueError("the stand-in position is not one parameter of the compiled query")
        return sql, params, index, converters


def _numbered_placeholders(sql: str) -> str:
    """A psycopg2 statement (``%s`` parameters, ``%%`` for a percent sign) as PREPARE takes it
    (``$1``, ``$2``...)."""
    numbers = iter(range(1, sql.count("%s") + 1))
    return re.sub(r"%[s%]", lambda match: "%" if match.group() == "%%" else f"${next(numbers)}", sql)
