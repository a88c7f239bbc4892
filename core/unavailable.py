"""503 instead of 500 when the database or the broker is down.

The API answers ``{"code": "service_unavailable", "detail"}``; pages answer a plain 503
page rendered without the database (no context processors, no user). A failed request
changes nothing: its transaction was rolled back, and a job is only started after the
broker answered.

Exceptions a view raises reach ``ServiceUnavailableMiddleware``; those raised in other
middleware (the session and the user are read there) reach ``server_error``, the 500
handler, which answers 503 for the same causes.
"""

import logging
import sys

from django.db import InterfaceError, OperationalError
from django.http import HttpResponse, JsonResponse
from django.template import loader
from django.views.decorators.csrf import requires_csrf_token
from kombu.exceptions import OperationalError as BrokerOperationalError

from core.errors import ServiceUnavailable

logger = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = 30
DATABASE_DOWN = ("The database is not reachable, so nothing was read or changed. "
                 "Try again in a moment.")
BROKER_DOWN = ("The task queue (broker) is not reachable, so the job was not started and nothing "
               "was saved. Try again once it is back.")


def unavailable_detail(exc: BaseException | None) -> str | None:
    """The sentence for a service that is down, or None when ``exc`` is another error."""
    if isinstance(exc, ServiceUnavailable):
        return exc.detail
    if isinstance(exc, OperationalError | InterfaceError):
        return DATABASE_DOWN
    if isinstance(exc, BrokerOperationalError):
        return BROKER_DOWN
    return None


def wants_json(request) -> bool:
    return request.path.startswith("/api/") or request.path == "/healthz"


def unavailable_response(request, detail: str):
    if wants_json(request):
        response = JsonResponse({"code": ServiceUnavailable.code, "detail": detail}, status=503)
    else:
        body = loader.get_template("503.html").render({"detail": detail})
        response = HttpResponse(body, status=503)
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    response["Cache-Control"] = "no-store"
    return response


class ServiceUnavailableMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        detail = unavailable_detail(exception)
        if detail is None:
            return None
        logger.error("503 for %s %s: %r", request.method, request.path, exception, exc_info=exception)
        return unavailable_response(request, detail)


@requires_csrf_token
def server_error(request):
    """The 500 handler: 503 for a service that is down, a plain 500 page otherwise."""
    exception = sys.exc_info()[1]
    detail = unavailable_detail(exception)
    if detail is not None:
        return unavailable_response(request, detail)
    if wants_json(request):
        return JsonResponse({"detail": "Server error."}, status=500)
    return HttpResponse(loader.get_template("500.html").render({}), status=500)
