"""Sessions end: after ``PORTAL_SESSION_IDLE_MINUTES`` without a request, and
``PORTAL_SESSION_MAX_HOURS`` after sign-in, whatever the activity.

The session keeps when the user signed in and when it last saw them (``last_seen`` is
written at most once a minute, so a busy page does not write the session on every request).
An ended session is flushed: the request goes on as anonymous, so pages send it to the login
page and the API answers 401/403. Ending a session is not a sign-out: the user's API tokens
stay valid (they have their own expiry).
"""

import logging
import time

from django.conf import settings
from django.contrib.auth.models import AnonymousUser

logger = logging.getLogger(__name__)

SIGNED_IN_AT = "portal_signed_in_at"
LAST_SEEN = "portal_last_seen"
LAST_SEEN_EVERY_SECONDS = 60


def mark_signed_in(request) -> None:
    """At sign-in: both clocks start now."""
    session = getattr(request, "session", None)
    if session is not None:
        now = time.time()
        session[SIGNED_IN_AT] = now
        session[LAST_SEEN] = now


def session_end_reason(session, now: float) -> str | None:
    """'idle' or 'max_age' when the session is over, else None."""
    signed_in = session.get(SIGNED_IN_AT)
    last_seen = session.get(LAST_SEEN, signed_in)
    if not isinstance(signed_in, int | float) or not isinstance(last_seen, int | float):
        return None
    if now - signed_in > settings.PORTAL_SESSION_MAX_HOURS * 3600:
        return "max_age"
    if now - last_seen > settings.PORTAL_SESSION_IDLE_MINUTES * 60:
        return "idle"
    return None


class SessionLimitsMiddleware:
    """After AuthenticationMiddleware (it reads the user) and before LoginRequiredMiddleware
    (which then sends an ended session to the login page)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        session = getattr(request, "session", None)
        user = getattr(request, "user", None)
        if session is not None and user is not None and user.is_authenticated:
            now = time.time()
            reason = session_end_reason(session, now)
            if reason is not None:
                logger.info("Session of %s ended (%s).", user.get_username(), reason)
                session.flush()
                request.user = AnonymousUser()
            elif SIGNED_IN_AT not in session:
                mark_signed_in(request)  # a session from before these limits: its clocks start now
            elif now - session.get(LAST_SEEN, 0) >= LAST_SEEN_EVERY_SECONDS:
                session[LAST_SEEN] = now
        return self.get_response(request)
