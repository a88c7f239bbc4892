"""The domain error, its codes, and the one place that turns errors into API responses.

Every refusal code of DOMAIN.md is spelled once, here, as a member of ``DomainCode``;
everything else refers to the member. The API answers 409 ``{"code", "detail"}`` and the
pages show ``detail`` next to the form.
"""

from enum import StrEnum

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.serializers import as_serializer_error
from rest_framework.settings import api_settings
from rest_framework.views import exception_handler


class DomainCode(StrEnum):
    """The stable refusal codes of the domain's rules (DOMAIN.md), and of the workflow's
    own checks. The value is what the API returns."""

    # Rule 1: a key pack never issues more permanent CALs than its total.
    NO_LICENSES_AVAILABLE = "no_licenses_available"
    # Rule 2: per-user packs are inventory only.
    PER_USER_KEY_PACK = "per_user_key_pack"
    # Rule 3: Windows 2000/XP Professional clients get their CAL with the OS.
    OS_INCLUDES_CAL = "os_includes_cal"
    # Rule 4: one active permanent CAL per machine and product.
    MACHINE_ALREADY_LICENSED = "machine_already_licensed"
    # Rule 5: one temporary CAL per machine and product, ever.
    TEMPORARY_ALREADY_USED = "temporary_already_used"
    # Rule 6: nothing is issued or transferred to a retired machine.
    MACHINE_RETIRED = "machine_retired"
    # Rule 7: the one-time permanent transfer.
    ALREADY_TRANSFERRED = "already_transferred"
    NOT_TRANSFERABLE = "not_transferable"
    TRANSFER_PENDING = "transfer_pending"
    SAME_MACHINE = "same_machine"
    # Rule 8: four eyes.
    FOUR_EYES = "four_eyes"
    # Rule 9: state machines move only along their arrows.
    INVALID_STATE = "invalid_state"
    # A key pack's total never drops below what it has issued.
    BELOW_ISSUED = "below_issued"
    # The CSC call: only transfers whose removal is confirmed, of its server and product,
    # and a reissued pack large enough for all of them.
    TRANSFER_NOT_READY = "transfer_not_ready"
    PRODUCT_MISMATCH = "product_mismatch"
    QUANTITY_TOO_SMALL = "quantity_too_small"
    # Rule 12: revocation, on 2008 R2 and later servers, within 20% of a version's CALs.
    REVOKE_NOT_SUPPORTED = "revoke_not_supported"
    REVOKE_QUOTA_EXCEEDED = "revoke_quota_exceeded"
    # Rule 13: a license server holds CALs of its own Windows version or older.
    VERSION_NOT_SUPPORTED = "version_not_supported"


class DomainError(Exception):
    """A licensing rule refused the request.

    ``code`` is the rule's ``DomainCode``; ``detail`` is a sentence that names the objects
    involved.
    """

    def __init__(self, code: DomainCode, detail: str):
        super().__init__(detail)
        self.code = DomainCode(code)
        self.detail = detail

    def __str__(self) -> str:
        return self.detail


class ServiceUnavailable(Exception):
    """A service the request needs (the database or the broker) is down; nothing was changed.

    The API answers 503 ``{"code": "service_unavailable", "detail"}``; pages a plain 503 page.
    """

    code = "service_unavailable"

    def __init__(self, detail: str):
        super().__init__(detail)
        self.detail = detail


def field_errors(exc: DjangoValidationError) -> dict:
    """A model or service ValidationError as DRF's ``{"field": ["message"]}``."""
    errors = as_serializer_error(exc)
    if "__all__" in errors:
        errors[api_settings.NON_FIELD_ERRORS_KEY] = errors.pop("__all__")
    return errors


def api_exception_handler(exc, context):
    if isinstance(exc, DomainError):
        return Response({"code": exc.code.value, "detail": exc.detail}, status=status.HTTP_409_CONFLICT)
    if isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(field_errors(exc))
    elif isinstance(exc, DjangoPermissionDenied):
        # Keep the service's sentence (e.g. "a requester may cancel only ...").
        exc = exceptions.PermissionDenied(str(exc) or None)
    return exception_handler(exc, context)
