"""The SLA clock: worked examples through the API, and properties of the bookkeeping."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from types import SimpleNamespace
from typing import Any
from zoneinfo import ZoneInfo

import time_machine
from hypothesis import given, settings
from hypothesis import strategies as st

from accounts.models import ClosureDay
from accounts.working_time import WorkingCalendar
from tickets import sla

LONDON = ZoneInfo("Europe/London")


def at(*args: int) -> datetime:
    return datetime(*args, tzinfo=LONDON)


def _parse(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def test_worked_example_easter_a_pause_and_an_inset_day(world: Any) -> None:
    """Raised Thu 2 Apr 2026 15:00, school day 08:00-17:00, first response 8 h, resolution
    40 h. Good Friday (3 Apr) and Easter Monday (6 Apr) are bank holidays; Fri 10 Apr is an
    INSET day; the ticket waits on the school from Wed 8 Apr 12:00 to Thu 9 Apr 16:00."""
    ClosureDay.objects.create(school=world.school_a, date=date(2026, 4, 10))
    teacher, supplier = world.client("a_teacher"), world.client("s1_am")
    with time_machine.travel(at(2026, 4, 2, 15, 0), tick=False):
        created = teacher.post(
            "/api/v1/tickets/", {"partnership": world.p_a1.pk, "subject": "S", "description": "D"}
        ).json()
    tid = created["id"]
    # Thu 15-17 (2 h) + Tue 7 Apr 08-14 (6 h)
    assert _parse(created["sla"]["first_response_due_at"]) == at(2026, 4, 7, 14, 0)
    # Thu 2 + Tue 9 + Wed 9 + Thu 9 + (Fri INSET) + Mon 9 = 38, Tue 14 Apr 08-10
    assert _parse(created["sla"]["resolution_due_at"]) == at(2026, 4, 14, 10, 0)

    with time_machine.travel(at(2026, 4, 7, 15, 0), tick=False):
        acked = supplier.post(
            f"/api/v1/tickets/{tid}/transition/", {"status": "acknowledged"}
        ).json()
    assert acked["sla"]["first_response_breached"] is True  # an hour late
    assert acked["sla"]["business_seconds_elapsed"] == 9 * 3600  # Thu 2 h + Tue 08-15 7 h

    with time_machine.travel(at(2026, 4, 8, 12, 0), tick=False):
        paused = supplier.post(
            f"/api/v1/tickets/{tid}/transition/", {"status": "waiting_on_school"}
        ).json()
    assert paused["sla"]["business_seconds_elapsed"] == 15 * 3600  # + Tue 15-17 2 h + Wed 4 h
    assert paused["sla"]["resolution_due_at"] is None

    with time_machine.travel(at(2026, 4, 9, 10, 0), tick=False):
        still = teacher.get(f"/api/v1/tickets/{tid}/").json()
    assert still["sla"]["business_seconds_elapsed"] == 15 * 3600  # stopped while waiting

    with time_machine.travel(at(2026, 4, 9, 16, 0), tick=False):
        teacher.post(f"/api/v1/tickets/{tid}/messages/", {"body": "Here's the screenshot"})
        resumed = teacher.get(f"/api/v1/tickets/{tid}/").json()
    assert resumed["status"] == "in_progress"
    # 25 h left: Thu 16-17 (1), (Fri INSET), Mon 13 (9), Tue 14 (9), Wed 15 08-14 (6)
    assert _parse(resumed["sla"]["resolution_due_at"]) == at(2026, 4, 15, 14, 0)

    with time_machine.travel(at(2026, 4, 13, 9, 30), tick=False):
        done = supplier.post(
            f"/api/v1/tickets/{tid}/transition/", {"status": "resolved", "outcome": "fixed"}
        ).json()
    assert done["sla"]["business_seconds_elapsed"] == (15 + 1 + 1.5) * 3600
    assert done["sla"]["resolution_breached"] is False

    with time_machine.travel(at(2026, 4, 20, 9, 0), tick=False):
        later = teacher.get(f"/api/v1/tickets/{tid}/").json()
    assert later["sla"]["business_seconds_elapsed"] == 17.5 * 3600  # stopped once resolved


def test_the_clock_is_right_across_the_clocks_going_back(world: Any) -> None:
    """Fri 23 Oct 2026 16:00 BST + 8 h: Fri 1 h, Mon 26 Oct (GMT) 08:00 + 7 h = 15:00 GMT."""
    with time_machine.travel(at(2026, 10, 23, 16, 0), tick=False):
        created = (
            world.client("a_teacher")
            .post(
                "/api/v1/tickets/",
                {"partnership": world.p_a1.pk, "subject": "S", "description": "D"},
            )
            .json()
        )
    assert _parse(created["sla"]["first_response_due_at"]) == datetime(2026, 10, 26, 15, tzinfo=UTC)


def test_breached_filter_finds_late_tickets_only(world: Any) -> None:
    teacher = world.client("a_teacher")
    with time_machine.travel(at(2026, 3, 2, 9, 0), tick=False):
        late = teacher.post(
            "/api/v1/tickets/", {"partnership": world.p_a1.pk, "subject": "a", "description": "b"}
        ).json()["id"]
    with time_machine.travel(at(2026, 3, 3, 9, 0), tick=False):
        fresh = teacher.post(
            "/api/v1/tickets/", {"partnership": world.p_a1.pk, "subject": "c", "description": "d"}
        ).json()["id"]
        breached = world.client("s1_am").get("/api/v1/tickets/", {"breached": "true"}).json()
        on_time = world.client("s1_am").get("/api/v1/tickets/", {"breached": "false"}).json()
    ours = {late, fresh}  # the cast's own tickets were raised "later" (today)
    assert [t["id"] for t in breached["results"] if t["id"] in ours] == [late]
    assert [t["id"] for t in on_time["results"] if t["id"] in ours] == [fresh]
    assert all(t["sla"]["first_response_breached"] for t in breached["results"])


# --- Properties of the bookkeeping, on random histories ---------------------------------

CAL = WorkingCalendar()
START = at(2026, 1, 5, 7, 0)


def _ticket(first: int, resolution: int) -> Any:
    return SimpleNamespace(
        first_response_target_seconds=first,
        resolution_target_seconds=resolution,
        first_response_at=None,
        resolved_at=None,
        status="new",
        sla_used_seconds=0,
        clock_started_at=None,
        resolution_due_at=None,
        resolution_breached=False,
        first_response_due_at=None,
    )


@settings(max_examples=150, deadline=None)
@given(
    target_hours=st.integers(1, 60),
    steps=st.lists(
        st.tuples(st.integers(1, 60 * 60 * 24 * 6), st.sampled_from(["pause", "resume"])),
        max_size=8,
    ),
    tail=st.integers(0, 60 * 60 * 24 * 20),
)
def test_elapsed_time_is_the_working_time_of_the_running_intervals(
    target_hours: int, steps: list[tuple[int, str]], tail: int
) -> None:
    ticket = _ticket(3600, target_hours * 3600)
    now = START
    sla.start(ticket, now, CAL)
    running_since: datetime | None = now
    oracle = 0
    for gap, action in steps:
        now += timedelta(seconds=gap)
        if action == "pause" and running_since is not None:
            sla.stop(ticket, now, CAL)
            ticket.resolution_due_at = None
            oracle += CAL.business_seconds(running_since, now)
            running_since = None
        elif action == "resume" and running_since is None:
            sla.resume(ticket, now, CAL)
            running_since = now
        if running_since is not None and ticket.sla_used_seconds < ticket.resolution_target_seconds:
            # While running, the due time is exactly the remaining working time away.
            remaining = ticket.resolution_target_seconds - ticket.sla_used_seconds
            assert CAL.business_seconds(running_since, ticket.resolution_due_at) == remaining
    now += timedelta(seconds=tail)
    expected = oracle + (CAL.business_seconds(running_since, now) if running_since else 0)
    view = sla.view(ticket, now, CAL)
    target = ticket.resolution_target_seconds
    assert view.business_seconds_elapsed == expected
    # Late means past the due time; that agrees with the working time used, except that a
    # ticket due at closing time is late overnight while no more working time passes.
    if expected > target:
        assert view.resolution_breached
    if view.resolution_breached:
        assert expected >= target
    assert view.is_paused == (running_since is None)


def test_the_first_response_time_is_kept_in_school_working_seconds(world: Any) -> None:
    with time_machine.travel(at(2026, 4, 2, 15, 0), tick=False):
        created = (
            world.client("a_teacher")
            .post(
                "/api/v1/tickets/",
                {"partnership": world.p_a1.pk, "subject": "S", "description": "D"},
            )
            .json()
        )
    with time_machine.travel(at(2026, 4, 7, 9, 30), tick=False):
        world.client("s1_am").post(f"/api/v1/tickets/{created['id']}/messages/", {"body": "On it"})
    from tickets.models import Ticket

    # Thu 15:00-17:00 and Tue 08:00-09:30 (Good Friday, Easter Monday, the weekend out).
    assert Ticket.objects.get(pk=created["id"]).first_response_seconds == 3.5 * 3600
