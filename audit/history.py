"""History rows for writes that bypass ``save()``.

simple-history records on ``post_save``/``post_delete``; ``QuerySet.update()``,
``bulk_create()`` and ``bulk_update()`` write no history. The services that must keep
those (a conditional update is how two concurrent requests are told apart) call
``record_changes()`` with the rows as they now are, in the same transaction, and the rows
carry the same who/channel/via as a ``save()`` would have given them.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db import models
from django.utils import timezone
from simple_history.models import HistoricalRecords

from .context import current

_REQUEST_CHANNELS = {"page", "api", "admin", "system"}


def _request() -> Any:
    return getattr(HistoricalRecords.context, "request", None)


def channel_and_via() -> tuple[str, str]:
    """The channel and via of a history row written now (request's URL name when unset)."""
    channel, via = current()
    if not via and channel in _REQUEST_CHANNELS:
        match = getattr(_request(), "resolver_match", None)
        if match is not None:
            via = match.view_name or ""
    return channel, via[:200]


def request_user() -> Any:
    user = getattr(_request(), "user", None)
    return user if user is not None and user.is_authenticated else None


def record_changes(
    instances: Iterable[models.Model],
    *,
    history_type: str = "~",
    user: Any = None,
    reason: str | None = None,
) -> list[models.Model]:
    """Write one history row per instance (saved rows, primary keys set), as they are now.

    ``history_type``: "+" created, "~" changed, "-" deleted. ``user`` defaults to the
    request's user (none in a task)."""
    instances = list(instances)
    if not instances:
        return []
    model = type(instances[0])
    historical = getattr(model, model._meta.simple_history_manager_attribute).model
    channel, via = channel_and_via()
    who = user if user is not None else request_user()
    now = timezone.now()
    rows = []
    for obj in instances:
        if obj.pk is None:
            raise ValueError(f"record_changes needs saved rows; a {model.__name__} has no pk")
        rows.append(
            historical(
                history_date=now,
                history_type=history_type,
                history_user=who,
                history_change_reason=reason,
                history_channel=channel,
                history_via=via,
                **{f.attname: getattr(obj, f.attname) for f in historical.tracked_fields},
            )
        )
    return historical.objects.bulk_create(rows)
