"""The school's page of trial phases: every supplier's phases at the school, each
criterion's rating and evidence, and the decision, with the reason when a phase expanded
although criteria were not met. Read-only; other schools are 404."""

from __future__ import annotations

from typing import Any

from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils.html import escape

from accounts import services
from accounts.models import Partnership, SuccessCriterion, TrialPhase
from accounts.tests import factories as f

PAGE = "/school/phases/"
REASON = "Homework needs the parent app, which only comes with the expansion."


def _expand_with_an_unmet_criterion(world: Any) -> TrialPhase:
    phase = world.ph_a1
    Partnership.objects.filter(pk=world.p_a1.pk).update(stage="pilot")
    SuccessCriterion.objects.create(
        phase=phase, description="Used weekly", evaluation="met", evidence="Usage report"
    )
    SuccessCriterion.objects.create(
        phase=phase,
        description="Homework set online",
        evaluation="not_met",
        evidence="2 of 6 classes",
    )
    return services.trial_phase_decide(
        phase=phase, by=world.s1_am, decision="expand", unmet_criteria_reason=REASON
    )


def test_the_school_lead_reads_why_a_pilot_expanded_with_a_criterion_not_met(
    world: Any, login: Any
) -> None:
    _expand_with_an_unmet_criterion(world)

    response = login("a_lead").get(PAGE)

    assert response.status_code == 200
    html = response.content.decode()
    assert "Acme Learning: pilot phase" in html
    assert "Brightboard: pilot phase" in html  # every supplier's phases at the school
    assert "Expanded although 1 criterion was not met" in html
    assert "Not met: Homework set online." in html
    assert escape(REASON) in html
    assert "2 of 6 classes" in html  # the evidence behind the rating
    assert html.count("Brightboard: pilot phase") == 1  # not its phase at Beacon Academy
    assert "Beacon Academy" not in html


def test_a_phase_that_expanded_on_every_criterion_met_shows_no_reason(
    world: Any, login: Any
) -> None:
    Partnership.objects.filter(pk=world.p_a1.pk).update(stage="pilot")
    SuccessCriterion.objects.create(
        phase=world.ph_a1, description="Used weekly", evaluation="met", evidence="Report"
    )
    services.trial_phase_decide(phase=world.ph_a1, by=world.s1_am, decision="expand")

    html = login("a_lead").get(PAGE).content.decode()

    assert "Expand on" in html
    assert "not met" not in html


def test_the_trust_lead_reads_each_trust_school_and_no_other(world: Any, login: Any) -> None:
    _expand_with_an_unmet_criterion(world)
    client = login("trust_lead")

    own = client.get(PAGE, {"school": world.school_a.pk})
    other = client.get(PAGE, {"school": world.school_b.pk})

    assert own.status_code == 200 and escape(REASON) in own.content.decode()
    assert other.status_code == 404


def test_only_school_and_trust_leads_open_the_page(world: Any, login: Any) -> None:
    assert login("a_teacher").get(PAGE).status_code == 403
    assert login("s1_am").get(PAGE).status_code == 403
    assert login(None).get(PAGE).status_code == 302


def test_the_page_costs_the_same_queries_for_one_phase_and_for_six(world: Any, login: Any) -> None:
    client = login("a_lead")

    def queries() -> int:
        with CaptureQueriesContext(connection) as ctx:
            assert client.get(PAGE).status_code == 200
        return len(ctx)

    few = queries()
    for _ in range(5):
        phase = f.TrialPhaseFactory(partnership=world.p_a1)
        phase.cohort.set([world.c_a_teacher])
        SuccessCriterion.objects.create(phase=phase, description="x", evaluation="met")
    assert queries() == few


def test_the_supplier_page_asks_for_the_reason_before_expanding(world: Any, login: Any) -> None:
    phase = world.ph_a1
    Partnership.objects.filter(pk=world.p_a1.pk).update(stage="pilot")
    SuccessCriterion.objects.create(
        phase=phase, description="Homework set online", evaluation="not_met", evidence="2 of 6"
    )
    client = login("s1_am")
    url = f"/partnerships/{phase.partnership_id}/phases/{phase.pk}/decide/"

    page = client.get(f"/partnerships/{phase.partnership_id}/phases/{phase.pk}/")
    assert "Why expand although criteria were not met" in page.content.decode()
    refused = client.post(url, {"decision": "expand"})
    assert refused.status_code == 422
    assert "say why the phase expands anyway" in refused.content.decode()
    assert TrialPhase.objects.get(pk=phase.pk).decision == ""

    done = client.post(url, {"decision": "expand", "unmet_criteria_reason": REASON})

    assert done.status_code == 302
    assert TrialPhase.objects.get(pk=phase.pk).unmet_criteria_reason == REASON
    assert escape(REASON) in client.get(done["Location"]).content.decode()
