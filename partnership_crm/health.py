"""/healthz: the database and the broker, each checked for real; 503 names what failed."""

from __future__ import annotations

import logging

from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache

logger = logging.getLogger(__name__)


def _check_database() -> str | None:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:  # any failure to talk to it is "down"
        logger.warning("healthz: database check failed: %s", exc)
        return f"{type(exc).__name__}"
    return None


def _check_broker() -> str | None:
    from partnership_crm.celery import app

    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
            # Open a channel: a filesystem broker checks its folders, Redis answers a PING.
            conn.default_channel  # noqa: B018
    except Exception as exc:
        logger.warning("healthz: broker check failed: %s", exc)
        return f"{type(exc).__name__}"
    return None


@never_cache
def healthz(request: HttpRequest) -> JsonResponse:
    failures = {}
    if (err := _check_database()) is not None:
        failures["database"] = err
    if (err := _check_broker()) is not None:
        failures["broker"] = err
    body: dict[str, object] = {
        "status": "ok" if not failures else "unavailable",
        "database": "ok" if "database" not in failures else f"failed: {failures['database']}",
        "broker": "ok" if "broker" not in failures else f"failed: {failures['broker']}",
    }
    if "database" not in failures:
        from accounts.models import Heartbeat

        beat = Heartbeat.objects.filter(name="beat").values_list("last_seen", flat=True).first()
        # Informational: a stale beat does not make the web unhealthy.
        body["last_beat_seconds_ago"] = (
            round((timezone.now() - beat).total_seconds()) if beat else None
        )
    return JsonResponse(body, status=200 if not failures else 503)
