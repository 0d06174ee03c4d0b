"""Sending an email at most once, without holding a row lock while the mail server is
talked to."""

from __future__ import annotations

from collections.abc import Callable

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone


def send_once(row: QuerySet, field: str, send: Callable[[], bool]) -> bool:
    """Claim the email by setting ``field`` on ``row`` (one row, where the field is still
    empty) in a transaction of its own, then ``send()``: no lock is held during the
    request. If sending raises, the claim is given back (only ours: the same timestamp)
    so the task's retry tries again; a repeated call while claimed sends nothing."""
    when = timezone.now()
    with transaction.atomic():
        if row.filter(**{f"{field}__isnull": True}).update(**{field: when}) != 1:
            return False
    try:
        return send()
    except Exception:
        row.filter(**{field: when}).update(**{field: None})
        raise
