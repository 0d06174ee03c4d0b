"""Editing a trial phase (PATCH) against its decision: a decided phase's kind and dates
stay as decided, the end date moves only by "extend", and an edit that races a decision
never overwrites it (the last tests use two real PostgreSQL connections)."""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.db import connection, connections, transaction
from django.utils import timezone

from accounts import services
from accounts.models import Partnership, StageChange, SuccessCriterion, TrialPhase
from conftest import build_world

PHASES = "/api/v1/trial-phases/"


def _pilot(partnership: Partnership) -> None:
    Partnership.objects.filter(pk=partnership.pk).update(stage="pilot")


def _patch(world: Any, phase: TrialPhase, body: dict[str, Any]) -> Any:
    return world.client("s1_am").patch(f"{PHASES}{phase.pk}/", body, format="json")


def test_a_decided_phases_kind_and_dates_are_refused_with_field_errors(world: Any) -> None:
    phase = world.ph_a1
    _pilot(world.p_a1)
    services.trial_phase_decide(phase=phase, by=world.s1_am, decision="continue")
    before = TrialPhase.objects.values().get(pk=phase.pk)

    response = _patch(
        world,
        phase,
        {
            "kind": "expansion",
            "start_date": str(phase.start_date - timedelta(days=7)),
            "end_date": str(phase.end_date + timedelta(days=30)),
        },
    )

    assert response.status_code == 400
    body = response.json()
    assert set(body) >= {"kind", "start_date", "end_date"}
    assert "decided (Continue)" in str(body["kind"])
    assert TrialPhase.objects.values().get(pk=phase.pk) == before


def test_a_decided_phases_impact_is_not_rewritten_by_patch(world: Any) -> None:
    """POST …/evaluate/ refuses a decided phase; PATCH must not be the way round it."""
    phase = world.ph_a1
    _pilot(world.p_a1)
    services.trial_phase_evaluate(phase=phase, by=world.s1_am, impact="Homework up 40%")
    services.trial_phase_decide(phase=phase, by=world.s1_am, decision="continue")

    response = _patch(world, phase, {"impact": "Homework up 90%"})

    assert response.status_code == 400
    assert "impact" in response.json()
    assert TrialPhase.objects.get(pk=phase.pk).impact == "Homework up 40%"


def test_a_patch_repeating_a_decided_phases_dates_is_accepted(world: Any) -> None:
    """A client that sends the whole object back changes nothing it may not change."""
    phase = world.ph_a1
    _pilot(world.p_a1)
    services.trial_phase_decide(phase=phase, by=world.s1_am, decision="continue")
    response = _patch(
        world,
        phase,
        {
            "kind": "pilot",
            "start_date": str(phase.start_date),
            "end_date": str(phase.end_date),
            "implementation": "Two lessons a week",
        },
    )
    assert response.status_code == 200, response.json()
    assert response.json()["implementation"] == "Two lessons a week"
    assert response.json()["decision"] == "continue"


def test_a_started_phases_end_moves_only_by_extending_it(world: Any) -> None:
    phase = world.ph_a1  # started in the last 30 days
    _pilot(world.p_a1)
    later = phase.end_date + timedelta(days=30)

    refused = _patch(world, phase, {"end_date": str(later)})

    assert refused.status_code == 400
    assert "extend" in str(refused.json()["end_date"])
    phase.refresh_from_db()
    assert phase.end_date != later
    extended = world.client("s1_am").post(
        f"{PHASES}{phase.pk}/decide/",
        {"decision": "extend", "end_date": str(later), "notes": "Half term ate two weeks"},
        format="json",
    )
    assert extended.status_code == 200, extended.json()
    assert extended.json()["end_date"] == str(later)
    assert "Extended from" in extended.json()["decision_notes"]
    # Extended but still open: its kind and start are now part of the record too.
    again = _patch(world, phase, {"kind": "expansion", "end_date": str(later + timedelta(1))})
    assert set(again.json()) == {"kind", "end_date"}


def test_a_phase_not_yet_started_may_still_have_its_dates_planned(world: Any) -> None:
    phase = world.ph_a1
    start = timezone.localdate() + timedelta(days=14)
    TrialPhase.objects.filter(pk=phase.pk).update(start_date=start, end_date=start + timedelta(60))

    response = _patch(world, phase, {"end_date": str(start + timedelta(days=90))})

    assert response.status_code == 200, response.json()
    assert response.json()["end_date"] == str(start + timedelta(days=90))


def test_a_cohort_edit_from_a_page_loaded_before_the_decision_keeps_the_decision(
    world: Any,
) -> None:
    """The lost update, one connection: the phase object the edit carries was read before
    someone else decided; saving it whole used to write the decision back to blank."""
    stale = TrialPhase.objects.get(pk=world.ph_a1.pk)
    _pilot(world.p_a1)
    services.trial_phase_decide(
        phase=world.ph_a1, by=world.s1_am, decision="stop", notes="No take-up"
    )

    services.trial_phase_update(
        phase=stale, by=world.s1_am, cohort=[world.c_a_teacher, world.c_a_it]
    )

    fresh = TrialPhase.objects.get(pk=world.ph_a1.pk)
    assert (fresh.decision, fresh.decision_notes) == ("stop", "No take-up")
    assert fresh.decided_by == world.s1_am
    assert set(fresh.cohort.all()) == {world.c_a_teacher, world.c_a_it}


# --- Two PostgreSQL connections ---------------------------------------------------------


def _needs_postgresql() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("the race is only real with two PostgreSQL connections")


