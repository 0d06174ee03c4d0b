"""The on-site time of a completed visit is evidence the school relies on (hours on site
against the agreement, "behind" or "on track"): it changes only with a reason, and every
change is recorded (who, when, the entry before and after, why) and shown to the
school's leads. visits.services calls these inside its transactions."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError

from accounts.models import User

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
