"""Startup checks: exactly-once sending leans on SendGrid's event webhook to settle the
nudges whose request's answer was lost. Sending without it is allowed, and said."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import Warning, register

WEBHOOK_MISSING = (
    "SENDGRID_API_KEY is set but SENDGRID_WEBHOOK_PUBLIC_KEY is not: SendGrid's events "
    "cannot settle a nudge whose request's answer was lost, so each such nudge is held for "
    "the supplier's admin to resend or drop instead of being confirmed"
)


def webhook_missing() -> bool:
    return bool(settings.SENDGRID_API_KEY) and not settings.SENDGRID_WEBHOOK_PUBLIC_KEY


@register()
def sendgrid_webhook_configured(app_configs: Any, **kwargs: Any) -> list[Warning]:
    if not webhook_missing():
        return []
    return [
        Warning(
            WEBHOOK_MISSING,
            hint="Turn on SendGrid's Signed Event Webhook for <SITE_URL>/webhooks/sendgrid/events/ "
            "and set its verification key.",
            id="nudges.W001",
        )
    ]
