"""Visits, readiness, the pilot gate and on-site time, through the API."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import time_machine

from accounts.models import Term
from visits.models import TimeEntry

LONDON = ZoneInfo("Europe/London")


def at(*args: int) -> datetime:
    return datetime(*args, tzinfo=LONDON)


def _plan(world: Any, user: str = "s1_am", **extra: Any) -> Any:
    body = {
        "partnership": world.p_a1.pk,
        "kind": "technical_survey",
        "starts_at": "2026-12-01T09:00:00Z",
        "ends_at": "2026-12-01T12:00:00Z",
        "attendees": [world.s1_am.pk],
        "contacts": [world.c_a_it.pk],
        "agenda": "Network, wifi, SSO, filtering",
        **extra,
    }
    return world.client(user).post("/api/v1/visits/", body)


def test_an_account_manager_plans_a_technical_survey(world: Any) -> None:
    response = _plan(world)
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["status"] == "planned"
    assert body["assessment"]["missing_areas"] == [
        "network",
        "wifi",
        "devices",
        "sign_in",
        "mis",
        "filtering",
        "data_protection",
        "accessibility",
    ]
    assert world.client("a_lead").get(f"/api/v1/visits/{body['id']}/").status_code == 200


def test_overlapping_visits_of_the_same_person_are_refused_clearly(world: Any) -> None:
    assert _plan(world).status_code == 201
    clash = _plan(
        world, kind="training", starts_at="2026-12-01T11:30:00Z", ends_at="2026-12-01T13:00:00Z"
    )
    assert clash.status_code == 400
    message = clash.json()["attendees"][0]
    assert "Overlapping visit" in message and "S1 Am" in message and "Ashfield Primary" in message
    back_to_back = _plan(
        world, kind="training", starts_at="2026-12-01T12:00:00Z", ends_at="2026-12-01T13:00:00Z"
    )
    assert back_to_back.status_code == 201
    colleague = _plan(
        world,
        kind="training",
        attendees=[world.s1_agent.pk],
        starts_at="2026-12-01T11:00:00Z",
        ends_at="2026-12-01T13:00:00Z",
    )
    assert colleague.status_code == 201


def test_a_visit_that_ends_before_it_starts_or_with_outsiders_is_refused(world: Any) -> None:
    backwards = _plan(world, ends_at="2026-12-01T08:00:00Z")
    assert backwards.status_code == 400 and "ends_at" in backwards.json()
    other_supplier = _plan(world, attendees=[world.s2_am.pk])
    assert other_supplier.status_code == 400 and "attendees" in other_supplier.json()
    assert _plan(world, user="a_lead", attendees=[], contacts=[]).status_code == 403


def test_cancelling_needs_a_reason_and_frees_the_slot(world: Any) -> None:
    visit_id = _plan(world).json()["id"]
    url = f"/api/v1/visits/{visit_id}/cancel/"
    assert world.client("s1_am").post(url, {"reason": ""}).status_code == 400
    cancelled = world.client("s1_am").post(url, {"reason": "School closed for snow"})
    assert cancelled.json()["status"] == "cancelled"
    assert cancelled.json()["status_reason"] == "School closed for snow"
    assert _plan(world).status_code == 201  # the person is free again


def test_a_future_visit_cannot_be_completed_or_marked_no_show(world: Any) -> None:
    visit_id = _plan(world).json()["id"]
    with time_machine.travel(at(2026, 11, 30, 9), tick=False):
        done = world.client("s1_am").post(f"/api/v1/visits/{visit_id}/complete/", {})
        no_show = world.client("s1_am").post(
            f"/api/v1/visits/{visit_id}/cancel/", {"reason": "x", "no_show": True}
        )
    assert done.status_code == 400 and no_show.status_code == 400


def test_completing_a_visit_records_its_on_site_time_once(world: Any) -> None:
    visit_id = _plan(world).json()["id"]
    with time_machine.travel(at(2026, 12, 1, 13), tick=False):
        done = world.client("s1_am").post(
            f"/api/v1/visits/{visit_id}/complete/", {"notes": "Good wifi"}
        )
        again = world.client("s1_am").post(f"/api/v1/visits/{visit_id}/complete/", {})
    assert done.status_code == 200 and done.json()["status"] == "completed"
    assert again.status_code == 400
    entry = TimeEntry.objects.get(visit_id=visit_id)
    assert (entry.minutes, entry.mode, entry.activity, entry.date) == (
        180,
        "on_site",
        "planning",
        date(2026, 12, 1),
    )
    duplicate = world.client("s1_am").post(
        "/api/v1/time-entries/",
        {
            "partnership": world.p_a1.pk,
            "visit": visit_id,
            "date": "2026-12-01",
            "minutes": 60,
            "mode": "on_site",
            "activity": "training",
        },
    )
    assert duplicate.status_code == 400


def _survey_done(world: Any) -> int:
    visit_id = _plan(world).json()["id"]
    with time_machine.travel(at(2026, 12, 1, 13), tick=False):
        world.client("s1_am").post(f"/api/v1/visits/{visit_id}/complete/", {})
    return visit_id


def test_a_failed_area_cannot_be_called_ready(world: Any) -> None:
    visit_id = _survey_done(world)
    url = f"/api/v1/visits/{visit_id}/assessment/"
    checks = [{"area": "wifi", "result": "fail", "notes": "No coverage in the Year 5 block"}]
    refused = world.client("s1_am").post(url, {"outcome": "ready", "checks": checks})
    assert refused.status_code == 400 and "outcome" in refused.json()
    conditions = world.client("s1_am").post(
        url, {"outcome": "ready_with_conditions", "checks": checks}
    )
    assert conditions.status_code == 400  # the conditions must be written down
    ok = world.client("s1_am").post(
        url,
        {
            "outcome": "ready_with_conditions",
            "checks": checks,
            "actions": [
                {
                    "description": "Add an access point in Year 5",
                    "owner": "school",
                    "due_on": "2027-01-08",
                }
            ],
        },
    )
    assert ok.status_code == 200, ok.json()
    assert ok.json()["outcome"] == "ready_with_conditions"
    assert [a["description"] for a in ok.json()["actions"]] == ["Add an access point in Year 5"]


def test_the_pilot_opens_only_after_a_completed_survey_says_ready(world: Any) -> None:
    am = world.client("s1_am")
    am.post(f"/api/v1/partnerships/{world.p_a1.pk}/transition/", {"stage": "technical_review"})
    visit_id = _plan(world).json()["id"]
    url = f"/api/v1/visits/{visit_id}/assessment/"
    all_pass = [{"area": a, "result": "pass"} for a in ["network", "wifi", "devices", "sign_in"]]
    # Rated ready before it has happened: still not a completed survey.
    assert am.post(url, {"outcome": "ready", "checks": all_pass}).status_code == 200
    early = am.post(f"/api/v1/partnerships/{world.p_a1.pk}/transition/", {"stage": "pilot"})
    assert early.status_code == 400 and "technical survey" in early.json()["stage"][0]
    with time_machine.travel(at(2026, 12, 1, 13), tick=False):
        am.post(f"/api/v1/visits/{visit_id}/complete/", {})
    opened = am.post(f"/api/v1/partnerships/{world.p_a1.pk}/transition/", {"stage": "pilot"})
    assert opened.status_code == 200
    assert opened.json()["overrides"] == []  # no override needed


def test_the_school_lead_ticks_off_a_follow_up_and_a_teacher_cannot(world: Any) -> None:
    url = f"/api/v1/readiness-actions/{world.fa_a1.pk}/"
    assert world.client("a_teacher").patch(url, {"done": True}).status_code == 403
    done = world.client("a_lead").patch(url, {"done": True})
    assert done.status_code == 200 and done.json()["is_done"] is True
    assert done.json()["done_by"] == world.a_lead.pk
    open_actions = (
        world.client("s1_am").get("/api/v1/readiness-actions/", {"is_done": "false"}).json()
    )
    assert open_actions["count"] == 0


def test_time_cannot_be_logged_against_another_partnerships_visit(world: Any) -> None:
    other_visit = world.v_a1  # p_a1's; log against p_a1's sibling is impossible, so build one
    response = world.client("s2_am").post(
        "/api/v1/time-entries/",
        {
            "partnership": world.p_a2.pk,
            "visit": other_visit.pk,
            "date": "2026-12-01",
            "minutes": 30,
            "mode": "remote",
            "activity": "planning",
        },
    )
    assert response.status_code == 400  # s2 cannot even see s1's visit
    own = world.client("s2_am").post(
        "/api/v1/time-entries/",
        {
            "partnership": world.p_a2.pk,
            "visit": world.v_b2.pk,
            "date": "2026-12-01",
            "minutes": 30,
            "mode": "remote",
            "activity": "planning",
        },
    )
    assert own.status_code == 400 and "visit" in own.json()


# --- On-site hours this term: worked examples across term boundaries ----------------------


def _summary(world: Any, on: str, user: str = "a_lead") -> Any:
    response = world.client(user).get(
        "/api/v1/time-entries/onsite-summary/", {"partnership": world.p_a1.pk, "on": on}
    )
    assert response.status_code == 200, response.content
    return response.json()


def _log(world: Any, day: str, minutes: int, mode: str = "on_site") -> None:
    response = world.client("s1_am").post(
        "/api/v1/time-entries/",
        {
            "partnership": world.p_a1.pk,
            "date": day,
            "minutes": minutes,
            "mode": mode,
            "activity": "training",
        },
    )
    assert response.status_code == 201, response.json()


def test_hours_on_site_this_term_against_the_agreement(world: Any) -> None:
    """Autumn term 2026: 2 Sep to 18 Dec; spring term from 5 Jan 2027. Promise: 10 h a
    term. Delivered: 3 h on 21 Jul (last term), 4 h on 2 Sep (first day), 2.5 h on 18 Dec
    (last day), 1 h remote in October (not on site), 2 h on 5 Jan (next term)."""
    school = world.school_a
    Term.objects.create(
        school=school, name="Summer 2026", starts_on=date(2026, 4, 20), ends_on=date(2026, 7, 21)
    )
    Term.objects.create(
        school=school, name="Autumn 2026", starts_on=date(2026, 9, 2), ends_on=date(2026, 12, 18)
    )
    Term.objects.create(
        school=school, name="Spring 2027", starts_on=date(2027, 1, 5), ends_on=date(2027, 3, 26)
    )
    world.p_a1.onsite_hours_per_term = 10
    world.p_a1.save()
    _log(world, "2026-07-21", 180)
    _log(world, "2026-09-02", 240)
    _log(world, "2026-10-14", 60, mode="remote")
    _log(world, "2026-12-18", 150)
    _log(world, "2027-01-05", 120)

    first_day = _summary(world, "2026-09-02")
    assert first_day["term"]["name"] == "Autumn 2026"
    assert first_day["delivered_hours"] == "4.0"
    assert first_day["shortfall_hours"] == "6.0"

    mid = _summary(world, "2026-11-02")
    assert mid["delivered_hours"] == "4.0"  # remote time is not on site
    assert mid["is_behind"] is True  # over half the term gone, under half delivered

    last_day = _summary(world, "2026-12-18")
    assert last_day["delivered_hours"] == "6.5"
    assert last_day["shortfall_hours"] == "3.5"
    assert last_day["expected_by_now_hours"] == "10.0"

    holiday = _summary(world, "2026-12-28")  # Christmas holiday: the next term's account
    assert holiday["term"]["name"] == "Spring 2027"
    assert holiday["delivered_hours"] == "0.0"

    spring = _summary(world, "2027-01-05")
    assert spring["delivered_hours"] == "2.0"
    assert spring["expected_by_now_hours"] == "0.2"  # 1 of 58 working days (26 Mar is Good Friday)


def test_without_term_dates_the_default_terms_apply(world: Any) -> None:
    _log(world, "2026-12-31", 60)
    _log(world, "2027-01-01", 60)
    summary = _summary(world, "2026-12-31")
    assert summary["term"] == {
        "name": "Autumn 2026",
        "starts_on": "2026-09-01",
        "ends_on": "2026-12-31",
        "from_school_calendar": False,
    }
    assert summary["delivered_hours"] == "1.0"


def test_planned_visits_count_as_planned_not_delivered(world: Any) -> None:
    with time_machine.travel(at(2026, 11, 20, 9), tick=False):
        _plan(world, kind="training")
        summary = _summary(world, "2026-11-20")
    assert summary["planned_hours"] == "5.0"  # this 3 h training, and the cast's 2 h survey
    assert summary["delivered_hours"] == "0.0"


def _listed_hours(world: Any, user: str, path: str, params: dict[str, Any]) -> float:
    """What ``user`` could add up from the rows the API lists them."""
    client, minutes, page = world.client(user), 0, 1
    while True:
        body = client.get(path, {**params, "page": page, "page_size": 200}).json()
        for row in body["results"]:
            if "minutes" in row:
                minutes += row["minutes"]
            else:  # a visit
                span = datetime.fromisoformat(row["ends_at"]) - datetime.fromisoformat(
                    row["starts_at"]
                )
                minutes += int(span.total_seconds() // 60)
        if not body["next"]:
            return round(minutes / 60, 1)
        page += 1


def test_each_user_s_summary_adds_up_only_what_they_may_list(world: Any) -> None:
    """The teacher of p_a1's cohort sees the partnership but not the supplier's time
    entries: their summary counts none of its 2 h on site, while the school's lead,
    the trust's lead and the supplier count it; planned visits are each user's own."""
    Term.objects.create(
        school=world.school_a,
        name="Autumn 2026",
        starts_on=date(2026, 9, 2),
        ends_on=date(2026, 12, 18),
    )
    with time_machine.travel(at(2026, 11, 20, 9), tick=False):
        _log(world, "2026-11-19", 120)
        _plan(world, kind="training")  # 3 h on 1 Dec, and the cast's 2 h survey
        on = "2026-11-20"
        seen = {}
        for user in ("a_teacher", "a_lead", "trust_lead", "s1_am", "s1_agent"):
            summary = _summary(world, on, user=user)
            entries = {
                "partnership": world.p_a1.pk,
                "mode": "on_site",
                "date_from": "2026-09-02",
                "date_to": on,
            }
            visits = {
                "partnership": world.p_a1.pk,
                "status": "planned",
                "starts_after": "2026-11-21T00:00:00Z",
                "starts_before": "2026-12-19T00:00:00Z",
            }
            delivered = _listed_hours(world, user, "/api/v1/time-entries/", entries)
            planned = _listed_hours(world, user, "/api/v1/visits/", visits)
            assert float(summary["delivered_hours"]) == delivered, user
            assert float(summary["planned_hours"]) == planned, user
            seen[user] = summary["delivered_hours"]
    assert seen == {
        "a_teacher": "0.0",
        "a_lead": "2.0",
        "trust_lead": "2.0",
        "s1_am": "2.0",
        "s1_agent": "2.0",
    }


def test_bad_summary_requests_are_field_errors(world: Any) -> None:
    client = world.client("a_lead")
    response = client.get("/api/v1/time-entries/onsite-summary/", {"on": "tomorrow"})
    assert response.status_code == 400
    assert set(response.json()) == {"partnership", "on"}
