"""Trial phases through the API: the pilot cohort warning, evaluation per criterion with
evidence, and the decision that moves the partnership's stage."""

from datetime import timedelta
from typing import Any

from django.utils import timezone

from accounts import services
from accounts.models import Partnership, StageChange, SuccessCriterion, TrialPhase
from accounts.tests import factories as f

PHASES = "/api/v1/trial-phases/"


def _act(world: Any, user: str, phase_id: int, action: str, body: dict[str, Any]) -> Any:
    return world.client(user).post(f"{PHASES}{phase_id}/{action}/", body, format="json")


def _at_stage(partnership: Partnership, stage: str, before_pause: str = "") -> None:
    """Test setup only: put a partnership at a stage without walking the machine."""
    Partnership.objects.filter(pk=partnership.pk).update(
        stage=stage, stage_before_pause=before_pause
    )


def _criteria(phase: TrialPhase, *descriptions: str) -> list[SuccessCriterion]:
    return [SuccessCriterion.objects.create(phase=phase, description=d) for d in descriptions]


def _rate_all(world: Any, phase: TrialPhase, user: str = "s1_am") -> Any:
    items = [
        {"id": c.pk, "evaluation": "met", "evidence": "Seen in the usage report"}
        for c in phase.criteria.all()
    ]
    return _act(world, user, phase.pk, "evaluate", {"criteria": items})


def _colleagues(world: Any, n: int) -> list[int]:
    """n more staff of school A, linked to p_a1 so its supplier may put them in a cohort."""
    ids = []
    for i in range(n):
        contact = f.ContactFactory(school=world.school_a, first_name=f"Teacher{i}")
        f.PartnershipContactFactory(partnership=world.p_a1, contact=contact)
        ids.append(contact.pk)
    return ids


