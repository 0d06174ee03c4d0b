"""Scorecards: worked examples, reconciliation with the records on random data, and who
sees which figures."""

from __future__ import annotations

import random
from datetime import date, datetime, timedelta
from statistics import mean
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.tests import factories as f
from reports.aggregates import percentile
from tickets.models import Ticket

LONDON = ZoneInfo("Europe/London")
T0 = datetime(2026, 10, 5, 9, tzinfo=LONDON)
PERIOD = {"from": "2026-09-01", "to": "2027-09-01"}


def _ticket(p: Any, raiser: Any, **fields: Any) -> Ticket:
    base = {
        "partnership": p,
        "supplier_id": p.supplier_id,
        "school_id": p.school_id,
        "raised_by": raiser,
        "subject": "s",
        "description": "d",
        "created_at": T0,
        "first_response_target_seconds": 8 * 3600,
        "resolution_target_seconds": 40 * 3600,
        "first_response_due_at": T0 + timedelta(days=1),
    }
    return Ticket.objects.create(**{**base, **fields})


def _forget_benchmark() -> None:
    # Not cache.clear(): on Redis that flushes a database other test processes share.
    from datetime import date

    from django.core.cache import cache

    from reports.scorecards import Period, benchmark_cache_key

    period = Period(date.fromisoformat(PERIOD["from"]), date.fromisoformat(PERIOD["to"]))
    cache.delete(benchmark_cache_key(period))


def _rows(world: Any, user: str, **params: Any) -> dict[str, dict[str, Any]]:
    response = world.client(user).get("/api/v1/scorecards/", {**PERIOD, **params})
    assert response.status_code == 200, response.content
    body = response.json()
    return {r.get("supplier_name") or r.get("school_name"): r for r in body["rows"]}


def test_worked_example_for_a_school_with_two_suppliers(world: Any) -> None:
    """Acme (s1): 4 tickets. Answered after 2 h, 4 h and 10 h of school time (targets 8 h,
    due a day later; the 10 h one late), one unanswered and overdue. Two resolved: 20 h
    (in time), 50 h (breached, reopened once, "won't change"). Ratings 5 and 2."""
    Ticket.objects.all().delete()
    p, raiser = world.p_a1, world.a_teacher
    late = T0 + timedelta(days=2)
    _ticket(
        p,
        raiser,
        first_response_at=T0 + timedelta(hours=2),
        first_response_seconds=2 * 3600,
        status="resolved",
        resolved_at=T0 + timedelta(days=3),
        sla_used_seconds=20 * 3600,
        outcome="fixed",
        rating=5,
    )
    _ticket(
        p,
        raiser,
        first_response_at=T0 + timedelta(hours=4),
        first_response_seconds=4 * 3600,
        status="resolved",
        resolved_at=T0 + timedelta(days=9),
        sla_used_seconds=50 * 3600,
        resolution_breached=True,
        reopen_count=1,
        outcome="wont_change",
        outcome_reason="x",
        rating=2,
    )
    _ticket(p, raiser, first_response_at=late, first_response_seconds=10 * 3600)
    _ticket(p, raiser)  # never answered, due long ago
    _ticket(
        world.p_a2,
        world.a_lead,
        first_response_at=T0 + timedelta(hours=1),
        first_response_seconds=3600,
    )

    rows = _rows(world, "a_lead", school=world.school_a.pk)
    acme = rows["Acme Learning"]
    assert acme["tickets_raised"] == 4
    assert acme["first_response_median_hours"] == 4.0
    assert acme["first_response_p90_hours"] == 8.8  # 4 + 0.8 * (10 - 4)
    assert acme["first_response_within_target_pct"] == 50.0  # 2 of 4 (3 answered + 1 overdue)
    assert acme["first_responses_late"] == 2  # the 10 h answer and the overdue one
    assert acme["resolution_median_hours"] == 35.0
    assert acme["resolved_within_target_pct"] == 50.0
    assert acme["reopen_rate_pct"] == 50.0
    assert acme["acted_on_pct"] == 50.0
    assert (acme["rating_average"], acme["ratings"]) == (3.5, 2)
    assert rows["Brightboard"]["tickets_raised"] == 1
    assert rows["Brightboard"]["first_response_within_target_pct"] == 100.0


