"""The channel of a request for the audit trail, from its path. Who made a change comes
from simple-history's own ``HistoryRequestMiddleware`` (before this one in MIDDLEWARE),
which exposes the request; DRF authenticates a token during the view and sets the user
onto the Django request, so API changes carry their user as well as page and admin changes.
"""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from .context import recording


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
        with recording(channel_for_path(request.path_info)):
            return self.get_response(request)
