"""``GET /healthz``: is the database reachable, and the broker (or are tasks eager)?

What is down is named in the answer; why it is down (the real exception, e.g. a missing
package of the broker's transport) goes to the log.
"""

import logging

from django.conf import settings
from django.db import connection
from django.http import JsonResponse
from django.views.decorators.http import require_GET

from core.jobs import broker_error

logger = logging.getLogger(__name__)


def _database_ok() -> bool:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            return cursor.fetchone() == (1,)
    except Exception:
        logger.exception("healthz: the database is down")
        return False


def _broker_state() -> str:
    if not settings.CELERY_BROKER_URL:
        return "eager"
    error = broker_error()
    if error is None:
        return "ok"
    logger.error("healthz: the broker is down: %r", error, exc_info=error)
    return "down"


@require_GET
def healthz(request):
    body = {
        "status": "ok",
        "database": "ok" if _database_ok() else "down",
        "broker": _broker_state(),
    }
    down = [name for name in ("database", "broker") if body[name] == "down"]
    if down:
        body["status"] = "down"
        body["down"] = down
        return JsonResponse(body, status=503)
    return JsonResponse(body)
