"""/healthz: the database and the broker, each checked for real; 503 names what failed."""

from __future__ import annotations

import logging
import os
from datetime import datetime
from pathlib import Path
from typing import Any

from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache

logger = logging.getLogger(__name__)

# A probe must answer well inside a load balancer's timeout, so each check makes one
# attempt with short socket timeouts. Kombu's defaults would instead retry with growing
# sleeps, and redis-py's would wait forever on a broker that accepts but never answers.
BROKER_TIMEOUT_SECONDS = 2.0


class BrokerFolderMissing(OSError):
    """The filesystem broker's folder is gone or not writable: tasks cannot be queued."""


def _check_database() -> tuple[str | None, datetime | None]:
    """(failure, last heartbeat). Reading the heartbeat also proves the app's tables exist:
    a reachable but unmigrated database cannot serve the product either."""
    from accounts.models import Heartbeat

    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
        beat = Heartbeat.objects.filter(name="beat").values_list("last_seen", flat=True).first()
    except Exception as exc:  # any failure to talk to it is "down"
        logger.warning("healthz: database check failed: %s", exc)
        return type(exc).__name__, None
    return None, beat


def _check_filesystem_folders(options: dict[str, Any]) -> None:
    # Creating a filesystem "connection" touches no file, so look at the folders that
    # publishing and consuming use.
    for key in ("data_folder_in", "data_folder_out", "control_folder"):
        folder = options.get(key)
        if folder and not (Path(folder).is_dir() and os.access(folder, os.W_OK | os.X_OK)):
            raise BrokerFolderMissing(f"{key} {folder} is not a writable folder")


def _check_broker() -> str | None:
    from partnership_crm.celery import app

    try:
        # A fresh connection, not one from the app's pool: a pooled connection can look
        # alive after the broker has gone.
        with app.connection_for_write(
            transport_options={
                "socket_timeout": BROKER_TIMEOUT_SECONDS,
                "socket_connect_timeout": BROKER_TIMEOUT_SECONDS,
            }
        ) as conn:
            # max_retries=0: one attempt, no back-off sleep between attempts.
            conn.ensure_connection(max_retries=0, timeout=BROKER_TIMEOUT_SECONDS)
            # Opening a channel makes Redis answer a PING.
            conn.default_channel  # noqa: B018
            if conn.transport.driver_type == "filesystem":
                _check_filesystem_folders(conn.transport_options)
    except Exception as exc:
        logger.warning("healthz: broker check failed: %s", exc)
        return type(exc).__name__
    return None


@never_cache
def healthz(request: HttpRequest) -> JsonResponse:
    failures: dict[str, str] = {}
    db_error, beat = _check_database()
    if db_error is not None:
        failures["database"] = db_error
    if (broker_error := _check_broker()) is not None:
        failures["broker"] = broker_error
    body: dict[str, object] = {
        "status": "ok" if not failures else "unavailable",
        "database": "ok" if "database" not in failures else f"failed: {failures['database']}",
        "broker": "ok" if "broker" not in failures else f"failed: {failures['broker']}",
    }
    from nudges.checks import WEBHOOK_MISSING, webhook_missing

    if webhook_missing():
        # Serving, but exactly-once sending is weaker than it should be: say so.
        body["degraded"] = [WEBHOOK_MISSING]
    if db_error is None:
        # Informational: a stale beat does not make the web unhealthy.
        body["last_beat_seconds_ago"] = (
            round((timezone.now() - beat).total_seconds()) if beat else None
        )
    return JsonResponse(body, status=200 if not failures else 503)
