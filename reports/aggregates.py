"""Percentiles in the database where it can (PostgreSQL's percentile_cont), and the same
definition in Python where it cannot (SQLite)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from django.db import connection
from django.db.models import Aggregate, FloatField


class PercentileCont(Aggregate):
    """percentile_cont(p) WITHIN GROUP (ORDER BY expr): linear interpolation."""

    function = "PERCENTILE_CONT"
    template = "%(function)s(%(percentile)s) WITHIN GROUP (ORDER BY %(expressions)s)"
    output_field = FloatField()

    def __init__(self, expression: Any, percentile: float, **extra: Any) -> None:
        super().__init__(expression, percentile=float(percentile), **extra)


def percentile(values: Sequence[float], p: float) -> float | None:
    """The same as percentile_cont: rank p*(n-1) interpolated between neighbours."""
    if not values:
        return None
    ordered = sorted(values)
    rank = p * (len(ordered) - 1)
    low, high = math.floor(rank), math.ceil(rank)
    if low == high:
        return float(ordered[low])
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def db_has_percentiles() -> bool:
    return connection.vendor == "postgresql"