def test_an_account_manager_starts_the_pilot_once_the_school_is_ready_evaluates_it_and_expands(
    world,
):
    am = world.client("s1_am")
    p = world.p_a1
    assert (
        am.post(f"/api/v1/partnerships/{p.pk}/transition/", {"stage": "technical_review"})
    ).status_code == 200
    created = am.post(
        PHASES,
        {
            "partnership": p.pk,
            "kind": "pilot",
            "start_date": str(timezone.localdate()),
            "end_date": str(timezone.localdate() + timedelta(weeks=10)),
            "cohort": [world.c_a_teacher.pk, world.c_a_it.pk],
            "intent": "Year 5 maths homework completion",
            "criteria": [
                {"description": "80% of pupils log in weekly", "target": "80%"},
                {"description": "Teachers set homework in under 10 minutes"},
            ],
        },
    )
    assert created.status_code == 201, created.json()
    phase = created.json()
    assert phase["warnings"] == []
    assert phase["partnership_stage"] == "technical_review"
    assert [c["evaluation"] for c in phase["criteria"]] == ["", ""]

    # Not ready yet: the pilot waits for a completed technical survey rated ready.
    early = am.post(f"/api/v1/partnerships/{p.pk}/transition/", {"stage": "pilot"})
    assert early.status_code == 400
    assert "technical survey" in early.json()["stage"][0]
    # And the pilot phase cannot be decided while the partnership is not in its pilot.
    premature = _act(world, "s1_am", phase["id"], "decide", {"decision": "continue"})
    assert premature.status_code == 400
    assert "technical review" in premature.json()["decision"][0]

    # The technical survey, this morning, rated ready.
    now = timezone.now()
    visit = am.post(
        "/api/v1/visits/",
        {
            "partnership": p.pk,
            "kind": "technical_survey",
            "starts_at": (now - timedelta(hours=3)).isoformat(),
            "ends_at": (now - timedelta(hours=1)).isoformat(),
            "attendees": [world.s1_am.pk],
            "contacts": [world.c_a_it.pk],
        },
    )
    assert visit.status_code == 201, visit.json()
    visit_url = f"/api/v1/visits/{visit.json()['id']}/"
    assert am.post(f"{visit_url}complete/", {}).status_code == 200
    checks = [{"area": a, "result": "pass"} for a in ("network", "wifi", "devices", "sign_in")]
    assessed = am.post(f"{visit_url}assessment/", {"outcome": "ready", "checks": checks})
    assert assessed.status_code == 200, assessed.json()
    opened = am.post(f"/api/v1/partnerships/{p.pk}/transition/", {"stage": "pilot"})
    assert opened.status_code == 200
    assert opened.json()["overrides"] == []

    # Evaluate every criterion with its evidence, and the impact.
    login, homework = phase["criteria"]
    evaluated = _act(
        world,
        "s1_am",
        phase["id"],
        "evaluate",
        {
            "criteria": [
                {"id": login["id"], "evaluation": "met", "evidence": "84% weekly, weeks 3-10"},
                {
                    "id": homework["id"],
                    "evaluation": "partly_met",
                    "evidence": "Two of three teachers; the third needed training",
                },
            ],
            "impact": "Homework completion up from 61% to 78%.",
        },
    )
    assert evaluated.status_code == 200, evaluated.json()
    body = evaluated.json()
    assert [(c["evaluation"], c["evidence"]) for c in body["criteria"]] == [
        ("met", "84% weekly, weeks 3-10"),
        ("partly_met", "Two of three teachers; the third needed training"),
    ]
    assert body["impact"] == "Homework completion up from 61% to 78%."
    assert body["decision"] == ""

    decided = _act(
        world,
        "s1_am",
        phase["id"],
        "decide",
        {"decision": "expand", "notes": "Year 6 joins after Easter."},
    )
    assert decided.status_code == 200, decided.json()
    body = decided.json()
    assert body["decision"] == "expand"
    assert body["decision_notes"] == "Year 6 joins after Easter."
    assert body["decided_by"] == world.s1_am.pk
    assert body["decided_by_name"] == "S1 Am"
    assert body["decided_at"]
    assert body["partnership_stage"] == "expansion"
    p.refresh_from_db()
    assert p.stage == "expansion"
    change = StageChange.objects.filter(partnership=p).last()
    assert (change.from_stage, change.to_stage, change.by) == ("pilot", "expansion", world.s1_am)
    assert not change.is_override
    assert "pilot phase" in change.reason and "expand" in change.reason

    # The school sees the evaluation and the decision.
    seen = world.client("a_lead").get(f"{PHASES}{phase['id']}/").json()
    assert seen["decision"] == "expand"
    assert seen["criteria"][0]["evidence"] == "84% weekly, weeks 3-10"
    history = world.client("a_lead").get(f"/api/v1/partnerships/{p.pk}/").json()["stage_history"]
    assert history[-1]["to_stage"] == "expansion"


def test_expanding_an_expansion_phase_takes_the_partnership_whole_school(world):
    _at_stage(world.p_a1, "expansion")
    phase = f.TrialPhaseFactory(partnership=world.p_a1, kind="expansion")
    _criteria(phase, "All of Key Stage 2 uses it weekly")
    assert _rate_all(world, phase).status_code == 200
    response = _act(world, "s1_admin", phase.pk, "decide", {"decision": "expand"})
    assert response.status_code == 200, response.json()
    assert response.json()["partnership_stage"] == "whole_school"
    assert StageChange.objects.filter(
        partnership=world.p_a1, from_stage="expansion", to_stage="whole_school"
    ).exists()


def test_a_whole_school_phase_cannot_expand_any_further(world):
    _at_stage(world.p_a1, "whole_school")
    phase = f.TrialPhaseFactory(partnership=world.p_a1, kind="whole_school")
    _criteria(phase, "Every class uses it")
    _rate_all(world, phase)
    response = _act(world, "s1_am", phase.pk, "decide", {"decision": "expand"})
    assert response.status_code == 400
    assert "whole school" in response.json()["decision"][0]
    assert TrialPhase.objects.get(pk=phase.pk).decision == ""
    assert Partnership.objects.get(pk=world.p_a1.pk).stage == "whole_school"
    ok = _act(world, "s1_am", phase.pk, "decide", {"decision": "continue"})
    assert ok.status_code == 200
    assert ok.json()["partnership_stage"] == "whole_school"


