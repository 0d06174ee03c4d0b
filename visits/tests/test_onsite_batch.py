"""The batched on-site figures (pages, portfolio, scorecards) agree with
visits.hours.onsite_summary, row for row, for every user who sees the partnership."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from accounts.models import Partnership
from visits.hours import onsite_summaries, onsite_summary
from visits.models import Visit
from visits.services import time_entry_create


def test_onsite_summaries_match_onsite_summary(world):
    today = timezone.localdate()
    world.school_a.terms.create(
        name="Now", starts_on=today - timedelta(days=30), ends_on=today + timedelta(days=30)
    )
    world.school_b.terms.create(
        name="Next", starts_on=today + timedelta(days=3), ends_on=today + timedelta(days=60)
    )
    for p, hours in ((world.p_a1, 10), (world.p_a2, 6), (world.p_b2, 4)):
        p.onsite_hours_per_term = hours
        p.save()
    time_entry_create(
        by=world.s1_am,
        partnership=world.p_a1,
        date=today,
        minutes=95,
        mode="on_site",
        activity="training",
    )
    time_entry_create(
        by=world.s1_am,
        partnership=world.p_a1,
        date=today - timedelta(days=40),
        minutes=60,
        mode="on_site",
        activity="training",
    )
    time_entry_create(
        by=world.s2_am,
        partnership=world.p_b2,
        date=today,
        minutes=30,
        mode="on_site",
        activity="meeting",
    )
    Visit.objects.filter(pk=world.v_b2.pk).update(
        starts_at=timezone.now() + timedelta(days=10),
        ends_at=timezone.now() + timedelta(days=10, hours=3),
    )
    # A school with no term dates at all: the default term.
    from accounts.tests import factories as f

    no_terms = f.PartnershipFactory(
        supplier=world.s1, school=f.SchoolFactory(), onsite_hours_per_term=8
    )
    time_entry_create(
        by=world.s1_am,
        partnership=no_terms,
        date=today,
        minutes=45,
        mode="on_site",
        activity="training",
    )
    assert onsite_summary(no_terms, today, user=world.s1_am).term.from_school_calendar is False
    for user in ("s1_am", "s2_am", "a_lead", "trust_lead", "a_teacher", "b_teacher"):
        visible = list(Partnership.objects.visible_to(world.users[user]))
        batch = onsite_summaries(visible, user=world.users[user], on=today)
        for p in visible:
            assert batch[p.pk] == onsite_summary(p, today, user=world.users[user]), (user, p)


def test_term_spans_are_each_schools_term_on_that_day(world):
    """In term, in a holiday (the next term) and with no term dates (the default term):
    the batched read agrees with term_on school by school."""
    from datetime import date

    from visits.hours import term_on, term_spans

    world.school_a.terms.create(
        name="Autumn 2026", starts_on=date(2026, 9, 2), ends_on=date(2026, 12, 18)
    )
    world.school_a.terms.create(
        name="Spring 2027", starts_on=date(2027, 1, 5), ends_on=date(2027, 3, 26)
    )
    ids = [world.school_a.pk, world.school_b.pk]
    for day, a_term in (
        (date(2026, 11, 2), "Autumn 2026"),
        (date(2026, 12, 28), "Spring 2027"),
        (date(2027, 6, 1), "Summer 2027"),  # past the last known term: the default
    ):
        spans = term_spans(ids, day)
        assert spans[world.school_a.pk].name == a_term
        assert spans[world.school_b.pk].from_school_calendar is False
        for school_id in ids:
            assert spans[school_id] == term_on(school_id, day)
