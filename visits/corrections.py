"""The on-site time of a completed visit, and the hours promised for it, are evidence the
school relies on (hours on site against the agreement, "behind" or "on track"): they
change only with a reason, and every change is recorded (who, when, before and after,
why) and shown to the school's leads. visits.services calls these inside its
transactions."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError

from accounts.models import Partnership, User

from .models import OnsiteCorrection, TimeEntry, Visit

# What makes up the on-site figure: changing any of these changes the evidence.
EVIDENCE_FIELDS = ("minutes", "date", "mode", "visit_id")
REASON_REQUIRED = (
    "This is the on-site time of a completed visit, which the school relies on: say why "
    "it changes (the school's leads see the reason)."
)


def is_evidence(entry: TimeEntry) -> bool:
    """An on-site entry of a completed visit."""
    return (
        entry.mode == TimeEntry.Mode.ON_SITE
        and entry.visit is not None
        and entry.visit.status == Visit.Status.COMPLETED
    )


def evidence_before(entry: TimeEntry) -> TimeEntry | None:
    """The entry as stored, locked until the transaction ends (so the recorded "before" is
    what the school last saw), when it is a completed visit's on-site time; else None."""
    stored = (
        TimeEntry.objects.select_for_update(of=("self",)).select_related("visit").get(pk=entry.pk)
    )
    return stored if is_evidence(stored) else None


def describe(entry: TimeEntry) -> str:
    hours, minutes = divmod(entry.minutes, 60)
    length = f"{hours} h {minutes:02d} min" if hours else f"{minutes} min"
    return f"{length} {entry.get_mode_display().lower()} on {entry.date:%d %b %Y}"


def correction_record(
    *, before: TimeEntry, after: TimeEntry | None, by: User, reason: Any
) -> OnsiteCorrection | None:
    """Record a change (``after``) or the deletion (``after=None``) of a completed visit's
    on-site entry; a change that leaves the evidence as it was needs no reason. Raises a
    field error on ``reason`` when one is needed and missing."""
    if after is not None and all(
        getattr(before, name) == getattr(after, name) for name in EVIDENCE_FIELDS
    ):
        return None
    reason = str(reason or "").strip()
    if not reason:
        raise ValidationError({"reason": REASON_REQUIRED})
    return OnsiteCorrection.objects.create(
        partnership_id=before.partnership_id,
        time_entry_id=before.pk,
        visit_id=before.visit_id,
        change=OnsiteCorrection.Change.CHANGED if after else OnsiteCorrection.Change.DELETED,
        old_minutes=before.minutes,
        new_minutes=after.minutes if after else None,
        old_value=describe(before),
        new_value=describe(after) if after else "",
        reason=reason,
        by=by,
    )


PROMISE_REASON_REQUIRED = (
    "Lowering the on-site hours promised per term changes whether the supplier is behind: "
    "say why (the school's leads see the reason)."
)


def promise_change_record(
    *, partnership: Partnership, by: User, old_hours: Decimal, new_hours: Decimal, reason: Any
) -> OnsiteCorrection | None:
    """Record the agreement's on-site hours per term being lowered (``reason`` required,
    else a field error on ``reason``); raising the promise needs no reason and records
    nothing. accounts.services.partnership_update calls it, with the partnership row
    locked, through accounts.hooks.register_promise_change (registered in
    visits.apps.ready(): accounts imports no other app)."""
    old_hours, new_hours = Decimal(old_hours), Decimal(new_hours)
    if new_hours >= old_hours:
        return None
    reason = str(reason or "").strip()
    if not reason:
        raise ValidationError({"reason": PROMISE_REASON_REQUIRED})
    return OnsiteCorrection.objects.create(
        partnership=partnership,
        change=OnsiteCorrection.Change.PROMISE_LOWERED,
        old_minutes=int(old_hours * 60),
        new_minutes=int(new_hours * 60),
        old_value=f"{old_hours:.1f} h on site promised per term",
        new_value=f"{new_hours:.1f} h on site promised per term",
        reason=reason,
        by=by,
    )
