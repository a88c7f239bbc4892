"""The domain error and the one place that turns it into an API response."""

from rest_framework import status
from rest_framework.response import Response
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


def api_exception_handler(exc, context):
    if isinstance(exc, DomainError):
        return Response({"code": exc.code, "detail": exc.detail}, status=status.HTTP_409_CONFLICT)
    return exception_handler(exc, context)
