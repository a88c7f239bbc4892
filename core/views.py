"""What every HTML page shares: role checks and one-form pages that call one service; the audit trail page."""

from django.core.exceptions import NON_FIELD_ERRORS, PermissionDenied, ValidationError
from django.shortcuts import render

from core import roles
from core.errors import DomainError
from core.filtersets import AuditEventFilterSet
from core.lists import KeysetListView
from core.models import AuditEvent
from core.tables import AUDIT_EVENTS


def require_admin(user) -> None:
    if not roles.is_admin(user):
        raise PermissionDenied("Only license administrators may do this.")


def require_can_file(user) -> None:
    if not roles.can_file_transfers(user):
        raise PermissionDenied("Only administrators and requesters file transfer requests.")


def attach_errors(form, exc: ValidationError) -> None:
    """Put a service's ValidationError on the form: on its fields where the form has them,
    otherwise above the form."""
    if hasattr(exc, "error_dict"):
        for field, errors in exc.error_dict.items():
            target = field if field in form.fields else None
            if target is None and field != NON_FIELD_ERRORS:
                errors = [ValidationError(f"{field.replace('_', ' ').capitalize()}: {m}")
                          for e in errors for m in e.messages]
            form.add_error(target, errors)
    else:
        form.add_error(None, exc)


def form_page(request, form, *, title, submit, cancel_url, refusal=None, intro=""):
    """A page with one form: 200 to show it, 400 for bad input, 409 for a refused rule."""
    status = 200 if request.method == "GET" else (409 if refusal else 400)
    return render(request, "portal/form_page.html", {
        "form": form, "refusal": refusal, "title": title, "submit": submit,
        "cancel_url": cancel_url, "intro": intro,
    }, status=status)


class RefusalText(str):
    """A refused rule's sentence that also carries its stable code, so a page shows both
    (``{{ refusal }}`` and ``{{ refusal.code }}``) and it still compares equal to the sentence."""

    code: str

    def __new__(cls, detail: str, code: str):
        text = super().__new__(cls, detail)
        text.code = code
        return text


def run_service(form, call):
    """Call one service for a valid form. Returns (result, refusal or None).

    A ValidationError lands on the form's fields; a DomainError becomes the refusal: its
    sentence, with its code (``RefusalText``).
    """
    try:
        return call(), None
    except DomainError as exc:
        form.add_error(None, exc.detail)
        return None, RefusalText(exc.detail, exc.code.value)
    except ValidationError as exc:
        attach_errors(form, exc)
        return None, None


class AuditEventListView(KeysetListView):
    filterset_class = AuditEventFilterSet
    template_name = "licensing/audit_list.html"
    title = "Audit trail"
    table = AUDIT_EVENTS
    export_report = "audit-trail"
    empty_message = "No audit events match these filters."
    filter_fields = ("q", "action", "actor", "machine", "key_pack", "since", "until")

    def get_queryset(self):
        return AuditEvent.objects.defer("data", "prev_hash")
