"""503, never 500, for a database or broker that is down (the handlers themselves; the
real outages are in test_faults.py)."""

import json

import pytest
from django.db import InterfaceError, OperationalError
from django.test import RequestFactory
from kombu.exceptions import OperationalError as BrokerOperationalError

from core.errors import ServiceUnavailable
from core.unavailable import ServiceUnavailableMiddleware, server_error

factory = RequestFactory()


@pytest.mark.parametrize("exc, word", [
    (OperationalError("connection refused"), "database"),
    (InterfaceError("connection already closed"), "database"),
    (BrokerOperationalError("Error 111"), "broker"),
    (ServiceUnavailable("The broker is down."), "broker"),
])
@pytest.mark.parametrize("path", ["/api/v1/licenses/", "/licenses/"])
def test_services_that_are_down_answer_503(exc, word, path):
    request = factory.get(path)
    middleware = ServiceUnavailableMiddleware(lambda r: None)
    from_view = middleware.process_exception(request, exc)
    try:
        raise exc
    except type(exc):
        from_handler = server_error(request)
    for response in (from_view, from_handler):
        assert response.status_code == 503 and response["Retry-After"] == "30"
        if path.startswith("/api/"):
            body = json.loads(response.content)
            assert body["code"] == "service_unavailable" and word in body["detail"]
        else:
            assert response["Content-Type"].startswith("text/html")
            assert b"Service unavailable" in response.content and word.encode() in response.content


def test_other_errors_stay_500_and_are_left_to_django():
    request = factory.get("/licenses/")
    assert ServiceUnavailableMiddleware(lambda r: None).process_exception(request, KeyError("x")) is None
    try:
        raise KeyError("x")
    except KeyError:
        response = server_error(request)
    assert response.status_code == 500 and b"Server error" in response.content
