"""Bad input answered as bad input (400), on every page and API route alike."""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.db import DataError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render

logger = logging.getLogger(__name__)

NUL_MESSAGE = "The address contains a NUL character (%00), which no field can hold."
OUT_OF_RANGE_MESSAGE = (
    "A date or number in the address is out of range. Check the dates and numbers, "
    "or start again from the page's own links."
)


def _bad_request(request: HttpRequest, message: str) -> HttpResponse:
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": message}, status=400)
    return render(request, "400.html", {"message": message}, status=400)


class BadInputMiddleware:
    """PostgreSQL text cannot hold NUL (0x00), so a NUL byte in the path or the query string
    (``?stage=%00``) failed deep inside a query with a 500: it is refused at the door.

    For pages (the API has its own exception handler, partnership_crm.drf), a value the
    database or the calendar cannot hold (``DataError``: an id past bigint, a date-time
    offset past 15:59; ``OverflowError``: a date past 9999) answers 400 rather than 500.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if "\x00" in request.path_info or any(
            "\x00" in key or any("\x00" in v for v in values) for key, values in request.GET.lists()
        ):
            return _bad_request(request, NUL_MESSAGE)
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if isinstance(exception, DataError | OverflowError) and not request.path.startswith(
            "/api/"
        ):
            logger.warning("Bad input on %s: %r", request.path, exception)
            return _bad_request(request, OUT_OF_RANGE_MESSAGE)
        return None
