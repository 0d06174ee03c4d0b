"""Callbacks other apps register so that accounts imports none of them (the dependency
arrows stay one-way). Registered from each app's ``AppConfig.ready()``.

- ``register_promise_change(callback)``: called inside ``partnership_update``'s
  transaction, with the partnership row locked, whenever the agreement's on-site hours
  per term change: ``callback(partnership=, by=, old_hours=, new_hours=, reason=)``. It
  may raise ValidationError (a 400 with field errors; nothing is saved). visits records
  a lowered promise with its reason as an on-site correction the school sees.

(The pilot gate's readiness checks register in accounts.stages.)
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .models import Partnership, User

PromiseChange = Callable[..., Any]
_promise_change_callbacks: list[PromiseChange] = []


def register_promise_change(callback: PromiseChange) -> None:
    if callback not in _promise_change_callbacks:
        _promise_change_callbacks.append(callback)


def promise_changed(
    *, partnership: Partnership, by: User, old_hours: Decimal, new_hours: Decimal, reason: str
) -> None:
    for callback in _promise_change_callbacks:
        callback(
            partnership=partnership,
            by=by,
            old_hours=old_hours,
            new_hours=new_hours,
            reason=reason,
        )