def test_figures_reconcile_with_the_records_on_random_data(world: Any) -> None:
    """Computed the slow way, ticket by ticket, in Python; the database must agree."""
    Ticket.objects.all().delete()
    rng = random.Random(2026)
    for _ in range(120):
        p = rng.choice([world.p_a1, world.p_a2])
        answered = rng.random() < 0.8
        resolved = answered and rng.random() < 0.6
        created = T0 + timedelta(hours=rng.randint(0, 24 * 200))
        due = created + timedelta(hours=rng.randint(1, 48))
        fields: dict[str, Any] = {"created_at": created, "first_response_due_at": due}
        if answered:
            fields |= {
                "first_response_at": created + timedelta(hours=rng.randint(0, 60)),
                "first_response_seconds": rng.randint(0, 40 * 3600),
            }
        if resolved:
            fields |= {
                "status": "resolved",
                "resolved_at": created + timedelta(days=rng.randint(1, 30)),
                "sla_used_seconds": rng.randint(3600, 80 * 3600),
                "resolution_breached": rng.random() < 0.3,
                "outcome": rng.choice(["fixed", "workaround", "wont_change"]),
                "outcome_reason": "r",
                "reopen_count": rng.choice([0, 0, 0, 1]),
                "rating": rng.choice([None, 1, 2, 3, 4, 5]),
            }
        _ticket(p, world.a_teacher, **fields)

    rows = _rows(world, "a_lead", school=world.school_a.pk)
    from django.utils import timezone

    now = timezone.now()
    for supplier, name in [(world.s1, "Acme Learning"), (world.s2, "Brightboard")]:
        ts = list(Ticket.objects.filter(supplier=supplier))
        answered = [t for t in ts if t.first_response_at]
        overdue = [t for t in ts if not t.first_response_at and t.first_response_due_at < now]
        in_time = [t for t in answered if t.first_response_at <= t.first_response_due_at]
        resolved = [t for t in ts if t.resolved_at]
        rated = [t.rating for t in ts if t.rating]
        want = {
            "tickets_raised": len(ts),
            "first_response_median_hours": round(
                percentile([t.first_response_seconds for t in answered], 0.5) / 3600, 1
            ),
            "first_response_p90_hours": round(
                percentile([t.first_response_seconds for t in answered], 0.9) / 3600, 1
            ),
            "first_response_within_target_pct": round(
                100 * len(in_time) / (len(answered) + len(overdue)), 1
            ),
            "first_responses_late": len(answered) - len(in_time) + len(overdue),
            "resolution_median_hours": round(
                percentile([t.sla_used_seconds for t in resolved], 0.5) / 3600, 1
            ),
            "resolved_within_target_pct": round(
                100 * sum(not t.resolution_breached for t in resolved) / len(resolved), 1
            ),
            "acted_on_pct": round(
                100 * sum(t.outcome != "wont_change" for t in resolved) / len(resolved), 1
            ),
            "rating_average": round(mean(rated), 2),
            "ratings": len(rated),
        }
        got = {k: rows[name][k] for k in want}
        assert got == want, name


def test_a_school_lead_sees_every_supplier_of_their_school_and_nothing_else(world: Any) -> None:
    assert set(_rows(world, "a_lead", school=world.school_a.pk)) == {"Acme Learning", "Brightboard"}
    assert (
        world.client("a_lead").get("/api/v1/scorecards/", {"school": world.school_b.pk}).status_code
        == 404
    )
    assert set(_rows(world, "b_lead", school=world.school_b.pk)) == {"Brightboard"}


def test_a_trust_lead_compares_suppliers_across_the_trust_and_per_school(world: Any) -> None:
    assert set(_rows(world, "trust_lead", trust=world.trust.pk)) == {"Acme Learning", "Brightboard"}
    per_school = (
        world.client("trust_lead")
        .get("/api/v1/scorecards/", {**PERIOD, "trust": world.trust.pk, "by": "school"})
        .json()["rows"]
    )
    assert {(r["supplier_name"], r["school_name"]) for r in per_school} == {
        ("Acme Learning", "Ashfield Primary"),
        ("Brightboard", "Ashfield Primary"),
    }
    assert (
        world.client("b_lead").get("/api/v1/scorecards/", {"trust": world.trust.pk}).status_code
        == 404
    )


