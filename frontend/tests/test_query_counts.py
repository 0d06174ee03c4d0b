"""The portfolio, the ticket queue, a partnership and a trial phase run the same number of
queries for a few rows as for many (aggregates, prefetches and IN look-ups, never a query
per row)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.tests import factories as f
from tickets.services import ticket_create
from visits.services import time_entry_create, visit_create


def _count(client: Any, url: str) -> int:
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url)
    assert response.status_code == 200
    return len(ctx.captured_queries)


def _more(world: Any, n: int) -> None:
    """n more partnerships of s1 managed by s1_am, each with a ticket, a visit, on-site time
    and a term."""
    start = timezone.now() + timedelta(days=30)
    for i in range(n):
        school = f.SchoolFactory()
        p = f.PartnershipFactory(supplier=world.s1, school=school, account_manager=world.s1_am)
        contact = f.ContactFactory(school=school)
        f.PartnershipContactFactory(partnership=p, contact=contact)
        teacher = f.UserFactory()
        f.MembershipFactory(user=teacher, organisation=school, role="teacher")
        ticket_create(by=teacher, partnership=p, subject=f"More {i}", description="x")
        visit_create(
            by=world.s1_am,
            partnership=p,
            kind="training",
            starts_at=start + timedelta(days=i),
            ends_at=start + timedelta(days=i, hours=1),
        )
        time_entry_create(
            by=world.s1_am,
            partnership=p,
            date=timezone.localdate(),
            minutes=60,
            mode="on_site",
            activity="training",
        )
        school.terms.create(
            name="This term",
            starts_on=timezone.localdate() - timedelta(days=20),
            ends_on=timezone.localdate() + timedelta(days=40),
        )


def test_portfolio_queries_do_not_grow_with_partnerships(world, login):
    client = login("s1_am")
    few = _count(client, "/portfolio/")
    _more(world, 12)
    many = _count(client, "/portfolio/")
    assert many == few, (few, many)
    # session, user, memberships (scope), count, page of partnerships (5); the API's
    # portfolio for that page (reports/portfolio.py): open tickets, recent ratings, visits,
    # nudges (next and last), overdue actions, stalled phases, opt-outs, links (8); on-site
    # hours this term (visits.hours.onsite_summaries): calendars (3), terms, minutes,
    # planned (6)
    assert few == 5 + 8 + 6


def test_the_queue_queries_do_not_grow_with_tickets(world, login):
    client = login("s1_am")
    few = _count(client, "/tickets/")
    _more(world, 12)
    many = _count(client, "/tickets/")
    assert many == few, (few, many)
    # session, user, memberships (scope), the schools for the filter, count, page of tickets
    assert few == 6


def test_the_portfolio_shows_the_health_score_and_why_it_dropped(world, login):
    html = login("s1_am").get("/portfolio/").content.decode()
    # oo_a1: the school lead stopped s1 nudging a member of staff
    assert "member(s) of staff opted out in the last 90 days (-5)" in html
    assert ">95</span>" in html


def _more_phases(world: Any, n: int) -> None:
    """n more phases of p_a1, each with three criteria (one evaluated) and a cohort of
    three linked staff; and three more criteria and staff on ph_a1."""
    phases = [world.ph_a1, *(f.TrialPhaseFactory(partnership=world.p_a1) for _ in range(n))]
    for phase in phases:
        for i in range(3):
            phase.criteria.create(
                description=f"Criterion {i}",
                target="All of them",
                evaluation="met" if i == 0 else "",
                evidence="Figures" if i == 0 else "",
            )
            contact = f.ContactFactory(school=world.school_a)
            f.PartnershipContactFactory(partnership=world.p_a1, contact=contact)
            phase.cohort.add(contact)


def test_a_phase_page_queries_do_not_grow_with_criteria_or_cohort(world, login):
    client = login("s1_am")
    url = f"/partnerships/{world.p_a1.pk}/phases/{world.ph_a1.pk}/"
    few = _count(client, url)
    _more_phases(world, 0)
    many = _count(client, url)
    assert many == few, (few, many)
    # session, user, memberships (scope), the partnership, the phase, its cohort, its criteria
    assert few == 7


def test_the_partnership_page_queries_do_not_grow_with_phases(world, login):
    client = login("s1_am")
    url = f"/partnerships/{world.p_a1.pk}/"
    few = _count(client, url)
    _more_phases(world, 6)
    many = _count(client, url)
    assert many == few, (few, many)
