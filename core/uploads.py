"""No request body over ``PORTAL_UPLOAD_MAX_MB``: 413, before the body is read.

``UploadLimitMiddleware`` (early in MIDDLEWARE) refuses a request whose ``Content-Length``
is over the limit without reading any of its body. A body without a trustworthy length is
counted as it streams instead: ``UploadLimitHandler``, the first of FILE_UPLOAD_HANDLERS,
stops a multipart upload as soon as its files pass the limit, so at most the limit is ever
read into memory or onto disk. Under WSGI Django reads no more than ``Content-Length``
anyway; the handler covers servers that hand over a body of unknown length.

The API answers ``{"detail": ...}``, pages a plain 413 page.
"""

from django.conf import settings
from django.core.files.uploadhandler import FileUploadHandler
from django.http import HttpResponse, JsonResponse
from django.template import loader

BODY_METHODS = ("POST", "PUT", "PATCH")


class UploadTooLarge(Exception):
    """The body passed PORTAL_UPLOAD_MAX_MB while it was being read."""


def upload_limit_bytes() -> int:
    return settings.PORTAL_UPLOAD_MAX_MB * 1024 * 1024


def too_large_detail() -> str:
    return (f"The upload is larger than {settings.PORTAL_UPLOAD_MAX_MB} MB, the most the portal accepts "
            f"(PORTAL_UPLOAD_MAX_MB). Nothing was saved.")


def too_large_response(request):
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": too_large_detail()}, status=413)
    body = loader.get_template("413.html").render({"detail": too_large_detail()})
    return HttpResponse(body, status=413)


def declared_length(request) -> int | None:
    try:
        return int(request.META.get("CONTENT_LENGTH") or "")
    except ValueError:
        return None


class UploadLimitHandler(FileUploadHandler):
    """Counts the bytes of every file of one request and refuses past the limit."""

    def __init__(self, request=None):
        super().__init__(request)
        self.received = 0

    def receive_data_chunk(self, raw_data, start):
        self.received += len(raw_data)
        if self.received > upload_limit_bytes():
            raise UploadTooLarge(too_large_detail())
        return raw_data

    def file_complete(self, file_size):
        return None


class UploadLimitMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        length = declared_length(request)
        if length is not None and length > upload_limit_bytes():
            return too_large_response(request)
        return self.get_response(request)

    def process_view(self, request, view_func, view_args, view_kwargs):
        # Parse a multipart body here, before CsrfViewMiddleware or a view reads it, so a body
        # that outgrows the limit becomes a 413 (DRF reuses what is parsed here).
        if request.method == "POST" and request.content_type == "multipart/form-data":
            try:
                request.POST  # noqa: B018 - reading it parses the body through the upload handlers
            except UploadTooLarge:
                return too_large_response(request)
        return None

    def process_exception(self, request, exception):
        if isinstance(exception, UploadTooLarge):
            return too_large_response(request)
        return None