def test_a_supplier_sees_only_its_own_figures_per_school(world: Any) -> None:
    s1 = _rows(world, "s1_am")
    assert set(s1) == {"Ashfield Primary"}
    assert s1["Ashfield Primary"]["tickets_raised"] == 1  # t_a1 only, not Brightboard's t_a2
    s2 = _rows(world, "s2_am", school=world.school_a.pk)
    assert set(s2) == {"Ashfield Primary"}
    assert s2["Ashfield Primary"]["tickets_raised"] == 1


def test_the_benchmark_needs_five_suppliers(world: Any) -> None:
    _forget_benchmark()
    body = world.client("s1_am").get("/api/v1/scorecards/", PERIOD).json()
    assert body["benchmark"] is None  # two suppliers have tickets
    for i in range(3):
        p = f.PartnershipFactory(school=world.school_b)
        _ticket(
            p,
            world.b_teacher,
            created_at=datetime.now(tz=LONDON),
            first_response_seconds=3600 * (i + 1),
            first_response_at=datetime.now(tz=LONDON),
        )
    cached = world.client("s1_am").get("/api/v1/scorecards/", PERIOD).json()["benchmark"]
    assert cached is None  # computed at most once an hour
    _forget_benchmark()
    bench = world.client("s1_am").get("/api/v1/scorecards/", PERIOD).json()["benchmark"]
    assert bench["suppliers"] == 5
    assert "Acme Learning" not in str(bench)


def test_the_scorecard_costs_the_same_queries_for_many_suppliers(world: Any) -> None:
    def count() -> int:
        _forget_benchmark()  # the hourly benchmark recomputed each time: the full cost
        world.users["a_lead"].__dict__.pop("_crm_scope", None)
        with CaptureQueriesContext(connection) as ctx:
            assert (
                world.client("a_lead")
                .get("/api/v1/scorecards/", {"school": world.school_a.pk})
                .status_code
                == 200
            )
        return len(ctx)

    few = count()
    for _ in range(8):
        p = f.PartnershipFactory(school=world.school_a)
        _ticket(p, world.a_lead, first_response_seconds=60, first_response_at=T0)
    assert count() == few


def test_bad_periods_are_field_errors(world: Any) -> None:
    client = world.client("a_lead")
    assert set(client.get("/api/v1/scorecards/", {"from": "soon"}).json()) == {"from"}
    assert (
        client.get("/api/v1/scorecards/", {"from": "2027-01-01", "to": "2026-01-01"}).status_code
        == 400
    )


def test_a_scorecard_exports_as_csv(world: Any) -> None:
    response = world.client("a_lead").get(
        "/api/v1/scorecards/", {"school": world.school_a.pk, "format": "csv"}
    )
    assert response["Content-Type"].startswith("text/csv")
    lines = response.content.decode().splitlines()
    assert lines[0].startswith("supplier_id,tickets_raised,")
    assert len(lines) == 3


@pytest.mark.parametrize("user", ["outsider", "a_teacher"])
def test_people_without_a_view_see_no_other_figures(world: Any, user: str) -> None:
    response = world.client(user).get("/api/v1/scorecards/", {"school": world.school_a.pk})
    if user == "outsider":
        assert response.status_code == 404
    else:
        rows = response.json()["rows"]
        assert all(r["tickets_raised"] <= 1 for r in rows)  # a teacher counts only their own


# --- Bounded periods and the cached benchmark -------------------------------------------

TODAY = datetime(2026, 12, 3, 10, tzinfo=LONDON)