def test_a_pilot_cohort_over_the_limit_is_saved_with_a_warning(world, settings):
    assert settings.PILOT_COHORT_WARN_SIZE == 8
    extra = _colleagues(world, 7)
    eight = [world.c_a_teacher.pk, *extra[:6], world.c_a_it.pk]
    nine = [world.c_a_teacher.pk, world.c_a_it.pk, *extra]
    plan = {
        "partnership": world.p_a1.pk,
        "kind": "pilot",
        "start_date": "2027-01-06",
        "end_date": "2027-03-27",
    }
    am = world.client("s1_am")
    at_limit = am.post(PHASES, {**plan, "cohort": eight})
    assert at_limit.status_code == 201
    assert at_limit.json()["warnings"] == []
    over = am.post(PHASES, {**plan, "cohort": nine})
    assert over.status_code == 201
    [warning] = over.json()["warnings"]
    assert "9 people" in warning and "8" in warning and "confident teachers" in warning
    assert len(over.json()["cohort"]) == 9

    # Growing an existing pilot's cohort warns too, and the warning stays on reads.
    grown = am.patch(f"{PHASES}{at_limit.json()['id']}/", {"cohort": nine})
    assert grown.status_code == 200
    assert len(grown.json()["warnings"]) == 1
    listed = {row["id"]: row["warnings"] for row in am.get(PHASES).json()["results"]}
    assert len(listed[over.json()["id"]]) == 1
    assert listed[world.ph_a1.pk] == []

    # Only pilots are small by design; the limit is a setting.
    wider = am.post(PHASES, {**plan, "kind": "expansion", "cohort": nine})
    assert wider.json()["warnings"] == []
    settings.PILOT_COHORT_WARN_SIZE = 1
    one_person = am.get(f"{PHASES}{world.ph_a1.pk}/").json()
    assert one_person["warnings"] == []
    assert len(am.get(f"{PHASES}{at_limit.json()['id']}/").json()["warnings"]) == 1


def test_a_phase_is_decided_once(world):
    _at_stage(world.p_a1, "pilot")
    _criteria(world.ph_a1, "Weekly use")
    _rate_all(world, world.ph_a1)
    first = _act(world, "s1_am", world.ph_a1.pk, "decide", {"decision": "continue"})
    assert first.status_code == 200
    assert first.json()["partnership_stage"] == "pilot"
    again = _act(world, "s1_admin", world.ph_a1.pk, "decide", {"decision": "expand"})
    assert again.status_code == 400
    assert "already decided" in again.json()["decision"][0]
    phase = TrialPhase.objects.get(pk=world.ph_a1.pk)
    assert (phase.decision, phase.decided_by) == ("continue", world.s1_am)
    assert Partnership.objects.get(pk=world.p_a1.pk).stage == "pilot"
    # A decided phase's evaluation is the record of the decision, and so are its criteria.
    [criterion] = phase.criteria.all()
    rerate = _act(
        world,
        "s1_am",
        phase.pk,
        "evaluate",
        {"criteria": [{"id": criterion.pk, "evaluation": "not_met", "evidence": "Hindsight"}]},
    )
    assert rerate.status_code == 400
    added = world.client("s1_am").patch(
        f"{PHASES}{phase.pk}/", {"criteria": [{"description": "Afterthought"}]}
    )
    assert added.status_code == 400


def test_expanding_needs_every_criterion_evaluated_and_names_the_ones_left(world):
    _at_stage(world.p_a1, "pilot")
    phase = world.ph_a1
    none_yet = _act(world, "s1_am", phase.pk, "decide", {"decision": "expand"})
    assert none_yet.status_code == 400
    assert "success criteria" in none_yet.json()["criteria"][0]

    login, training, feedback = _criteria(phase, "Weekly log-ins", "Staff trained", "Feedback")
    _act(
        world,
        "s1_am",
        phase.pk,
        "evaluate",
        {"criteria": [{"id": login.pk, "evaluation": "met", "evidence": "Usage report"}]},
    )
    refused = _act(world, "s1_am", phase.pk, "decide", {"decision": "expand"})
    assert refused.status_code == 400
    message = refused.json()["criteria"][0]
    assert '"Staff trained"' in message and '"Feedback"' in message
    assert "Weekly log-ins" not in message
    assert refused.json()["unevaluated_criteria"] == [training.pk, feedback.pk]
    assert TrialPhase.objects.get(pk=phase.pk).decision == ""
    assert Partnership.objects.get(pk=world.p_a1.pk).stage == "pilot"
    assert not StageChange.objects.filter(partnership=world.p_a1, to_stage="expansion").exists()


