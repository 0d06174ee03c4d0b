"""Supplier scorecards for school and trust leads.

STOPGAP: ``reports/scorecards.py`` (another engineer's) will compute these for the API and
the pages alike. Until it lands, the scorecard pages use this small function; switch
``frontend.views.school`` to the reports module when it exists and delete this file (the
drill-down filters in ``frontend.filters`` define the same figures, keep them in step).

Per school and supplier, over tickets raised since ``since``:
- tickets raised;
- first responses within target: of the tickets whose first response is done or overdue,
  the share answered by their due time (pending ones, not yet due, are left out);
- median first response, in the school's working hours (the SLA clock's own measure);
- average rating (of the rated ones);
- on-site hours this term against the agreement (live partnerships).
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from django.db.models import F, Q
from django.utils import timezone

from accounts.calendars import calendars_for_schools
from accounts.models import Organisation, Partnership, Stage
from tickets.models import Ticket

from visits.hours import onsite_summaries


@dataclass
class SupplierScore:
    school: Organisation
    supplier: Organisation
    tickets_raised: int = 0
    first_response_on_time: int = 0
    first_response_late: int = 0
    median_first_response_hours: float | None = None
    ratings: int = 0
    rating_total: int = 0
    promised_hours: Decimal = Decimal(0)
    delivered_hours: Decimal = Decimal(0)
    expected_by_now_hours: Decimal = Decimal(0)
    term_name: str = ""
    _response_hours: list[float] = field(default_factory=list, repr=False)

    @property
    def first_response_pct(self) -> float | None:
        due = self.first_response_on_time + self.first_response_late
        return 100 * self.first_response_on_time / due if due else None

    @property
    def average_rating(self) -> float | None:
        return self.rating_total / self.ratings if self.ratings else None

    @property
    def onsite_behind(self) -> bool:
        return self.delivered_hours < self.expected_by_now_hours


def first_response_state(
    first_response_at: datetime | None, due: datetime, now: datetime
) -> str | None:
    """on_time, late, or None while still pending (the same rule as the drill-down)."""
    if first_response_at is not None:
        return "on_time" if first_response_at <= due else "late"
    return "late" if due < now else None


def first_response_q(state: str, now: datetime) -> Q:
    """The database form of ``first_response_state`` for the drill-down list."""
    if state == "on_time":
        return Q(first_response_at__lte=F("first_response_due_at"))
    if state == "late":
        return Q(first_response_at__gt=F("first_response_due_at")) | Q(
            first_response_at__isnull=True, first_response_due_at__lt=now
        )
    return Q(first_response_at__isnull=True, first_response_due_at__gte=now)


def supplier_scorecards(
    user: Any, school_ids: Iterable[int], *, since: datetime, now: datetime | None = None
) -> list[SupplierScore]:
    """One score per (school, supplier) with a partnership at the school, in a fixed number
    of queries: partnerships, tickets, calendars (3) and the on-site batch (6)."""
    now = now or timezone.now()
    school_ids = list(school_ids)
    partnerships = list(
        Partnership.objects.visible_to(user)
        .filter(school_id__in=school_ids)
        .select_related("school", "supplier")
        .order_by("school__name", "supplier__name", "id")
    )
    scores: dict[tuple[int, int], SupplierScore] = {}
    for p in partnerships:
        key = (p.school_id, p.supplier_id)
        if key not in scores:
            scores[key] = SupplierScore(school=p.school, supplier=p.supplier)
    if not scores:
        return []

    calendars = calendars_for_schools({s for s, _ in scores})
    tickets = (
        Ticket.objects.visible_to(user)
        .filter(school_id__in=school_ids, created_at__gte=since)
        .values_list(
            "school_id",
            "supplier_id",
            "created_at",
            "first_response_at",
            "first_response_due_at",
            "rating",
        )
    )
    for school_id, supplier_id, created, first_at, due, rating in tickets:
        score = scores.get((school_id, supplier_id))
        if score is None:
            continue
        score.tickets_raised += 1
        state = first_response_state(first_at, due, now)
        if state == "on_time":
            score.first_response_on_time += 1
        elif state == "late":
            score.first_response_late += 1
        if first_at is not None:
            cal = calendars.get(school_id)
            if cal is not None:
                score._response_hours.append(cal.business_seconds(created, first_at) / 3600)
        if rating is not None:
            score.ratings += 1
            score.rating_total += rating

    live = [p for p in partnerships if p.stage != Stage.ENDED]
    onsite = onsite_summaries(live, user=user, on=timezone.localdate(now))
    for p in live:
        summary = onsite[p.pk]
        score = scores[(p.school_id, p.supplier_id)]
        score.promised_hours += summary.promised_hours
        score.delivered_hours += summary.delivered_hours
        score.expected_by_now_hours += summary.expected_by_now_hours
        score.term_name = summary.term.name
    for score in scores.values():
        if score._response_hours:
            score.median_first_response_hours = statistics.median(score._response_hours)
    return list(scores.values())


@dataclass
class TrendPoint:
    month: date
    raised: int = 0
    on_time: int = 0
    late: int = 0

    @property
    def pct(self) -> float | None:
        due = self.on_time + self.late
        return 100 * self.on_time / due if due else None


def month_starts(now: datetime, months: int) -> list[date]:
    today = timezone.localdate(now)
    out = []
    y, m = today.year, today.month
    for _ in range(months):
        out.append(date(y, m, 1))
        y, m = (y, m - 1) if m > 1 else (y - 1, 12)
    return list(reversed(out))


def monthly_trend(
    user: Any, school_ids: Iterable[int], *, months: int = 12, now: datetime | None = None
) -> tuple[list[date], dict[int, list[TrendPoint]]]:
    """Per supplier, per month (the school's local month of raising): tickets raised and
    first responses within target. One query."""
    now = now or timezone.now()
    starts = month_starts(now, months)
    since = timezone.make_aware(datetime.combine(starts[0], datetime.min.time()))
    index = {d: i for i, d in enumerate(starts)}
    series: dict[int, list[TrendPoint]] = defaultdict(lambda: [TrendPoint(d) for d in starts])
    rows = (
        Ticket.objects.visible_to(user)
        .filter(school_id__in=list(school_ids), created_at__gte=since)
        .values_list("supplier_id", "created_at", "first_response_at", "first_response_due_at")
    )
    for supplier_id, created, first_at, due in rows:
        local = timezone.localdate(created)
        i = index.get(date(local.year, local.month, 1))
        if i is None:
            continue
        point = series[supplier_id][i]
        point.raised += 1
        state = first_response_state(first_at, due, now)
        if state == "on_time":
            point.on_time += 1
        elif state == "late":
            point.late += 1
    return starts, dict(series)
