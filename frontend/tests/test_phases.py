"""Trial phases on the account manager's pages: planning a phase with its cohort and success
criteria, evaluating them, and deciding (continue, extend, expand, stop). The services
decide the rules; a refusal is a form error (422) or a 403, never a 500, and another
supplier's phase is 404 on every route."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.models import Partnership, StageChange, SuccessCriterion, TrialPhase
from accounts.tests import factories as f


def _url(phase: TrialPhase, action: str = "") -> str:
    base = f"/partnerships/{phase.partnership_id}/phases/{phase.pk}/"
    return f"{base}{action}/" if action else base


def _in_stage(partnership: Partnership, stage: str) -> None:
    Partnership.objects.filter(pk=partnership.pk).update(stage=stage)


def _criteria(phase: TrialPhase, *descriptions: str) -> list[SuccessCriterion]:
    return [
        SuccessCriterion.objects.create(phase=phase, description=d, target="4 of 5")
        for d in descriptions
    ]


def _snapshot(phase: TrialPhase) -> tuple:
    phase.refresh_from_db()
    p = Partnership.objects.get(pk=phase.partnership_id)
    return (
        phase.decision,
        phase.decided_at,
        phase.end_date,
        phase.impact,
        p.stage,
        StageChange.objects.filter(partnership=p).count(),
        sorted(phase.criteria.values_list("id", "evaluation", "evidence")),
    )


# --- The partnership page -------------------------------------------------------------------


def test_the_partnership_page_lists_its_phases_and_links_to_each(world, login):
    phase = world.ph_a1
    _criteria(phase, "Homework set weekly", "Logins up")
    SuccessCriterion.objects.filter(phase=phase, description="Logins up").update(
        evaluation="met", evidence="Figures"
    )
    html = login("s1_am").get(f"/partnerships/{world.p_a1.pk}/").content.decode()
    assert "Trial phases" in html
    assert f'href="{_url(phase)}"' in html
    assert "1 of 2" in html  # criteria evaluated of total
    assert "1 person" in html and "To decide" in html
    assert f'href="/partnerships/{world.p_a1.pk}/phases/new/"' in html
    # A support agent sees the phases but is not offered planning.
    agent = login("s1_agent").get(f"/partnerships/{world.p_a1.pk}/").content.decode()
    assert f'href="{_url(phase)}"' in agent and "Plan a trial phase" not in agent


def test_a_big_pilot_cohort_is_flagged_on_the_partnership_page(world, login, settings):
    settings.PILOT_COHORT_WARN_SIZE = 1
    world.ph_a1.cohort.add(world.c_a_it)
    html = login("s1_am").get(f"/partnerships/{world.p_a1.pk}/").content.decode()
    assert "2 people" in html and "more than the 1 a pilot should have" in html


# --- Planning a phase ------------------------------------------------------------------------


def test_planning_a_phase_with_criteria_and_cohort(world, login, settings):
    settings.PILOT_COHORT_WARN_SIZE = 1
    client = login("s1_am")
    url = f"/partnerships/{world.p_a1.pk}/phases/new/"
    page = client.get(url).content.decode()
    # The cohort offers the school's staff the user may see, and no one else.
    assert str(world.c_a_teacher) in page and str(world.c_a_it) in page
    assert str(world.c_a_dsl) not in page and str(world.c_a_unlinked) not in page
    token = re.search(r'name="token" value="([^"]+)"', page).group(1)
    start = timezone.localdate()
    response = client.post(
        url,
        {
            "token": token,
            "kind": "pilot",
            "start_date": start.isoformat(),
            "end_date": (start + timedelta(days=42)).isoformat(),
            "intent": "Homework online in Year 5",
            "implementation": "Two teachers, weekly check-ins",
            "cohort": [world.c_a_teacher.pk, world.c_a_it.pk],
            "criteria": "Homework set weekly | 2 of 2 teachers\n\nPupils log in | 80% by half term\n"
            "Parents informed",
        },
    )
    assert response.status_code == 302
    phase = TrialPhase.objects.get(intent="Homework online in Year 5")
    assert response["Location"] == _url(phase)
    assert set(phase.cohort.all()) == {world.c_a_teacher, world.c_a_it}
    assert list(phase.criteria.values_list("description", "target")) == [
        ("Homework set weekly", "2 of 2 teachers"),
        ("Pupils log in", "80% by half term"),
        ("Parents informed", ""),
    ]
    after = client.get(response["Location"]).content.decode()
    assert "Pilot phase planned." in after
    # The same form sent again (a double click): the phase it planned, not a second one.
    again = client.post(
        url,
        {
            "token": token,
            "kind": "pilot",
            "start_date": start.isoformat(),
            "end_date": (start + timedelta(days=42)).isoformat(),
        },
    )
    assert again.status_code == 302 and again["Location"] == _url(phase)
    assert TrialPhase.objects.filter(intent="Homework online in Year 5").count() == 1
    assert "more than the 1 a pilot should have" in after  # the warning, after the save
    assert "Homework set weekly" in after and "80% by half term" in after


@pytest.mark.parametrize(
    ("data", "field_message"),
    [
        ({"end_date": "2020-01-01"}, "The phase ends before it starts."),
        ({"start_date": "not a date"}, "Enter a valid date."),
        ({"kind": "forever"}, "Select a valid choice."),
        ({"criteria": "Fine | ok\n | only a target"}, "Line 2: write what success looks like"),
        ({"criteria": "a | b | c"}, "Line 1: one “|” per line"),
        ({"criteria": "x" * 301}, "Line 1: the description has 301 characters; keep it to 300."),
        ({"cohort": ["nonsense"]}, "is not a valid value"),
    ],
)
def test_bad_input_on_the_plan_page_is_a_field_message(world, login, data, field_message):
    before = TrialPhase.objects.count()
    start = timezone.localdate()
    post = {
        "kind": "pilot",
        "start_date": start.isoformat(),
        "end_date": (start + timedelta(days=30)).isoformat(),
        **data,
    }
    response = login("s1_am").post(f"/partnerships/{world.p_a1.pk}/phases/new/", post)
    assert response.status_code == 422
    html = response.content.decode()
    assert field_message in html and "Please correct the problems below." in html
    assert TrialPhase.objects.count() == before


def test_the_cohort_cannot_include_staff_the_user_may_not_see(world, login):
    start = timezone.localdate()
    post = {
        "kind": "pilot",
        "start_date": start.isoformat(),
        "end_date": (start + timedelta(days=30)).isoformat(),
    }
    url = f"/partnerships/{world.p_a1.pk}/phases/new/"
    for contact in ("c_a_dsl", "c_a_unlinked", "c_b_teacher"):  # s2's, unlinked, other school
        response = login("s1_am").post(url, {**post, "cohort": [world.contacts[contact].pk]})
        assert response.status_code == 422
        assert "Select a valid choice" in response.content.decode()
    assert not TrialPhase.objects.filter(partnership=world.p_a1).exclude(pk=world.ph_a1.pk)


def test_only_managers_plan_a_phase(world, login):
    url = f"/partnerships/{world.p_a1.pk}/phases/new/"
    start = timezone.localdate()
    post = {"kind": "pilot", "start_date": start.isoformat(), "end_date": start.isoformat()}
    assert login("s1_agent").get(url).status_code == 403
    assert login("s1_agent").post(url, post).status_code == 403
    assert login("s1_admin").get(url).status_code == 200
    assert login("s2_am").get(url).status_code == 404
    assert login("s2_am").post(url, post).status_code == 404
    assert login("a_lead").get(url).status_code == 403  # not a supplier page
    assert TrialPhase.objects.filter(partnership=world.p_a1).count() == 1


# --- The phase page: evaluating -------------------------------------------------------------


def test_the_phase_page_shows_the_phase_and_its_criteria(world, login):
    phase = world.ph_a1
    TrialPhase.objects.filter(pk=phase.pk).update(
        intent="Try it in Year 5", implementation="Weekly coaching"
    )
    c = _criteria(phase, "Homework set weekly")[0]
    html = login("s1_am").get(_url(phase)).content.decode()
    for text in ("Try it in Year 5", "Weekly coaching", "Homework set weekly", "4 of 5"):
        assert text in html, text
    assert str(world.c_a_teacher) in html  # the cohort
    assert f'name="c{c.pk}_evaluation"' in html and f'name="c{c.pk}_evidence"' in html
    assert f'action="{_url(phase, "evaluate")}"' in html
    assert f'action="{_url(phase, "decide")}"' in html
    assert '<label for="id_impact">' in html


def test_evaluating_criteria_and_the_impact(world, login):
    phase = world.ph_a1
    homework, logins = _criteria(phase, "Homework set weekly", "Logins up")
    client = login("s1_am")
    response = client.post(
        _url(phase, "evaluate"),
        {
            f"c{homework.pk}_evaluation": "met",
            f"c{homework.pk}_evidence": "All five teachers, every week",
            f"c{logins.pk}_evaluation": "",
            f"c{logins.pk}_evidence": "",
            "impact": "Homework returned on time doubled",
        },
    )
    assert response.status_code == 302 and response["Location"] == _url(phase)
    homework.refresh_from_db()
    logins.refresh_from_db()
    phase.refresh_from_db()
    assert (homework.evaluation, homework.evidence) == ("met", "All five teachers, every week")
    assert logins.evaluation == ""
    assert phase.impact == "Homework returned on time doubled"
    html = client.get(_url(phase)).content.decode()
    assert "Evaluation saved." in html and "1 of 2 evaluated" in html
    # Re-evaluating later; an evaluation is revised, never withdrawn.
    revised = client.post(
        _url(phase, "evaluate"),
        {
            f"c{homework.pk}_evaluation": "partly_met",
            f"c{homework.pk}_evidence": "Four of five",
            "impact": phase.impact,
        },
    )
    assert revised.status_code == 302
    homework.refresh_from_db()
    assert homework.evaluation == "partly_met"
    withdrawn = client.post(
        _url(phase, "evaluate"),
        {f"c{homework.pk}_evaluation": "", f"c{homework.pk}_evidence": "x"},
    )
    assert withdrawn.status_code == 422 and b"This field is required." in withdrawn.content


def test_bad_evaluations_are_field_messages_and_change_nothing(world, login):
    phase = world.ph_a1
    (c,) = _criteria(phase, "Homework set weekly")
    client = login("s1_am")
    before = _snapshot(phase)
    no_evidence = client.post(
        _url(phase, "evaluate"), {f"c{c.pk}_evaluation": "met", f"c{c.pk}_evidence": " "}
    )
    assert no_evidence.status_code == 422
    assert "An evaluation needs its evidence" in no_evidence.content.decode()
    no_rating = client.post(
        _url(phase, "evaluate"), {f"c{c.pk}_evaluation": "", f"c{c.pk}_evidence": "Figures"}
    )
    assert no_rating.status_code == 422
    assert "Choose how far it was met" in no_rating.content.decode()
    unknown = client.post(
        _url(phase, "evaluate"), {f"c{c.pk}_evaluation": "brilliant", f"c{c.pk}_evidence": "x"}
    )
    assert unknown.status_code == 422 and b"Select a valid choice." in unknown.content
    nothing = client.post(_url(phase, "evaluate"), {})  # the service's refusal
    assert nothing.status_code == 422
    assert "Evaluate at least one criterion, or give the impact." in nothing.content.decode()
    assert _snapshot(phase) == before


# --- The phase page: deciding --------------------------------------------------------------


def test_expand_is_refused_while_a_criterion_is_unevaluated(world, login):
    phase = world.ph_a1
    _in_stage(world.p_a1, "pilot")
    done, open_ = _criteria(phase, "Homework set weekly", "Pupils log in")
    SuccessCriterion.objects.filter(pk=done.pk).update(evaluation="met", evidence="Yes")
    before = _snapshot(phase)
    response = login("s1_am").post(_url(phase, "decide"), {"decision": "expand"})
    assert response.status_code == 422
    html = response.content.decode()
    assert "Evaluate every success criterion before expanding." in html
    unevaluated = html.split("Not yet evaluated:")[1].split("</li>")[0]
    assert "Pupils log in" in unevaluated and f"(id {open_.pk})" in unevaluated
    assert "Homework set weekly" not in unevaluated
    assert _snapshot(phase) == before


def test_expand_after_evaluating_moves_the_partnership_on(world, login):
    phase = world.ph_a1
    _in_stage(world.p_a1, "pilot")
    (c,) = _criteria(phase, "Homework set weekly")
    client = login("s1_am")
    evaluated = client.post(
        _url(phase, "evaluate"),
        {f"c{c.pk}_evaluation": "met", f"c{c.pk}_evidence": "Every week since October"},
    )
    assert evaluated.status_code == 302
    response = client.post(
        _url(phase, "decide"), {"decision": "expand", "notes": "Teachers asked for it"}
    )
    assert response.status_code == 302 and response["Location"] == _url(phase)
    world.p_a1.refresh_from_db()
    phase.refresh_from_db()
    assert world.p_a1.stage == "expansion"
    assert (phase.decision, phase.decided_by) == ("expand", world.s1_am)
    html = client.get(_url(phase)).content.decode()
    assert "The partnership moved to expansion." in html
    assert "Teachers asked for it" in html and "Decided" in html


def test_extend_needs_a_later_end_date_and_leaves_the_phase_open(world, login):
    phase = world.ph_a1
    _in_stage(world.p_a1, "pilot")
    client = login("s1_am")
    url = _url(phase, "decide")
    before = _snapshot(phase)
    missing = client.post(url, {"decision": "extend"})
    assert missing.status_code == 422
    assert "Extending needs the new end date." in missing.content.decode()
    earlier = client.post(url, {"decision": "extend", "end_date": phase.end_date.isoformat()})
    assert earlier.status_code == 422
    assert f"Extend to a date after the current end, {phase.end_date}." in earlier.content.decode()
    garbage = client.post(url, {"decision": "extend", "end_date": "next week"})
    assert garbage.status_code == 422 and b"Enter a valid date." in garbage.content
    not_extending = client.post(
        url, {"decision": "continue", "end_date": (phase.end_date + timedelta(1)).isoformat()}
    )
    assert not_extending.status_code == 422
    assert "Only an extension changes the end date." in not_extending.content.decode()
    assert _snapshot(phase) == before
    later = phase.end_date + timedelta(days=28)
    ok = client.post(url, {"decision": "extend", "end_date": later.isoformat(), "notes": "Ofsted"})
    assert ok.status_code == 302
    phase.refresh_from_db()
    assert (phase.decision, phase.end_date) == ("extend", later)
    html = client.get(_url(phase)).content.decode()
    assert "is extended to" in html
    assert f'action="{url}"' in html  # still open: decided again at the new end


def test_stop_ends_the_partnership(world, login):
    phase = world.ph_a1
    _in_stage(world.p_a1, "pilot")
    response = login("s1_am").post(
        _url(phase, "decide"), {"decision": "stop", "notes": "The school chose another product"}
    )
    assert response.status_code == 302
    world.p_a1.refresh_from_db()
    assert world.p_a1.stage == "ended"
    assert StageChange.objects.filter(partnership=world.p_a1, to_stage="ended").exists()


def test_a_decision_in_the_wrong_stage_is_a_form_error(world, login):
    phase = world.ph_a1  # p_a1 is still an enquiry
    before = _snapshot(phase)
    response = login("s1_am").post(_url(phase, "decide"), {"decision": "continue"})
    assert response.status_code == 422
    assert "decided while the partnership is in its pilot stage" in response.content.decode()
    assert _snapshot(phase) == before
    assert login("s1_am").post(_url(phase, "decide"), {}).status_code == 422
    assert login("s1_am").post(_url(phase, "decide"), {"decision": "whatever"}).status_code == 422


def test_a_whole_school_phase_is_not_offered_expand(world, login):
    _in_stage(world.p_a1, "whole_school")
    phase = f.TrialPhaseFactory(partnership=world.p_a1, kind="whole_school")
    html = login("s1_am").get(_url(phase)).content.decode()
    assert 'value="continue"' in html and 'value="expand"' not in html
    refused = login("s1_am").post(_url(phase, "decide"), {"decision": "expand"})
    assert refused.status_code == 422
    phase.refresh_from_db()
    assert phase.decision == ""


def test_a_decided_phase_shows_the_record_and_refuses_posts(world, login):
    phase = world.ph_a1
    _in_stage(world.p_a1, "pilot")
    (c,) = _criteria(phase, "Homework set weekly")
    client = login("s1_am")
    assert client.post(_url(phase, "decide"), {"decision": "continue"}).status_code == 302
    html = client.get(_url(phase)).content.decode()
    assert "Decision" in html and "Continue on" in html
    assert '<form method="post" action="/partnerships' not in html
    assert 'name="decision"' not in html and f'name="c{c.pk}_evaluation"' not in html
    before = _snapshot(phase)
    again = client.post(_url(phase, "decide"), {"decision": "stop"})
    assert again.status_code == 422
    assert "This phase was already decided (Continue" in again.content.decode()
    evaluate = client.post(
        _url(phase, "evaluate"), {f"c{c.pk}_evaluation": "met", f"c{c.pk}_evidence": "Late"}
    )
    assert evaluate.status_code == 422
    assert "This phase was already decided" in evaluate.content.decode()
    assert client.post(_url(phase, "evaluate"), {}).status_code == 422
    assert _snapshot(phase) == before


# --- Who may see and write -------------------------------------------------------------------


def test_another_suppliers_user_gets_404_for_the_phase_and_its_posts(world, login):
    phase = world.ph_a1
    (c,) = _criteria(phase, "Homework set weekly")
    before = _snapshot(phase)
    for user in ("s2_am", "s2_admin", "s2_agent"):
        client = login(user)
        assert client.get(_url(phase)).status_code == 404
        assert client.post(_url(phase, "decide"), {"decision": "stop"}).status_code == 404
        evaluation = {f"c{c.pk}_evaluation": "met", f"c{c.pk}_evidence": "x"}
        assert client.post(_url(phase, "evaluate"), evaluation).status_code == 404
    # Their own partnership in the URL does not reach s1's phase either.
    wrong = f"/partnerships/{world.p_a2.pk}/phases/{phase.pk}/"
    assert login("s2_am").get(wrong).status_code == 404
    assert login("s2_am").post(f"{wrong}decide/", {"decision": "stop"}).status_code == 404
    # Nor does s1's own partnership reach s2's phase, nor a missing one.
    assert (
        login("s1_am").get(f"/partnerships/{world.p_a1.pk}/phases/{world.ph_a2.pk}/").status_code
        == 404
    )
    assert login("s1_am").get(f"/partnerships/{world.p_a1.pk}/phases/999999/").status_code == 404
    assert _snapshot(phase) == before


def test_an_agent_sees_the_phase_read_only_and_cannot_write(world, login):
    phase = world.ph_a1
    _in_stage(world.p_a1, "pilot")
    (c,) = _criteria(phase, "Homework set weekly")
    client = login("s1_agent")
    html = client.get(_url(phase)).content.decode()
    assert "Homework set weekly" in html
    assert 'name="decision"' not in html and f'name="c{c.pk}_evaluation"' not in html
    assert "Only the supplier's admins and account managers" in html
    before = _snapshot(phase)
    assert client.post(_url(phase, "decide"), {"decision": "stop"}).status_code == 403
    evaluation = {f"c{c.pk}_evaluation": "met", f"c{c.pk}_evidence": "x"}
    assert client.post(_url(phase, "evaluate"), evaluation).status_code == 403
    assert _snapshot(phase) == before
    assert login("a_lead").get(_url(phase)).status_code == 403  # a supplier page
    assert login(None).get(_url(phase)).status_code == 302  # to sign in


def test_the_write_routes_answer_405_to_a_get(world, login):
    assert login("s1_am").get(_url(world.ph_a1, "decide")).status_code == 405
    assert login("s1_am").get(_url(world.ph_a1, "evaluate")).status_code == 405
