"""What every HTML list shares: keyset paging on (sort key, id), sortable columns, filters."""

import base64
import binascii
import json
from datetime import UTC, date, datetime
from urllib.parse import urlencode

from django import forms
from django.core.exceptions import FieldDoesNotExist, ValidationError
from django.db.models import Q
from django.http import Http404
from django.shortcuts import render
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe
from django.views import View

from core.tables import Table

DEFAULT_PAGE_SIZE = 50


MAX_PAGE_SIZE = 200


def _encode_value(value):
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def encode_cursor(value, pk) -> str:
    raw = json.dumps([_encode_value(value), pk], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


BAD_CURSOR = "This page link is no longer valid."


def decode_cursor(token: str, field=None):
    """The (sort value, id) a page link carries. With ``field`` (the sort key's model field)
    the value must be one of that field's values, else the link is a 404, never a database error."""
    try:
        padded = token + "=" * (-len(token) % 4)
        value, pk = json.loads(base64.urlsafe_b64decode(padded.encode()))
        pk = int(pk)
        if field is not None:
            value = _cursor_value(field, value)
        return value, pk
    except (ValueError, TypeError, OverflowError, binascii.Error, ValidationError) as exc:
        raise Http404(BAD_CURSOR) from exc


def _cursor_value(field, value):
    """``value`` as ``field`` stores it; ValueError when it cannot be one of its values."""
    if value is None or isinstance(value, list | dict) or isinstance(value, bool):
        raise ValueError("not a value of the sort field")
    value = field.to_python(value)
    if value is None:
        raise ValueError("not a value of the sort field")
    if isinstance(value, str) and "\x00" in value:
        raise ValueError("text with a NUL character")  # PostgreSQL refuses it in a query
    if isinstance(value, datetime):
        # Into UTC here: an offset PostgreSQL cannot read (or a moment off the calendar) is a bad link.
        value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return value


def sort_field(model, path: str):
    """The model field at the end of an ORM path such as ``machine__hostname``."""
    field = None
    for part in path.split("__"):
        field = model._meta.get_field(part)
        if field.is_relation:
            model = field.related_model
    return field


def _attr_path(obj, path: str):
    for part in path.split("__"):
        obj = getattr(obj, part)
        if obj is None:
            return None
    return obj


def keyset_page(queryset, *, sort_path: str, descending: bool, after: str | None,
                before: str | None, size: int):
    """One page of ``queryset`` ordered by (sort_path, pk), without counting the table.

    Returns (rows, next_cursor, previous_cursor). ``sort_path`` must name a non-null field.
    """
    is_pk = sort_path in ("pk", "id")
    backwards = bool(before)
    token = before or after
    # Going backwards walks the reverse order from the cursor, then flips the page.
    walk_descending = descending != backwards
    if token:
        try:
            field = None if is_pk else sort_field(queryset.model, sort_path)
        except FieldDoesNotExist:
            field = None  # an annotation: its values are compared as given
        value, pk = decode_cursor(token, field)
        op = "lt" if walk_descending else "gt"
        if is_pk:
            queryset = queryset.filter(**{f"pk__{op}": pk})
        else:
            queryset = queryset.filter(
                Q(**{f"{sort_path}__{op}": value}) | Q(**{sort_path: value, f"pk__{op}": pk})
            )
    sign = "-" if walk_descending else ""
    ordering = [f"{sign}pk"] if is_pk else [f"{sign}{sort_path}", f"{sign}pk"]
    rows = list(queryset.order_by(*ordering)[: size + 1])
    more = len(rows) > size
    rows = rows[:size]
    if backwards:
        rows.reverse()

    def cursor_of(row):
        return encode_cursor(row.pk if is_pk else _attr_path(row, sort_path), row.pk)

    if not rows:
        return rows, None, None
    has_next = more if not backwards else True
    has_previous = bool(token) if not backwards else more
    next_cursor = cursor_of(rows[-1]) if has_next else None
    previous_cursor = cursor_of(rows[0]) if has_previous else None
    return rows, next_cursor, previous_cursor


class KeysetListView(View):
    """A filtered, sortable list paged by a cursor on (sort key, id).

    Subclasses set ``filterset_class``, ``template_name`` and ``table`` (a
    ``core.tables.Table``: the columns the page shows, the keys that sort it, the default).
    """

    filterset_class = None
    template_name = ""
    table: Table = None
    export_report: str | None = None
    empty_message = "Nothing matches these filters."
    title = ""
    filter_fields: tuple | None = None

    def get_queryset(self):
        raise NotImplementedError

    def get_extra_context(self) -> dict:
        return {}

    def present(self, rows: list) -> list:
        """The rows as the template's ``table`` prints them (by default the instances)."""
        return rows

    def _sort(self, request) -> tuple[str, bool, str]:
        sort = request.GET.get("sort") or self.table.default_sort
        key = sort.lstrip("-")
        if key not in self.table.sort_fields:
            sort = self.table.default_sort
            key = sort.lstrip("-")
        return key, sort.startswith("-"), sort

    def _page_size(self, request) -> int:
        try:
            size = int(request.GET.get("page_size", DEFAULT_PAGE_SIZE))
        except ValueError:
            size = DEFAULT_PAGE_SIZE
        return max(1, min(size, MAX_PAGE_SIZE))

    def get(self, request, *args, **kwargs):
        filterset = self.filterset_class(request.GET or None, queryset=self.get_queryset(),
                                         request=request)
        polish_filter_form(filterset.form)
        key, descending, sort = self._sort(request)
        size = self._page_size(request)
        queryset = filterset.qs if filterset.is_bound else filterset.queryset
        rows, next_cursor, previous_cursor = keyset_page(
            queryset, sort_path=self.table.sort_fields[key], descending=descending,
            after=request.GET.get("after"), before=request.GET.get("before"), size=size,
        )
        base = request.GET.copy()
        for name in ("after", "before"):
            base.pop(name, None)
        filters = base.copy()
        for name in ("sort", "page_size"):
            filters.pop(name, None)
        columns = []
        for label, column_key in self.table.page_columns:
            column = {"label": label, "key": column_key, "url": None, "direction": None}
            if column_key:
                params = base.copy()
                flip = column_key == key and not descending
                params["sort"] = f"-{column_key}" if flip else column_key
                column["url"] = "?" + params.urlencode()
                if column_key == key:
                    column["direction"] = "descending" if descending else "ascending"
            columns.append(column)

        def page_url(name, token):
            if not token:
                return None
            params = base.copy()
            params[name] = token
            return "?" + params.urlencode()

        filter_query = filters.urlencode()
        # Filters without a box on the page (ids from links) still apply, as hidden inputs.
        visible, hidden = [], []
        for field in filterset.form:
            if self.filter_fields is None or field.name in self.filter_fields:
                visible.append({"field": field, "control": filter_control(field)})
            elif field.value() not in (None, "", []):
                hidden.append(field)
        context = {
            "visible_fields": visible,
            "hidden_fields": hidden,
            "title": self.title,
            "filterset": filterset,
            "form": filterset.form,
            "rows": rows,
            "table": self.present(rows),
            "columns": columns,
            "sort": sort,
            "next_url": page_url("after", next_cursor),
            "previous_url": page_url("before", previous_cursor),
            "filtered": bool(filters),
            "filter_query": filter_query,
            "empty_message": self.empty_message,
            "export_report": self.export_report,
            "export_csv_url": self._export_url("csv", filter_query),
            "export_xlsx_url": self._export_url("xlsx", filter_query),
            "page_size": size,
        }
        context.update(self.get_extra_context())
        return render(request, self.template_name, context)

    def _export_url(self, fmt: str, filter_query: str) -> str | None:
        if not self.export_report:
            return None
        url = reverse("report-download", kwargs={"name": self.export_report, "fmt": fmt})
        return f"{url}?{filter_query}" if filter_query else url


# Friendlier labels for the shared FilterSets' fields on the HTML pages.
FILTER_LABELS = {
    "q": "Search",
    "status": "Status",
    "kind": "Kind",
    "product_version": "Product",
    "license_server": "License server",
    "license_program": "License program",
    "os_edition": "OS edition",
    "cal_type": "CAL type",
    "origin": "Origin",
    "issued_after": "Issued from",
    "issued_before": "Issued until",
    "since": "From",
    "until": "Until",
    "requested_by": "Requested by (user name)",
    "actor": "Actor (user name)",
    "action": "Action (e.g. transfer, transfer.approved)",
    "machine": "Machine id",
    "key_pack": "Key pack id",
    "hostname": "Host name (exact)",
}


def filter_control(bound_field) -> str:
    """A filter's input as HTML. Select and plain input widgets are written here directly:
    a list page draws a dozen of them on every request, and Django's template-based widget
    rendering was a quarter of the page's time. Any other widget renders as Django does."""
    widget = bound_field.field.widget
    name, auto_id = bound_field.html_name, bound_field.auto_id
    value = bound_field.value()
    if type(widget) in (forms.Select, forms.widgets.Select):
        chosen = "" if value in (None, "") else str(value)
        options = format_html_join(
            "", '<option value="{}"{}>{}</option>',
            ((key, mark_safe(" selected") if str(key) == chosen else "", label)
             for key, label in bound_field.field.choices),
        )
        return format_html('<select name="{}" id="{}">{}</select>', name, auto_id, options)
    input_type = getattr(widget, "input_type", None)
    if input_type in ("text", "number", "date", "datetime-local", "search"):
        shown = "" if value in (None, "") else value
        return format_html('<input type="{}" name="{}" id="{}" value="{}">', input_type, name, auto_id, shown)
    return str(bound_field)


def polish_filter_form(form) -> None:
    """Human labels and date pickers on a FilterSet's form."""
    for name, field in form.fields.items():
        if name in FILTER_LABELS:
            field.label = FILTER_LABELS[name]
        if getattr(field.widget, "input_type", None) != "text":
            continue
        field_type = type(field).__name__
        if field_type == "DateField":
            field.widget.input_type = "date"
        elif field_type in ("IsoDateTimeField", "DateTimeField"):
            field.widget.input_type = "datetime-local"


def query_string(**params) -> str:
    return urlencode({k: v for k, v in params.items() if v not in (None, "")})
