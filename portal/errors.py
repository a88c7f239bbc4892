"""The domain error and the one place that turns it into an API response."""

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.serializers import as_serializer_error
from rest_framework.settings import api_settings
from rest_framework.views import exception_handler


class DomainError(Exception):
    """A licensing rule refused the request.

    ``code`` is the stable rule code from DOMAIN.md (e.g. ``no_licenses_available``);
    ``detail`` is a sentence that names the objects involved. The API answers 409
    with both, and the UI shows ``detail`` next to the form.
    """

    def __init__(self, code: str, detail: str):
        super().__init__(detail)
        self.code = code
        self.detail = detail

    def __str__(self) -> str:
        return self.detail


def field_errors(exc: DjangoValidationError) -> dict:
    """A model or service ValidationError as DRF's ``{"field": ["message"]}``."""
    errors = as_serializer_error(exc)
    if "__all__" in errors:
        errors[api_settings.NON_FIELD_ERRORS_KEY] = errors.pop("__all__")
    return errors


def api_exception_handler(exc, context):
    if isinstance(exc, DomainError):
        return Response({"code": exc.code, "detail": exc.detail}, status=status.HTTP_409_CONFLICT)
    if isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(field_errors(exc))
    elif isinstance(exc, DjangoPermissionDenied):
        # Keep the service's sentence (e.g. "a requester may cancel only ...").
        exc = exceptions.PermissionDenied(str(exc) or None)
    return exception_handler(exc, context)