@pytest.mark.parametrize(
    ("params", "field", "says"),
    [
        ({"from": "2026-09-15"}, "from", "whole calendar months"),
        ({"from": "2026-09-01", "to": "2027-01-31"}, "to", "whole calendar months"),
        ({"from": "2024-11-01"}, "from", "At most 24 months back: from 2024-12-01 or later."),
        ({"from": "1900-01-01", "to": "1900-02-01"}, "from", "24 months back"),
        ({"to": "2027-10-01"}, "to", "to 2027-09-01 or earlier"),
    ],
)
def test_a_period_outside_the_rule_is_a_400_naming_it(
    world: Any, params: dict[str, str], field: str, says: str
) -> None:
    with time_machine.travel(TODAY, tick=False):
        response = world.client("a_lead").get("/api/v1/scorecards/", params)
    assert response.status_code == 400
    assert says in " ".join(response.json()[field])


def test_whole_months_from_24_months_back_to_the_school_years_end_are_allowed(
    world: Any,
) -> None:
    with time_machine.travel(TODAY, tick=False):
        for params in (
            {"from": "2024-12-01", "to": "2025-01-01"},
            {"from": "2026-12-01", "to": "2027-09-01"},
            {},
        ):
            response = world.client("a_lead").get("/api/v1/scorecards/", params)
            assert response.status_code == 200, (params, response.content)


def _five_suppliers(world: Any, when: datetime) -> None:
    """Three more suppliers with a ticket each at school B: five with tickets."""
    for i in range(3):
        p = f.PartnershipFactory(school=world.school_b)
        _ticket(
            p,
            world.b_teacher,
            created_at=when,
            first_response_due_at=when + timedelta(days=1),
            first_response_seconds=3600 * (i + 1),
            first_response_at=when + timedelta(hours=i + 1),
        )


def _benchmark_queries(world: Any, params: dict[str, str]) -> tuple[Any, int]:
    world.users["a_lead"].__dict__.pop("_crm_scope", None)
    with CaptureQueriesContext(connection) as ctx:
        response = world.client("a_lead").get("/api/v1/scorecards/", params)
    assert response.status_code == 200, response.content
    return response.json()["benchmark"], len(ctx)


def test_a_repeated_period_reuses_the_benchmark_with_the_same_numbers(world: Any) -> None:
    from reports.scorecards import Period, _benchmark

    with time_machine.travel(TODAY, tick=False):
        _forget_benchmark()
        _five_suppliers(world, T0)
        first, cold = _benchmark_queries(world, PERIOD)
        second, warm = _benchmark_queries(world, PERIOD)
        # The same tickets (none is created after this month): the same computation.
        shorter, shorter_queries = _benchmark_queries(
            world, {"from": PERIOD["from"], "to": "2027-01-01"}
        )
        uncached = _benchmark(Period(date(2026, 9, 1), date(2027, 1, 1)), TODAY)
    # The benchmark's own read (one aggregate over every supplier's tickets; two on
    # SQLite, which takes percentiles in Python) is not repeated.
    saved = 1 if connection.vendor == "postgresql" else 2
    assert warm == cold - saved
    assert shorter_queries == warm
    assert first["suppliers"] == 5
    assert first == second == shorter
    assert {k: v for k, v in first.items() if k != "computed_at"} == uncached


def test_the_benchmark_is_recomputed_once_it_may_be_out_of_date(world: Any) -> None:
    """A period reaching into this month: 15 minutes. An older one: a day (its tickets
    are still answered and rated, more slowly)."""
    current = PERIOD
    past = {"from": "2026-10-01", "to": "2026-11-01"}

    def suppliers(params: dict[str, str]) -> int | None:
        body = world.client("a_lead").get("/api/v1/scorecards/", params).json()
        return body["benchmark"]["suppliers"] if body["benchmark"] else None

    with time_machine.travel(TODAY, tick=False) as clock:
        _five_suppliers(world, T0)
        assert suppliers(current) == 5
        assert suppliers(past) is None  # three suppliers in October alone: too few
        _five_suppliers(world, T0)  # three more suppliers, in October
        clock.shift(timedelta(minutes=14))
        assert (suppliers(current), suppliers(past)) == (5, None)
        clock.shift(timedelta(minutes=2))
        assert (suppliers(current), suppliers(past)) == (8, None)
        clock.shift(timedelta(hours=24))
        assert (suppliers(current), suppliers(past)) == (8, 6)