def _waiting_for_a_lock(timeout: float = 10) -> bool:
    """True once another connection of this database waits on a lock (polled)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with connection.cursor() as cursor:
            # Inside a transaction the activity view is a snapshot taken at first use.
            cursor.execute("SELECT pg_stat_clear_snapshot()")
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
            )
            if cursor.fetchone()[0]:
                return True
        time.sleep(0.02)
    return False


@pytest.mark.django_db(transaction=True)
def test_a_cohort_and_criteria_edit_racing_a_decision_never_undoes_it() -> None:
    """The decision (an extension) holds its row lock while an edit of the cohort and
    criteria arrives with the phase as it was read before: the edit waits, then applies
    to the extended phase, and the extension (new end date, decision, its trail) stands."""
    _needs_postgresql()
    world = build_world()
    phase_id, am = world.ph_a1.pk, world.s1_am
    _pilot(world.p_a1)
    stale = TrialPhase.objects.get(pk=phase_id)  # what the edit's view loaded
    new_end = stale.end_date + timedelta(days=42)
    decided, edit_blocked = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def decide() -> None:
        try:
            with transaction.atomic():
                services.trial_phase_decide(
                    phase=TrialPhase.objects.get(pk=phase_id),
                    by=am,
                    decision="extend",
                    end_date=new_end,
                    notes="Half term ate two weeks",
                )
                decided.set()
                # Commit only once the edit is queued behind our lock.
                if not _waiting_for_a_lock():
                    errors.append(AssertionError("the edit never waited for the decision"))
                edit_blocked.set()
        except BaseException as exc:
            errors.append(exc)
            decided.set()
        finally:
            connections.close_all()

    def edit() -> None:
        try:
            decided.wait(timeout=10)
            services.trial_phase_update(
                phase=stale,
                by=am,
                cohort=[world.c_a_teacher, world.c_a_it],
                criteria=[{"description": "Used in every maths lesson", "target": "4/5"}],
            )
        except BaseException as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=decide), threading.Thread(target=edit)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)

    assert not errors, errors
    assert edit_blocked.is_set()
    phase = TrialPhase.objects.get(pk=phase_id)
    assert (phase.decision, phase.end_date, phase.decided_by_id) == ("extend", new_end, am.pk)
    assert "Half term ate two weeks" in phase.decision_notes
    assert set(phase.cohort.values_list("pk", flat=True)) == {
        world.c_a_teacher.pk,
        world.c_a_it.pk,
    }
    assert list(phase.criteria.values_list("description", flat=True)) == [
        "Used in every maths lesson"
    ]


@pytest.mark.django_db(transaction=True)
def test_criteria_added_while_the_phase_is_being_decided_are_refused_not_lost() -> None:
    """Adding criteria is judged against the phase as it is once the decision commits:
    a 400 the user sees, rather than criteria attached to a phase already decided."""
    _needs_postgresql()
    world = build_world()
    phase_id, am = world.ph_a1.pk, world.s1_am
    _pilot(world.p_a1)
    stale = TrialPhase.objects.get(pk=phase_id)
    start = threading.Barrier(2)
    outcome: dict[str, Any] = {}

    def decide() -> None:
        try:
            with transaction.atomic():
                services.trial_phase_decide(
                    phase=TrialPhase.objects.get(pk=phase_id), by=am, decision="continue"
                )
                start.wait(timeout=10)
                _waiting_for_a_lock()
        finally:
            connections.close_all()

    def add_criteria() -> None:
        try:
            start.wait(timeout=10)
            services.trial_phase_update(
                phase=stale, by=am, criteria=[{"description": "Homework set online"}]
            )
            outcome["result"] = "saved"
        except ValidationError as exc:
            outcome["result"] = exc.message_dict
        finally:
            connections.close_all()

    threads = [threading.Thread(target=decide), threading.Thread(target=add_criteria)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)

    assert "criteria" in outcome["result"], outcome
    assert not SuccessCriterion.objects.filter(phase_id=phase_id).exists()
    assert TrialPhase.objects.get(pk=phase_id).decision == "continue"


@pytest.mark.django_db(transaction=True)
def test_two_decisions_at_once_record_one_and_refuse_the_other() -> None:
    """Deciding is a claim on the phase's row: "continue" and "stop" sent at the same
    moment by two managers leave one decision, one 'already decided' and a partnership
    stage that matches the decision that stands."""
    _needs_postgresql()
    world = build_world()
    phase_id = world.ph_a1.pk
    _pilot(world.p_a1)
    start = threading.Barrier(2)
    results: dict[str, Any] = {}

    def decide(decision: str, by: Any) -> None:
        try:
            start.wait(timeout=10)
            services.trial_phase_decide(
                phase=TrialPhase.objects.get(pk=phase_id), by=by, decision=decision
            )
            results[decision] = "decided"
        except ValidationError as exc:
            results[decision] = exc.message_dict
        except BaseException as exc:
            results[decision] = exc
        finally:
            connections.close_all()

    threads = [
        threading.Thread(target=decide, args=("continue", world.s1_am)),
        threading.Thread(target=decide, args=("stop", world.s1_admin)),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)

    winners = [d for d, r in results.items() if r == "decided"]
    assert len(winners) == 1, results
    [loser] = set(results) - set(winners)
    assert "already decided" in str(results[loser]["decision"])
    phase = TrialPhase.objects.get(pk=phase_id)
    assert phase.decision == winners[0]
    stage = Partnership.objects.get(pk=world.p_a1.pk).stage
    assert stage == ("ended" if winners[0] == "stop" else "pilot")
    assert StageChange.objects.filter(partnership=world.p_a1, to_stage="ended").count() == (
        1 if winners[0] == "stop" else 0
    )
