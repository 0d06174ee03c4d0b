"""A completed visit's on-site time changes only with a reason, and the change is recorded
(who, when, before, after, why) for the school's leads."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from visits.models import OnsiteCorrection, TimeEntry
from visits.services import visit_complete, visit_create


@pytest.fixture
def done(world: Any) -> TimeEntry:
    """A 2-hour training visit at Ashfield (p_a1) this morning, completed: its on-site
    entry of 120 minutes."""
    start = timezone.now() - timedelta(hours=3)
    visit = visit_create(
        by=world.s1_am,
        partnership=world.p_a1,
        kind="training",
        starts_at=start,
        ends_at=start + timedelta(hours=2),
        attendees=[world.s1_am],
    )
    visit_complete(visit=visit, by=world.s1_am)
    return TimeEntry.objects.get(visit=visit, mode="on_site")


def _delivered(world: Any) -> str:
    response = world.client("a_lead").get(
        "/api/v1/time-entries/onsite-summary/", {"partnership": world.p_a1.pk}
    )
    return response.json()["delivered_hours"]


@pytest.mark.parametrize(
    "change",
    [{"minutes": 600}, {"mode": "remote"}, {"visit": None}, {"date": "2026-01-05"}],
)
def test_changing_a_completed_visits_on_site_time_needs_a_reason(
    world: Any, done: TimeEntry, change: dict[str, Any]
) -> None:
    client = world.client("s1_am")
    url = f"/api/v1/time-entries/{done.pk}/"
    for blank in ({}, {"reason": "  "}):
        refused = client.patch(url, {**change, **blank}, format="json")
        assert refused.status_code == 400
        assert set(refused.json()) == {"reason"}
    stored = TimeEntry.objects.get(pk=done.pk)
    assert (stored.minutes, stored.mode, stored.visit_id) == (120, "on_site", done.visit_id)
    assert not OnsiteCorrection.objects.exists()


def test_a_change_with_a_reason_is_recorded_and_counted(world: Any, done: TimeEntry) -> None:
    assert _delivered(world) == "2.0"
    response = world.client("s1_am").patch(
        f"/api/v1/time-entries/{done.pk}/",
        {"minutes": 600, "reason": "Stayed on for the twilight INSET"},
        format="json",
    )
    assert response.status_code == 200, response.json()
    assert response.json()["minutes"] == 600
    assert "reason" not in response.json()
    fix = OnsiteCorrection.objects.get()
    assert (fix.by, fix.change, fix.old_minutes, fix.new_minutes) == (
        world.s1_am,
        "changed",
        120,
        600,
    )
    assert fix.old_value.startswith("2 h 00 min on site on ")
    assert fix.new_value.startswith("10 h 00 min on site on ")
    assert fix.reason == "Stayed on for the twilight INSET"
    assert (fix.partnership, fix.supplier, fix.school, fix.time_entry_id) == (
        world.p_a1,
        world.s1,
        world.school_a,
        done.pk,
    )
    assert timezone.now() - fix.at < timedelta(minutes=1)
    assert _delivered(world) == "10.0"


def test_notes_and_other_time_change_without_a_reason(world: Any, done: TimeEntry) -> None:
    client = world.client("s1_am")
    notes = client.patch(f"/api/v1/time-entries/{done.pk}/", {"notes": "Year 5"}, format="json")
    assert notes.status_code == 200
    # Remote time, on no visit (te_a1): the supplier's own record to keep.
    remote = client.patch(f"/api/v1/time-entries/{world.te_a1.pk}/", {"minutes": 50}, format="json")
    assert remote.status_code == 200
    assert client.delete(f"/api/v1/time-entries/{world.te_a1.pk}/").status_code == 204
    assert not OnsiteCorrection.objects.exists()


def test_deleting_a_completed_visits_entry_needs_a_reason_and_is_recorded(
    world: Any, done: TimeEntry
) -> None:
    client = world.client("s1_am")
    url = f"/api/v1/time-entries/{done.pk}/"
    refused = client.delete(url)
    assert refused.status_code == 400 and set(refused.json()) == {"reason"}
    assert TimeEntry.objects.filter(pk=done.pk).exists()

    assert client.delete(url, {"reason": "Logged twice"}, format="json").status_code == 204
    assert not TimeEntry.objects.filter(pk=done.pk).exists()
    fix = OnsiteCorrection.objects.get()
    assert (fix.change, fix.old_minutes, fix.new_minutes, fix.new_value) == (
        "deleted",
        120,
        None,
        "",
    )
    assert (fix.reason, fix.by, fix.time_entry_id, fix.visit_id) == (
        "Logged twice",
        world.s1_am,
        None,
        done.visit_id,
    )
    assert _delivered(world) == "0.0"


def test_the_reason_may_come_in_the_query_string_of_a_delete(world: Any, done: TimeEntry) -> None:
    response = world.client("s1_am").delete(f"/api/v1/time-entries/{done.pk}/?reason=Duplicate")
    assert response.status_code == 204
    assert OnsiteCorrection.objects.get().reason == "Duplicate"


def test_corrections_are_seen_by_the_school_leads_and_the_supplier_only(
    world: Any, done: TimeEntry
) -> None:
    world.client("s1_am").patch(
        f"/api/v1/time-entries/{done.pk}/", {"minutes": 90, "reason": "Left early"}, format="json"
    )
    fix = OnsiteCorrection.objects.get()
    for user in ("s1_am", "s1_agent", "a_lead", "trust_lead"):
        assert list(OnsiteCorrection.objects.visible_to(world.users[user])) == [fix], user
    for user in ("s2_am", "a_teacher", "b_lead", "outsider"):
        assert not OnsiteCorrection.objects.visible_to(world.users[user]).exists(), user


def test_lowering_the_promised_hours_needs_a_reason_and_the_school_sees_it(world: Any) -> None:
    """The visits side of the agreement's promise: 6 h a term lowered to 2 h (accounts'
    partnership update is to call this)."""
    from decimal import Decimal

    from django.core.exceptions import ValidationError
    from django.test import Client

    from visits.corrections import promise_change_record

    def lower(old: str, new: str, reason: str = "") -> OnsiteCorrection | None:
        return promise_change_record(
            partnership=world.p_a1,
            by=world.s1_admin,
            old_hours=Decimal(old),
            new_hours=Decimal(new),
            reason=reason,
        )

    with pytest.raises(ValidationError) as refused:
        lower("6", "2", reason=" ")
    assert set(refused.value.message_dict) == {"reason"}
    assert lower("6", "8") is None  # more hours: nothing to explain
    fix = lower("6", "2.5", reason="Pilot paused for exams")
    assert (fix.change, fix.old_minutes, fix.new_minutes, fix.supplier) == (
        "promise_lowered",
        360,
        150,
        world.s1,
    )
    assert list(OnsiteCorrection.objects.visible_to(world.a_lead)) == [fix]
    client = Client()
    client.force_login(world.a_lead)
    html = client.get("/school/scorecard/").content.decode()
    assert "6.0 h on site promised per term" in html and "2.5 h on site promised" in html
    assert "Pilot paused for exams" in html
