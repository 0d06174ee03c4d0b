"""Signal handlers wired in ``audit/apps.py``."""

from __future__ import annotations

import contextlib
from contextvars import Token
from typing import Any

from simple_history.models import HistoricalRecords

from .context import bind, unbind
from .history import channel_and_via

# task id -> (the channel binding to undo, the request it hid): a task's change is the
# system's, even when an eager task runs inside a request (as it does in tests).
_running: dict[str, tuple[Token, Any]] = {}
_NO_REQUEST = object()


def fill_channel(sender: Any, history_instance: Any, **kwargs: Any) -> None:
    if not hasattr(history_instance, "history_channel"):
        return
    history_instance.history_channel, history_instance.history_via = channel_and_via()


def task_started(task_id: str | None = None, task: Any = None, **kwargs: Any) -> None:
    if task_id is None:
        return
    hidden = getattr(HistoricalRecords.context, "request", _NO_REQUEST)
    if hidden is not _NO_REQUEST:
        del HistoricalRecords.context.request
    _running[task_id] = (bind("task", getattr(task, "name", "") or ""), hidden)


def task_finished(task_id: str | None = None, **kwargs: Any) -> None:
    entry = _running.pop(task_id, None) if task_id is not None else None
    if entry is None:
        return
    token, hidden = entry
    with contextlib.suppress(ValueError):  # reset from another context: that one's own
        unbind(token)
    if hidden is not _NO_REQUEST:
        HistoricalRecords.context.request = hidden
