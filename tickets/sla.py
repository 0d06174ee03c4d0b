"""The SLA clock of a ticket, in school working time. No queries: the caller passes the
school's WorkingCalendar (accounts.calendars) and the current time.

First response: due ``first_response_target_seconds`` of working time after the ticket
was raised; met by the first public message or status change by supplier staff.
Resolution: ``resolution_target_seconds`` of working time, with the clock stopped while
the ticket waits on the school, and after it is resolved or closed (a reopen restarts it
from where it stopped).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from .models import OPEN_STATUSES

if TYPE_CHECKING:
    from accounts.working_time import WorkingCalendar

    from .models import Ticket


def start(ticket: Ticket, now: datetime, cal: WorkingCalendar) -> None:
    ticket.first_response_due_at = cal.add_business_seconds(
        now, ticket.first_response_target_seconds
    )
    ticket.sla_used_seconds = 0
    resume(ticket, now, cal)


def stop(ticket: Ticket, now: datetime, cal: WorkingCalendar) -> None:
    """Pause (waiting on the school) or finish (resolved): bank the time used so far."""
    if ticket.clock_started_at is not None:
        ticket.sla_used_seconds += cal.business_seconds(ticket.clock_started_at, now)
        ticket.clock_started_at = None
    if ticket.sla_used_seconds > ticket.resolution_target_seconds:
        ticket.resolution_breached = True


def resume(ticket: Ticket, now: datetime, cal: WorkingCalendar) -> None:
    ticket.clock_started_at = now
    remaining = ticket.resolution_target_seconds - ticket.sla_used_seconds
    if remaining > 0:
        ticket.resolution_due_at = cal.add_business_seconds(now, remaining)
    else:
        ticket.resolution_breached = ticket.resolution_breached or remaining < 0
        # Already due or over: keep the original due time if we have one.
        ticket.resolution_due_at = ticket.resolution_due_at or now


FIELDS = [
    "first_response_due_at",
    "sla_used_seconds",
    "clock_started_at",
    "resolution_due_at",
    "resolution_breached",
]


@dataclass(frozen=True)
class SlaView:
    first_response_due_at: datetime
    first_response_at: datetime | None
    first_response_breached: bool
    resolution_due_at: datetime | None
    resolved_at: datetime | None
    resolution_breached: bool
    is_paused: bool
    # Needs the school's calendar; None when the caller did not pass one (lists).
    business_seconds_elapsed: int | None = None


def view(ticket: Ticket, now: datetime, cal: WorkingCalendar | None = None) -> SlaView:
    """The figures a person sees, as of ``now``. The breach flags use only stored times,
    exactly like the ``breached`` filter in the database: late means past the due time."""
    running = ticket.clock_started_at is not None
    first_at = ticket.first_response_at
    elapsed = None
    if cal is not None:
        elapsed = ticket.sla_used_seconds
        if running:
            elapsed += cal.business_seconds(ticket.clock_started_at, now)
    due = ticket.resolution_due_at
    open_ = ticket.status in OPEN_STATUSES
    return SlaView(
        first_response_due_at=ticket.first_response_due_at,
        first_response_at=first_at,
        first_response_breached=(first_at or now) > ticket.first_response_due_at,
        resolution_due_at=due,
        resolved_at=ticket.resolved_at,
        resolution_breached=ticket.resolution_breached
        or (running and due is not None and now > due),
        is_paused=open_ and not running,
        business_seconds_elapsed=elapsed,
    )
