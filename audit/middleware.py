"""Bind the request for the audit trail: who (simple-history reads the request's user when
a history row is written) and through which channel (from the path).

DRF authenticates a token during the view and sets the user onto the Django request, so
API changes carry their user as well as page and admin changes.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from simple_history.models import HistoricalRecords

from .context import bind, unbind


def channel_for_path(path: str) -> str:
    if path.startswith("/admin/"):
        return "admin"
    if path.startswith("/api/"):
        return "api"
    if path.startswith("/webhooks/"):
        # SendGrid's posts: the inbound view narrows its own work to "inbound".
        return "system"
    return "page"


class AuditMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        HistoricalRecords.context.request = request
        token = bind(channel_for_path(request.path_info))
        try:
            return self.get_response(request)
        finally:
            unbind(token)
            with contextlib.suppress(AttributeError):
                del HistoricalRecords.context.request
