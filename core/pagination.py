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