def test_an_extension_needs_a_later_end_date_and_the_phase_stays_open_for_its_decision(world):
    _at_stage(world.p_a1, "pilot")
    phase = world.ph_a1
    current = phase.end_date
    url_body = {"decision": "extend", "notes": "Snow closures in February"}
    missing = _act(world, "s1_am", phase.pk, "decide", url_body)
    assert missing.status_code == 400 and "end_date" in missing.json()
    for earlier in (current, current - timedelta(days=1)):
        refused = _act(world, "s1_am", phase.pk, "decide", {**url_body, "end_date": str(earlier)})
        assert refused.status_code == 400
        assert str(current) in refused.json()["end_date"][0]
    new_end = current + timedelta(weeks=3)
    extended = _act(world, "s1_am", phase.pk, "decide", {**url_body, "end_date": str(new_end)})
    assert extended.status_code == 200, extended.json()
    body = extended.json()
    assert body["end_date"] == str(new_end)
    assert body["decision"] == "extend"
    assert body["partnership_stage"] == "pilot"
    assert f"Extended from {current} to {new_end}" in body["decision_notes"]
    assert "Snow closures in February" in body["decision_notes"]
    # An end date goes only with an extension.
    stray = _act(world, "s1_am", phase.pk, "decide", {"decision": "stop", "end_date": "2030-01-01"})
    assert stray.status_code == 400 and "end_date" in stray.json()

    # At the new end, the phase gets its decision; the extension stays on record.
    _criteria(phase, "Weekly use")
    _rate_all(world, phase)
    expanded = _act(world, "s1_am", phase.pk, "decide", {"decision": "expand", "notes": "Go"})
    assert expanded.status_code == 200
    notes = expanded.json()["decision_notes"]
    assert notes.startswith("Go\n\n") and f"Extended from {current} to {new_end}" in notes
    assert expanded.json()["partnership_stage"] == "expansion"


def test_stopping_a_pilot_ends_the_partnership(world):
    _at_stage(world.p_a1, "pilot")
    response = _act(
        world,
        "s1_am",
        world.ph_a1.pk,
        "decide",
        {"decision": "stop", "notes": "The school chose another product."},
    )
    assert response.status_code == 200, response.json()
    assert response.json()["decision"] == "stop"
    assert response.json()["partnership_stage"] == "ended"
    change = StageChange.objects.filter(partnership=world.p_a1).last()
    assert (change.from_stage, change.to_stage) == ("pilot", "ended")
    assert "stop" in change.reason and "another product" in change.reason


def test_a_paused_pilot_may_stop_or_extend_but_not_expand(world):
    _at_stage(world.p_a1, "paused", before_pause="pilot")
    _criteria(world.ph_a1, "Weekly use")
    _rate_all(world, world.ph_a1)
    refused = _act(world, "s1_am", world.ph_a1.pk, "decide", {"decision": "expand"})
    assert refused.status_code == 400
    assert "paused" in refused.json()["decision"][0]
    stopped = _act(world, "s1_am", world.ph_a1.pk, "decide", {"decision": "stop"})
    assert stopped.status_code == 200
    assert stopped.json()["partnership_stage"] == "ended"


def test_a_phase_of_another_stage_cannot_move_the_partnership(world):
    # The partnership has moved on to expansion; its old pilot phase cannot end it.
    _at_stage(world.p_a1, "expansion")
    response = _act(world, "s1_am", world.ph_a1.pk, "decide", {"decision": "stop"})
    assert response.status_code == 400
    assert "expansion" in response.json()["decision"][0]
    assert Partnership.objects.get(pk=world.p_a1.pk).stage == "expansion"
    assert TrialPhase.objects.get(pk=world.ph_a1.pk).decision == ""


