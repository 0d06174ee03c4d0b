"""Rules become nudge rows once per (rule, contact, occurrence), at school times."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import time_machine

from accounts.models import ClosureDay, Term
from accounts.tests import factories as f
from nudges.models import Nudge, NudgeRule
from nudges.planner import plan
from tickets.services import ticket_transition

LONDON = ZoneInfo("Europe/London")


def at(*args: int) -> datetime:
    return datetime(*args, tzinfo=LONDON)


def _rule(world: Any, **fields: Any) -> NudgeRule:
    defaults = {
        "supplier": world.s1,
        "partnership": world.p_a1,
        "template": world.tpl_s1,
        "name": "r",
        "trigger": "cadence",
        "every_n_school_weeks": 2,
        "audience_tags": ",it_lead,teacher,",
    }
    return NudgeRule.objects.create(**{**defaults, **fields})


def test_cadence_nudges_go_every_n_school_weeks_at_the_send_window(world: Any) -> None:
    with time_machine.travel(at(2026, 11, 2, 9), tick=False):
        rule = _rule(world, created_at=at(2026, 11, 2, 9))
        plan(rules=[rule])
    due = sorted(
        {(n.occurrence, n.due_at.astimezone(LONDON)) for n in Nudge.objects.filter(rule=rule)}
    )
    # Mon 2 Nov (its first school week), then two school weeks on: Mon 16 Nov, at 07:30.
    assert due == [
        ("cadence:2026-W45", at(2026, 11, 2, 9)),  # the window is already open: now
        ("cadence:2026-W47", at(2026, 11, 16, 7, 30)),
    ]
    contacts = set(Nudge.objects.filter(rule=rule).values_list("contact_id", flat=True))
    assert contacts == {world.c_a_it.pk, world.c_a_teacher.pk}  # linked, with the tags


def test_holiday_weeks_are_not_school_weeks(world: Any) -> None:
    Term.objects.create(
        school=world.school_a, name="Autumn", starts_on=date(2026, 9, 2), ends_on=date(2026, 12, 18)
    )
    Term.objects.create(
        school=world.school_a, name="Spring", starts_on=date(2027, 1, 5), ends_on=date(2027, 3, 26)
    )
    ClosureDay.objects.create(school=world.school_a, date=date(2026, 12, 14))  # INSET Monday
    with time_machine.travel(at(2026, 12, 7, 8), tick=False):
        rule = _rule(
            world, created_at=at(2026, 12, 7, 8), every_n_school_weeks=1, audience_tags=",it_lead,"
        )
        from django.test import override_settings

        with override_settings(NUDGE_PLAN_HORIZON_DAYS=40):
            plan(rules=[rule])
    due = [n.due_at.astimezone(LONDON) for n in Nudge.objects.filter(rule=rule).order_by("due_at")]
    assert due == [
        at(2026, 12, 7, 8),  # this week, window open now
        at(2026, 12, 15, 7, 30),  # Monday is an INSET day: Tuesday
        at(2027, 1, 5, 7, 30),  # two holiday weeks skipped: the first day of spring term
        at(2027, 1, 11, 7, 30),
    ]


def test_running_the_planner_again_creates_nothing_new(world: Any) -> None:
    rule = _rule(world)
    first = plan(rules=[rule])
    assert first > 0
    assert plan(rules=[rule]) == 0
    assert plan() >= 0
    assert Nudge.objects.filter(rule=rule).count() == first


def test_phase_end_nudges_go_n_days_before_to_the_cohort(world: Any) -> None:
    phase = world.ph_a1
    phase.start_date, phase.end_date = date(2026, 11, 2), date(2026, 12, 4)
    phase.save()
    with time_machine.travel(at(2026, 11, 20, 12), tick=False):
        rule = _rule(world, trigger="phase_ends", days=7, audience_tags="", audience_cohort=True)
        plan(rules=[rule])
    [nudge] = Nudge.objects.filter(rule=rule)
    assert nudge.contact == world.c_a_teacher
    assert nudge.occurrence == f"phase_ends:{phase.pk}"
    assert nudge.due_at == at(2026, 11, 27, 7, 30)


def test_a_resolved_ticket_asks_its_raiser_for_a_rating_once(world: Any) -> None:
    ticket_transition(ticket=world.t_a1, by=world.s1_am, status="resolved", outcome="fixed")
    rule = _rule(world, trigger="ticket_resolved", days=0, audience_tags="")
    plan(rules=[rule])
    plan(rules=[rule])
    [nudge] = Nudge.objects.filter(rule=rule)
    assert nudge.contact == world.c_a_teacher  # a_teacher raised t_a1
    assert nudge.occurrence == f"ticket:{world.t_a1.pk}"


def test_rules_only_reach_contacts_linked_to_the_partnership(world: Any) -> None:
    stranger = f.ContactFactory(school=world.school_a, tags=",it_lead,")  # not linked to p_a1
    rule = _rule(world)
    plan(rules=[rule])
    assert not Nudge.objects.filter(rule=rule, contact=stranger).exists()


def test_a_supplier_wide_rule_covers_its_live_partnerships_in_the_stages(world: Any) -> None:
    other = f.PartnershipFactory(supplier=world.s1, school=world.school_b, stage="pilot")
    contact = f.ContactFactory(school=world.school_b, tags=",it_lead,")
    f.PartnershipContactFactory(partnership=other, contact=contact)
    rule = _rule(world, partnership=None, stages="pilot")
    plan(rules=[rule])
    assert set(Nudge.objects.filter(rule=rule).values_list("partnership_id", flat=True)) == {
        other.pk
    }
    world.p_a1.stage = "pilot"
    world.p_a1.save()
    plan(rules=[rule])
    assert set(Nudge.objects.filter(rule=rule).values_list("partnership_id", flat=True)) == {
        other.pk,
        world.p_a1.pk,
    }


def test_no_contact_rule_waits_n_days_after_the_last_nudge(world: Any) -> None:
    sent_at = at(2026, 10, 5, 10)
    Nudge.objects.filter(pk=world.n_a1.pk).update(status="sent", sent_at=sent_at)
    rule = _rule(
        world,
        trigger="no_contact",
        days=30,
        audience_tags=",it_lead,",
        created_at=at(2026, 9, 1, 9),
    )
    with time_machine.travel(at(2026, 10, 28, 9), tick=False):
        plan(rules=[rule])
    [nudge] = Nudge.objects.filter(rule=rule)
    assert nudge.occurrence == "no_contact:2026-10-05"
    assert nudge.due_at == sent_at.astimezone(UTC) + timedelta(days=30)
