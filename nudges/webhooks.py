"""POST /webhooks/sendgrid/events/: SendGrid's Signed Event Webhook.

Only signed, fresh requests are read: the ECDSA P-256 signature (SendGrid's key, from
SENDGRID_WEBHOOK_PUBLIC_KEY) covers timestamp + body, and a timestamp more than
SENDGRID_WEBHOOK_MAX_AGE seconds from now (either way) is refused, so a captured request
cannot be replayed later. Within the window a replay changes nothing: events are recorded
once per sg_event_id (nudges/events.py).

Without a configured key the endpoint answers 503 rather than trusting unsigned events:
anyone could otherwise mark nudges delivered, or opt contacts out.
"""

from __future__ import annotations

import binascii
import functools
import json
import logging
import time
from typing import Any

from cryptography.exceptions import UnsupportedAlgorithm
from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST
from sendgrid.helpers.eventwebhook import EventWebhook
from sendgrid.helpers.eventwebhook.eventwebhook_header import EventWebhookHeader

from .events import record_events

log = logging.getLogger(__name__)


@functools.lru_cache(maxsize=4)
def _verifier(public_key: str) -> EventWebhook:
    # Parsing the key is the slow part; the setting does not change while running.
    return EventWebhook(public_key.strip())


def _refuse(status: int, detail: str) -> JsonResponse:
    return JsonResponse({"detail": detail}, status=status)


@csrf_exempt
@require_POST
def sendgrid_events(request: HttpRequest) -> JsonResponse:
    public_key = getattr(settings, "SENDGRID_WEBHOOK_PUBLIC_KEY", "")
    if not public_key:
        log.error("SendGrid event webhook called but SENDGRID_WEBHOOK_PUBLIC_KEY is not set")
        return _refuse(503, "Event webhook verification key not configured.")
    try:
        verifier = _verifier(public_key)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        log.error("SENDGRID_WEBHOOK_PUBLIC_KEY cannot be read: %s", exc)
        return _refuse(503, "Event webhook verification key misconfigured.")

    signature = request.headers.get(EventWebhookHeader.SIGNATURE, "")
    timestamp = request.headers.get(EventWebhookHeader.TIMESTAMP, "")
    if not signature or not timestamp:
        return _refuse(403, "Unsigned request.")
    try:
        sent_at = int(timestamp)
    except ValueError:
        return _refuse(403, "Bad timestamp.")
    if abs(time.time() - sent_at) > settings.SENDGRID_WEBHOOK_MAX_AGE:
        return _refuse(403, "Stale or future-dated request.")
    try:
        payload = request.body.decode("utf-8")
        valid = verifier.verify_signature(payload, signature, timestamp)
    except (UnicodeDecodeError, binascii.Error, ValueError, TypeError):
        # The SDK raises on a signature that is not base64 rather than returning False.
        valid = False
    if not valid:
        log.warning(
            "SendGrid event webhook: bad signature from %s", request.META.get("REMOTE_ADDR")
        )
        return _refuse(403, "Bad signature.")

    try:
        events: Any = json.loads(payload)
    except ValueError:
        return _refuse(400, "Body is not JSON.")
    if not isinstance(events, list):
        return _refuse(400, "Expected a JSON array of events.")
    recorded = record_events(events)
    return JsonResponse({"received": len(events), "recorded": recorded})
