"""Errors every app shares."""


class ServiceUnavailable(Exception):
    """A service the request needs (the database or the broker) is down; nothing was changed.

    The API answers 503 ``{"code": "service_unavailable", "detail"}``; pages a plain 503 page.
    """

    code = "service_unavailable"

    def __init__(self, detail: str):
        super().__init__(detail)
        self.detail = detail
