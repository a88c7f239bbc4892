"""``GET /healthz``: is the database reachable, and the broker (or are tasks eager)?"""

from django.conf import settings
from django.db import connection
from django.http import JsonResponse
from django.views.decorators.http import require_GET

from portal.celery import app as celery_app


def _database_ok() -> bool:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            return cursor.fetchone() == (1,)
    except Exception:
        return False


def _broker_state() -> str:
    if not settings.CELERY_BROKER_URL:
        return "eager"
    try:
        with celery_app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
        return "ok"
    except Exception:
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