def test_a_refused_stage_move_leaves_the_phase_undecided(world, monkeypatch):
    _at_stage(world.p_a1, "pilot")

    def refuse(**kwargs: Any) -> None:
        raise services.StageRefused("Refused for the test.", [])

    monkeypatch.setattr(services, "partnership_transition", refuse)
    response = _act(world, "s1_am", world.ph_a1.pk, "decide", {"decision": "stop"})
    assert response.status_code == 400
    assert response.json()["stage"] == ["Refused for the test."]
    phase = TrialPhase.objects.get(pk=world.ph_a1.pk)
    assert (phase.decision, phase.decided_at, phase.decided_by) == ("", None, None)


def test_every_evaluation_needs_evidence_and_a_criterion_of_this_phase(world):
    _at_stage(world.p_a1, "pilot")
    [own] = _criteria(world.ph_a1, "Weekly use")
    [foreign] = _criteria(world.ph_a2, "Another supplier's criterion")

    def evaluate(items: list[dict[str, Any]]) -> Any:
        return _act(world, "s1_am", world.ph_a1.pk, "evaluate", {"criteria": items})

    no_evidence = evaluate([{"id": own.pk, "evaluation": "met", "evidence": "  "}])
    assert no_evidence.status_code == 400
    [message] = no_evidence.json()["criteria"]["0"]["evidence"]
    assert "needs its evidence" in message
    not_ours = evaluate([{"id": foreign.pk, "evaluation": "met", "evidence": "x"}])
    assert not_ours.status_code == 400
    assert str(foreign.pk) in not_ours.json()["criteria"][0]
    twice = evaluate([{"id": own.pk, "evaluation": "met", "evidence": "x"}] * 2)
    assert twice.status_code == 400 and "criteria" in twice.json()
    bad_rating = evaluate([{"id": own.pk, "evaluation": "smashed_it", "evidence": "x"}])
    assert bad_rating.status_code == 400
    nothing = _act(world, "s1_am", world.ph_a1.pk, "evaluate", {})
    assert nothing.status_code == 400 and "criteria" in nothing.json()
    own.refresh_from_db()
    foreign.refresh_from_db()
    assert (own.evaluation, foreign.evaluation) == ("", "")
    # Until the decision, a criterion may be re-rated as evidence comes in.
    assert (
        evaluate([{"id": own.pk, "evaluation": "partly_met", "evidence": "Wk 4"}]).status_code
        == 200
    )
    assert evaluate([{"id": own.pk, "evaluation": "met", "evidence": "Wk 8"}]).status_code == 200
    own.refresh_from_db()
    assert (own.evaluation, own.evidence) == ("met", "Wk 8")


def test_criteria_are_added_through_patch_and_rated_only_through_evaluate(world):
    [first] = _criteria(world.ph_a1, "Weekly use")
    response = world.client("s1_am").patch(
        f"{PHASES}{world.ph_a1.pk}/",
        {"criteria": [{"description": "Staff confident", "target": "4/5", "evaluation": "met"}]},
    )
    assert response.status_code == 200, response.json()
    criteria = response.json()["criteria"]
    assert [c["description"] for c in criteria] == ["Weekly use", "Staff confident"]
    assert criteria[0]["id"] == first.pk
    assert criteria[1]["target"] == "4/5"
    assert [c["evaluation"] for c in criteria] == ["", ""]


def test_school_staff_and_support_agents_may_not_evaluate_or_decide(world):
    _at_stage(world.p_a1, "pilot")
    [criterion] = _criteria(world.ph_a1, "Weekly use")
    rating = {"criteria": [{"id": criterion.pk, "evaluation": "met", "evidence": "x"}]}
    for user in ("a_lead", "a_teacher", "trust_lead", "s1_agent"):
        assert _act(world, user, world.ph_a1.pk, "evaluate", rating).status_code == 403, user
        decided = _act(world, user, world.ph_a1.pk, "decide", {"decision": "stop"})
        assert decided.status_code == 403, user
    criterion.refresh_from_db()
    assert criterion.evaluation == ""
    assert TrialPhase.objects.get(pk=world.ph_a1.pk).decision == ""
    assert Partnership.objects.get(pk=world.p_a1.pk).stage == "pilot"


