"""The API's filter backend: django-filter's, with values made safe for the database.

django-filter checks that a value parses, not that the database can hold it: an id past
PostgreSQL's bigint, or a date-time like ``2026-01-01T00:00-16:58`` (Python allows offsets
up to a day, PostgreSQL up to 15:59), reached the query and answered 500. Here every
filter's cleaned value is checked once, for every viewset: numbers must fit a bigint and
aware date-times are sent in UTC (a year that UTC pushes past 1 or 9999 is refused).
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from django_filters import utils
from django_filters.rest_framework import DjangoFilterBackend
from rest_framework.exceptions import ValidationError

BIGINT_MAX = 2**63 - 1
BIGINT_MIN = -(2**63)


def db_safe(value: Any) -> Any:
    """``value`` as the database can take it; ValueError (with a message for the client)
    when it cannot."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int | Decimal):
        if not BIGINT_MIN <= value <= BIGINT_MAX:
            raise ValueError(f"Give a number from {BIGINT_MIN} to {BIGINT_MAX}.")
        return value
    if isinstance(value, datetime) and value.tzinfo is not None:
        try:
            return value.astimezone(UTC)
        except OverflowError:
            raise ValueError("This date and time is out of range.") from None
    if isinstance(value, list | tuple):
        return type(value)(db_safe(v) for v in value)
    return value


class SafeFilterBackend(DjangoFilterBackend):
    def filter_queryset(self, request: Any, queryset: Any, view: Any) -> Any:
        filterset = self.get_filterset(request, queryset, view)
        if filterset is None:
            return queryset
        if not filterset.is_valid():
            raise utils.translate_validation(filterset.errors)
        cleaned = filterset.form.cleaned_data
        errors = {}
        for name, value in cleaned.items():
            try:
                cleaned[name] = db_safe(value)
            except ValueError as exc:
                errors[name] = [str(exc)]
        if errors:
            raise ValidationError(errors)
        return filterset.qs
