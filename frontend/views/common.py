"""What the page views share."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

FORM_ERROR = 422  # a form with errors: htmx swaps it in (see base.html's htmx-config)


def is_htmx(request: HttpRequest) -> bool:
    """An htmx request for a fragment (a history restore wants the whole page)."""
    htmx = getattr(request, "htmx", None)
    return bool(htmx) and not htmx.history_restore_request


def page_or_partial(
    request: HttpRequest,
    page: str,
    partial: str,
    context: dict[str, Any],
    status: int = 200,
) -> HttpResponse:
    """The partial for an htmx request, the whole page otherwise (every page works
    without JavaScript)."""
    return render(request, partial if is_htmx(request) else page, context, status=status)
