"""List endpoints run the same number of queries for 1 row as for a full page."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.models import SuccessCriterion
from accounts.tests import factories as f


def _count(world: Any, user: str, url: str) -> tuple[int, int, list[str]]:
    world.users[user].__dict__.pop("_crm_scope", None)  # as a fresh request would
    client = world.client(user)
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url, {"page_size": 200})
    assert response.status_code == 200
    return (
        len(ctx.captured_queries),
        len(response.json()["results"]),
        [q["sql"] for q in ctx.captured_queries],
    )


def _more_partnerships(world: Any, n: int) -> None:
    for _ in range(n):
        p = f.PartnershipFactory(supplier=world.s1, account_manager=world.s1_am)
        p.products.set([world.prod1])
        contact = f.ContactFactory(school=p.school)
        f.PartnershipContactFactory(partnership=p, contact=contact)
        phase = f.TrialPhaseFactory(partnership=p)
        phase.cohort.set([contact])
        SuccessCriterion.objects.create(phase=phase, description="Weekly use")


def _more_products(world: Any, n: int) -> None:
    for _ in range(n):
        f.ProductFactory(supplier=world.s1)


# Budgets, listing each query:
#   every request: the user's memberships (their scope), 1 query
#   partnerships: page (supplier, school, account manager joined), capped count*,
#                 products and override stage changes (2 prefetches)
#   contacts:     page (+ the partnership-link subquery inlined), capped count*
#   products:     page, capped count*
#   trial-phases: page (partnership subquery inlined), capped count*, criteria, cohort
#   organisations: page, capped count*
# (*only when the page is full or not the first page)
CASES: list[tuple[str, Callable[[Any, int], None], int]] = [
    ("/api/v1/partnerships/", _more_partnerships, 5),
    ("/api/v1/contacts/", _more_partnerships, 3),
    ("/api/v1/products/", _more_products, 3),
    ("/api/v1/trial-phases/", _more_partnerships, 5),
    ("/api/v1/organisations/", _more_partnerships, 3),
]


@pytest.mark.parametrize("url,grow,budget", CASES, ids=[c[0] for c in CASES])
def test_a_list_costs_the_same_queries_for_one_row_as_for_many(
    world: Any, url: str, grow: Callable[[Any, int], None], budget: int
) -> None:
    few, rows_few, _ = _count(world, "s1_am", url)
    grow(world, 25)
    many, rows_many, sql = _count(world, "s1_am", url)
    assert rows_many > rows_few
    assert many == few, "\n".join(sql)
    assert many <= budget, "\n".join(sql)


def test_a_school_leads_partnership_list_is_bounded_too(world: Any) -> None:
    few, _, _ = _count(world, "a_lead", "/api/v1/partnerships/")
    for _ in range(10):
        p = f.PartnershipFactory(school=world.school_a)
        p.products.set([f.ProductFactory(supplier=p.supplier)])
    many, rows, sql = _count(world, "a_lead", "/api/v1/partnerships/")
    assert rows == 12
    assert many == few, "\n".join(sql)


def _more_tickets(world: Any, n: int) -> None:
    from tickets.services import ticket_create, ticket_post_message

    for i in range(n):
        ticket, _ = ticket_create(
            by=world.a_teacher, partnership=world.p_a1, subject=f"T{i}", description="d"
        )
        ticket_post_message(ticket=ticket, by=world.s1_am, body="On it")


# tickets: page (supplier, school, raiser joined), capped count*; no calendars (the list
# shows due times and breach flags, which are stored).
# messages: the parent ticket through its visible_to, the page, their attachments (one
# prefetch), capped count*.
TICKET_CASES: list[tuple[str, int]] = [
    ("/api/v1/tickets/", 3),
    ("/api/v1/tickets/{t_a1}/messages/", 4),
]


@pytest.mark.parametrize("url,budget", TICKET_CASES, ids=[c[0] for c in TICKET_CASES])
def test_ticket_lists_cost_the_same_for_one_row_as_for_many(
    world: Any, url: str, budget: int
) -> None:
    url = url.format(t_a1=world.t_a1.pk)
    few, rows_few, _ = _count(world, "s1_am", url)
    _more_tickets(world, 25)
    for i in range(25):
        from tickets.services import ticket_post_message

        ticket_post_message(ticket=world.t_a1, by=world.s1_am, body=f"More {i}")
    many, rows_many, sql = _count(world, "s1_am", url)
    assert rows_many > rows_few
    assert many == few, "\n".join(sql)
    assert many <= budget, "\n".join(sql)


def test_a_ticket_detail_costs_the_same_with_many_messages(world: Any) -> None:
    from tickets.services import ticket_post_message

    url = f"/api/v1/tickets/{world.t_a1.pk}/"
    world.users["a_lead"].__dict__.pop("_crm_scope", None)
    client = world.client("a_lead")
    with CaptureQueriesContext(connection) as few:
        client.get(url)
    for i in range(20):
        ticket_post_message(ticket=world.t_a1, by=world.s1_am, body=f"Reply {i}")
    world.users["a_lead"].__dict__.pop("_crm_scope", None)
    with CaptureQueriesContext(connection) as many:
        client.get(url)
    assert len(many) == len(few), "\n".join(q["sql"] for q in many.captured_queries)


def _more_visits(world: Any, n: int) -> None:
    from datetime import timedelta

    from django.utils import timezone

    from visits.services import time_entry_create, visit_create

    start = timezone.now() + timedelta(days=60)
    for i in range(n):
        visit_create(
            by=world.s1_am,
            partnership=world.p_a1,
            kind="technical_survey",
            starts_at=start + timedelta(days=i),
            ends_at=start + timedelta(days=i, hours=1),
            attendees=[world.s1_am],
            contacts=[world.c_a_it],
        )
        time_entry_create(
            by=world.s1_am,
            partnership=world.p_a1,
            date=timezone.localdate(),
            minutes=30,
            mode="remote",
            activity="planning",
        )


# visits: page (school, supplier joined), capped count*, attendees, contacts, assessments,
# their checks and actions (5 prefetches). time entries: page (user joined), capped count*.
VISIT_CASES: list[tuple[str, int]] = [("/api/v1/visits/", 8), ("/api/v1/time-entries/", 3)]


@pytest.mark.parametrize("url,budget", VISIT_CASES, ids=[c[0] for c in VISIT_CASES])
def test_visit_and_time_lists_cost_the_same_for_one_row_as_for_many(
    world: Any, url: str, budget: int
) -> None:
    few, rows_few, _ = _count(world, "s1_am", url)
    _more_visits(world, 15)
    many, rows_many, sql = _count(world, "s1_am", url)
    assert rows_many > rows_few
    assert many == few, "\n".join(sql)
    assert many <= budget, "\n".join(sql)


def _more_renewals(world: Any, n: int) -> None:
    from renewals.services import review_open, term_save

    for i in range(n):
        p = f.PartnershipFactory(supplier=world.s1, account_manager=world.s1_am)
        term = term_save(
            by=world.s1_am,
            partnership=p,
            starts_on=date(2026, 9, 1),
            ends_on=date(2027, 8, 31) + timedelta(days=i),
        )
        if i % 2:
            review_open(by=world.s1_am, term=term)


# agreements: page (supplier, school and the review's id joined); value reviews: page
# (term, supplier, school joined; no figures: those are on one review only); capped count*.
RENEWAL_CASES: list[tuple[str, int]] = [("/api/v1/agreements/", 3), ("/api/v1/value-reviews/", 3)]


@pytest.mark.parametrize("url,budget", RENEWAL_CASES, ids=[c[0] for c in RENEWAL_CASES])
def test_renewal_lists_cost_the_same_for_one_row_as_for_many(
    world: Any, url: str, budget: int
) -> None:
    few, rows_few, _ = _count(world, "s1_am", url)
    _more_renewals(world, 24)
    many, rows_many, sql = _count(world, "s1_am", url)
    assert rows_many > rows_few
    assert many == few, "\n".join(sql)
    assert many <= budget, "\n".join(sql)


def test_a_value_reviews_figures_cost_the_same_with_many_tickets(world: Any) -> None:
    """The figures are aggregates in the database (and one capped list of resolved
    tickets): a review with 20 more tickets costs no more queries."""
    url = f"/api/v1/value-reviews/{world.rv_a1.pk}/"
    few, _, _ = _count_detail(world, "a_lead", url)
    _more_tickets(world, 20)
    many, body, sql = _count_detail(world, "a_lead", url)
    assert body["figures"]["tickets"]["tickets_raised"] >= 20
    assert many == few, "\n".join(sql)


def _count_detail(world: Any, user: str, url: str) -> tuple[int, dict[str, Any], list[str]]:
    world.users[user].__dict__.pop("_crm_scope", None)
    with CaptureQueriesContext(connection) as ctx:
        response = world.client(user).get(url)
    assert response.status_code == 200
    return len(ctx.captured_queries), response.json(), [q["sql"] for q in ctx.captured_queries]
