"""POST /webhooks/sendgrid/inbound/<secret>/: SendGrid Inbound Parse.

Parse signs nothing, so the secret in the path is what says the post came through our
Parse setting (a wrong one answers 404, as if there were no such page; none configured,
503). Everything else is checked message by message (inbound/services.py). A refused
message still answers 200: Parse retries anything else for three days, and a forged or
expired token will not become good by waiting.
"""

from __future__ import annotations

import hmac
import logging

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from .parse import Malformed, from_post
from .services import receive

log = logging.getLogger(__name__)


@csrf_exempt
@require_POST
def sendgrid_inbound(request: HttpRequest, secret: str) -> JsonResponse:
    expected = settings.INBOUND_SECRET
    if not expected:
        log.error("Inbound Parse called but INBOUND_SECRET is not set")
        return JsonResponse({"detail": "Inbound email is not configured."}, status=503)
    if not hmac.compare_digest(secret.encode(), expected.encode()):
        log.warning("Inbound Parse: wrong secret from %s", request.META.get("REMOTE_ADDR"))
        return JsonResponse({"detail": "Not found."}, status=404)
    try:
        message = from_post(request.POST, request.FILES)
    except RequestDataTooBig:
        return JsonResponse({"detail": "The message is too large."}, status=413)
    except Malformed as exc:
        return JsonResponse({"detail": f"Not an Inbound Parse post: {exc}."}, status=400)
    outcome = receive(message)
    return JsonResponse({"status": outcome.status, "reason": outcome.reason})
