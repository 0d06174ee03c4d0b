"""DRF plumbing named in settings (pagination, exception handler). It must not import
rest_framework.viewsets: DRF imports these while it is still loading."""

from __future__ import annotations

import logging
from collections import OrderedDict
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import DataError
from django.db.models import ProtectedError, RestrictedError
from rest_framework import exceptions
from rest_framework.pagination import PageNumberPagination
from rest_framework.renderers import BaseRenderer
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler
from rest_framework.views import set_rollback

logger = logging.getLogger(__name__)
IN_USE = "Other records still use this one, so it cannot be deleted."
OUT_OF_RANGE = "A value in the request is out of range (a date, a time or a number)."


class CappedPageNumberPagination(PageNumberPagination):
    """Page-number pagination with a count that stops at ``count_cap``.

    A full COUNT(*) grows with the table; counting at most ``count_cap + 1`` rows of the
    user's own (index-filtered) scope keeps every page's cost bounded. ``count_capped``
    tells clients that there are more.
    """

    page_size_query_param = "page_size"
    max_page_size = 200
    # Counting at most 1,001 index entries of the user's scope costs well under a
    # millisecond; lists beyond that say "1,000+" (count_capped).
    count_cap = 1_000
    # Far past any list's last page (1,000,000 pages of 200 rows), and an OFFSET that
    # PostgreSQL's bigint holds.
    max_page = 1_000_000

    def paginate_queryset(
        self, queryset: Any, request: Any, view: Any = None, values: list[str] | None = None
    ) -> Any:
        """The page's rows (as ``.values(*values)`` dicts when given: no model instances)
        and a capped count of the queryset itself (without the joins the values need)."""
        self.request = request
        page_size = self.get_page_size(request)
        if not page_size:
            return None
        try:
            page_number = int(request.query_params.get(self.page_query_param, 1))
        except (TypeError, ValueError):
            raise exceptions.ValidationError({"page": ["A page is a whole number."]}) from None
        if page_number < 1:
            raise exceptions.NotFound("Invalid page.")
        if page_number > self.max_page:
            # The OFFSET would pass PostgreSQL's bigint (a 500); no scope has that many pages.
            raise exceptions.ValidationError({"page": [f"At most {self.max_page:,}."]})
        self.page_number = page_number
        self.page_size_value = page_size
        offset = (page_number - 1) * page_size
        rows = list(
            (queryset.values(*values) if values else queryset)[offset : offset + page_size + 1]
        )
        self.has_next = len(rows) > page_size
        rows = rows[:page_size]
        if page_number == 1 and not self.has_next:
            self.count, self.count_capped = len(rows), False
        else:
            # Primary keys only: the count need not join what the page selects.
            capped = queryset.order_by().values("pk")[: self.count_cap + 1].count()
            self.count_capped = capped > self.count_cap
            self.count = min(capped, self.count_cap)
        if page_number > 1 and not rows:
            raise exceptions.NotFound("Invalid page.")
        return rows

    def _link(self, number: int | None) -> str | None:
        if number is None:
            return None
        from rest_framework.utils.urls import remove_query_param, replace_query_param

        url = self.request.build_absolute_uri()
        if number == 1:
            return remove_query_param(url, self.page_query_param)
        return replace_query_param(url, self.page_query_param, number)

    def get_paginated_response(self, data: Any) -> Response:
        return Response(
            OrderedDict(
                [
                    ("count", self.count),
                    ("count_capped", self.count_capped),
                    ("next", self._link(self.page_number + 1 if self.has_next else None)),
                    (
                        "previous",
                        self._link(self.page_number - 1 if self.page_number > 1 else None),
                    ),
                    ("results", data),
                ]
            )
        )

    def get_paginated_response_schema(self, schema: dict[str, Any]) -> dict[str, Any]:
        return {
            "type": "object",
            "required": ["count", "count_capped", "results"],
            "properties": {
                "count": {"type": "integer", "description": "Rows in your scope, up to 1,000."},
                "count_capped": {"type": "boolean", "description": "True when there are more."},
                "next": {"type": "string", "nullable": True, "format": "uri"},
                "previous": {"type": "string", "nullable": True, "format": "uri"},
                "results": schema,
            },
        }


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """Services raise Django's ValidationError / PermissionDenied; answer 400 / 403."""
    if isinstance(exc, DjangoValidationError):
        detail: Any
        if hasattr(exc, "error_dict"):
            detail = {
                ("non_field_errors" if field == "__all__" else field): [
                    str(m) for e in errs for m in e.messages
                ]
                for field, errs in exc.error_dict.items()
            }
        else:
            detail = {"non_field_errors": list(exc.messages)}
        extra = getattr(exc, "allowed", None)
        if extra is not None:
            detail[getattr(exc, "allowed_key", "allowed_stages")] = extra
        return Response(detail, status=400)
    if isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied(str(exc) or None)
    if isinstance(exc, ProtectedError | RestrictedError):
        # A delete that a view checked for ("rules use this template") can still meet a row
        # added since by another request: the database's PROTECT answers, and so do we.
        set_rollback()
        return Response({"detail": IN_USE}, status=400)
    if isinstance(exc, DataError | OverflowError):
        # The last line of defence (fields and filters check their own ranges first): a
        # value the database or the calendar cannot hold is the client's to correct.
        logger.warning("Bad input on %s: %r", context["request"].path, exc)
        set_rollback()
        return Response({"detail": OUT_OF_RANGE}, status=400)
    return drf_exception_handler(exc, context)


class CSVRenderer(BaseRenderer):
    """Lets ``?format=csv`` and ``Accept: text/csv`` through DRF's content negotiation;
    the views build the CSV themselves (streamed where it can be long)."""

    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(
        self, data: Any, accepted_media_type: Any = None, renderer_context: Any = None
    ) -> bytes:
        return str(data).encode()


def csv_safe(value: Any) -> Any:
    """Spreadsheets run cells that start with = + - @ as formulas: defuse them."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value