def test_another_supplier_cannot_find_the_phase(world):
    _at_stage(world.p_a1, "pilot")
    [criterion] = _criteria(world.ph_a1, "Weekly use")
    rating = {"criteria": [{"id": criterion.pk, "evaluation": "met", "evidence": "x"}]}
    for user in ("s2_admin", "s2_am", "b_lead"):
        assert _act(world, user, world.ph_a1.pk, "evaluate", rating).status_code == 404, user
        decided = _act(world, user, world.ph_a1.pk, "decide", {"decision": "stop"})
        assert decided.status_code == 404, user
    assert Partnership.objects.get(pk=world.p_a1.pk).stage == "pilot"


# --- Expanding although criteria were not met (item 21) -------------------------------------


def _rated(phase: TrialPhase, **ratings: str) -> None:
    for description, evaluation in ratings.items():
        SuccessCriterion.objects.create(
            phase=phase, description=description, evaluation=evaluation, evidence="Observed"
        )


def test_expanding_with_a_criterion_not_met_needs_a_reason_the_school_then_reads(world):
    phase = world.ph_a1
    _at_stage(world.p_a1, "pilot")
    _rated(phase, weekly_use="met", homework_online="not_met")

    refused = _act(world, "s1_am", phase.pk, "decide", {"decision": "expand"})

    assert refused.status_code == 400
    message = str(refused.json()["unmet_criteria_reason"])
    assert '1 of the success criteria was rated not met ("homework_online")' in message
    phase.refresh_from_db()
    assert phase.decision == ""
    assert Partnership.objects.get(pk=world.p_a1.pk).stage == "pilot"
    blank = _act(
        world, "s1_am", phase.pk, "decide", {"decision": "expand", "unmet_criteria_reason": "  "}
    )
    assert "unmet_criteria_reason" in blank.json()

    reason = "Homework needs the parent app, which arrives with the expansion."
    expanded = _act(
        world,
        "s1_am",
        phase.pk,
        "decide",
        {"decision": "expand", "unmet_criteria_reason": reason},
    )

    assert expanded.status_code == 200, expanded.json()
    assert expanded.json()["unmet_criteria_reason"] == reason
    assert Partnership.objects.get(pk=world.p_a1.pk).stage == "expansion"
    move = StageChange.objects.filter(partnership=world.p_a1, to_stage="expansion").get()
    assert reason in move.reason
    seen = world.client("a_lead").get(f"{PHASES}{phase.pk}/").json()
    assert seen["unmet_criteria_reason"] == reason


def test_expanding_with_every_criterion_met_or_partly_met_needs_no_reason(world):
    _at_stage(world.p_a1, "pilot")
    _rated(world.ph_a1, weekly_use="met", confidence="partly_met")

    response = _act(world, "s1_am", world.ph_a1.pk, "decide", {"decision": "expand"})

    assert response.status_code == 200, response.json()
    assert response.json()["unmet_criteria_reason"] == ""


def test_the_unmet_criteria_reason_is_refused_for_other_decisions_and_by_patch(world):
    _at_stage(world.p_a1, "pilot")
    _rated(world.ph_a1, weekly_use="not_met")
    body = {"decision": "continue", "unmet_criteria_reason": "Because"}

    refused = _act(world, "s1_am", world.ph_a1.pk, "decide", body)

    assert refused.status_code == 400
    assert "Only an expansion" in str(refused.json()["unmet_criteria_reason"])
    patched = world.client("s1_am").patch(
        f"{PHASES}{world.ph_a1.pk}/", {"unmet_criteria_reason": "Sneaked in"}, format="json"
    )
    assert patched.status_code == 200  # read-only there: ignored
    assert TrialPhase.objects.get(pk=world.ph_a1.pk).unmet_criteria_reason == ""
