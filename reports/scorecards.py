"""Supplier responsiveness scorecards, computed in the database.

Every figure is over the rows the viewer may see (each model's ``visible_to``), grouped by
supplier (a school's or trust's view) or by school (a supplier's view of its portfolio).
Definitions (the API docs and the README show the same text): see FIGURES.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from statistics import median
from typing import Any
from zoneinfo import ZoneInfo

from django.core.cache import cache
from django.db.models import Avg, Count, F, Q, QuerySet
from django.db.models.functions import TruncMonth
from django.utils import timezone

from accounts.models import Partnership
from nudges.models import Nudge, OptOut
from tickets.models import Ticket
from visits.hours import onsite_summaries
from visits.models import Visit

from .aggregates import PercentileCont, db_has_percentiles, percentile

LONDON = ZoneInfo("Europe/London")
BENCHMARK_MIN_SUPPLIERS = 5

FIGURES: dict[str, str] = {
    "tickets_raised": "Tickets raised in the period.",
    "first_response_median_hours": "Median time to the supplier's first response (first public reply or status change by the supplier), in school working hours, over tickets answered.",
    "first_response_p90_hours": "90th percentile of the same.",
    "first_response_within_target_pct": "Of tickets answered or already overdue for an answer, the share answered by the agreement's first-response target (school working time).",
    "first_responses_late": "Tickets answered after their first-response target, or still unanswered past it.",
    "resolution_median_hours": "Median school working hours from raising to resolution (the clock stops while waiting on the school), over resolved tickets.",
    "resolved_within_target_pct": "Of resolved tickets, the share resolved within the agreement's resolution target.",
    "reopen_rate_pct": "Of tickets ever resolved, the share reopened at least once.",
    "acted_on_pct": 'Of resolved tickets, the share whose outcome was anything but "won\'t change".',
    "rating_average": "Average of the raisers' ratings (1 to 5).",
    "ratings": "How many tickets were rated.",
    "onsite_hours_delivered": "On-site hours recorded in the school's current term up to today (in a holiday, the term that comes next).",
    "onsite_hours_expected_by_now": "The promised hours pro rata to the term's school working days passed: delivered below this is behind.",
    "onsite_hours_promised": "On-site hours per term promised in the agreements.",
    "visits_completed": "Visits in the period marked completed.",
    "visits_planned": "Visits in the period that were not cancelled (completed, no-show or still planned).",
    "visits_no_show": "Visits in the period where the supplier did not turn up (no-show).",
    "nudges_sent": "Nudge emails sent to the school's staff in the period.",
    "opt_outs": "Opt-outs from this supplier in the period (staff unsubscribing, spam reports, or the school lead stopping it); a stop of every supplier counts against none of them.",
}


@dataclass(frozen=True)
class Period:
    start: date
    end: date  # exclusive

    @property
    def bounds(self) -> tuple[datetime, datetime]:
        return (
            datetime.combine(self.start, time(0), tzinfo=LONDON),
            datetime.combine(self.end, time(0), tzinfo=LONDON),
        )


def academic_year(today: date) -> Period:
    start_year = today.year if today.month >= 9 else today.year - 1
    return Period(date(start_year, 9, 1), date(start_year + 1, 9, 1))


# Periods a scorecard may ask for: whole calendar months, starting at most this many
# months before the current one, ending (exclusive) by the end of the current school
# year. Each period's cross-supplier benchmark reads every supplier's tickets, so the
# number of distinct periods (and of benchmark computations) stays small.
MAX_MONTHS_BACK = 24


def add_months(first: date, months: int) -> date:
    """The first day of the month ``months`` after (or before) ``first``'s month."""
    index = first.year * 12 + first.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def period_problems(period: Period, today: date) -> dict[str, list[str]]:
    """Field errors for a period outside the rule above (empty when it is allowed)."""
    earliest = add_months(date(today.year, today.month, 1), -MAX_MONTHS_BACK)
    latest = academic_year(today).end
    errors: dict[str, list[str]] = {}
    for name, day in (("from", period.start), ("to", period.end)):
        if day.day != 1:
            errors[name] = [
                "Periods are whole calendar months: give the 1st of a month"
                + (" (the day after the period)." if name == "to" else ".")
            ]
    if "from" not in errors and period.start < earliest:
        errors["from"] = [
            f"At most {MAX_MONTHS_BACK} months back: from {earliest.isoformat()} or later."
        ]
    if "to" not in errors and period.end > latest:
        errors["to"] = [f"Up to the end of this school year: to {latest.isoformat()} or earlier."]
    if not errors and period.end <= period.start:
        errors["to"] = ["The period ends after it starts."]
    return errors


def _pct(part: int, whole: int) -> float | None:
    return round(100 * part / whole, 1) if whole else None


def _hours(seconds: float | None) -> float | None:
    return round(seconds / 3600, 1) if seconds is not None else None


def _key(row: dict[str, Any], group: list[str]) -> tuple[Any, ...]:
    return tuple(row[g] for g in group)


def first_response_q(state: str, now: datetime) -> Q:
    """The tickets whose first response is ``on_time`` (answered by its due time),
    ``late`` (answered after it, or unanswered past it) or ``pending`` (unanswered, not
    yet due). The figures count with these, and the pages' drill-downs filter with them."""
    if state == "on_time":
        return Q(first_response_at__lte=F("first_response_due_at"))
    if state == "late":
        return Q(first_response_at__gt=F("first_response_due_at")) | Q(
            first_response_at__isnull=True, first_response_due_at__lt=now
        )
    if state == "pending":
        return Q(first_response_at__isnull=True, first_response_due_at__gte=now)
    raise ValueError(state)


def ticket_figures(
    tickets: QuerySet[Ticket], group: list[str], now: datetime
) -> dict[tuple[Any, ...], dict[str, Any]]:
    """The ticket figures per group: one aggregate query (plus one on SQLite for the
    percentiles, which it cannot take)."""
    resolved = Q(resolved_at__isnull=False)
    aggregates: dict[str, Any] = {
        "raised": Count("id"),
        "answered_in_time": Count("id", filter=first_response_q("on_time", now)),
        "late": Count("id", filter=first_response_q("late", now)),
        "resolved": Count("id", filter=resolved),
        "resolved_in_time": Count("id", filter=resolved & Q(resolution_breached=False)),
        "reopened": Count("id", filter=Q(reopen_count__gt=0)),
        "ever_resolved": Count("id", filter=resolved | Q(reopen_count__gt=0)),
        "acted_on": Count("id", filter=resolved & ~Q(outcome="wont_change")),
        "ratings": Count("rating"),
        "rating_average": Avg("rating"),
    }
    if db_has_percentiles():
        aggregates |= {
            "fr_median": PercentileCont("first_response_seconds", 0.5),
            "fr_p90": PercentileCont("first_response_seconds", 0.9),
            "res_median": PercentileCont("sla_used_seconds", 0.5, filter=resolved),
        }
    rows = tickets.order_by().values(*group).annotate(**aggregates)
    out: dict[tuple[Any, ...], dict[str, Any]] = {}
    for r in rows:
        out[_key(r, group)] = r
    if not db_has_percentiles():
        samples: dict[tuple[Any, ...], tuple[list[int], list[int]]] = defaultdict(lambda: ([], []))
        for r in tickets.order_by().values(
            *group, "first_response_seconds", "sla_used_seconds", "resolved_at"
        ):
            fr, res = samples[_key(r, group)]
            if r["first_response_seconds"] is not None:
                fr.append(r["first_response_seconds"])
            if r["resolved_at"] is not None:
                res.append(r["sla_used_seconds"])
        for key, (fr, res) in samples.items():
            out[key] |= {
                "fr_median": percentile(fr, 0.5),
                "fr_p90": percentile(fr, 0.9),
                "res_median": percentile(res, 0.5),
            }
    return {key: _ticket_row(r) for key, r in out.items()}


def _ticket_row(r: dict[str, Any]) -> dict[str, Any]:
    due_or_done = r["answered_in_time"] + r["late"]
    return {
        "tickets_raised": r["raised"],
        "first_response_median_hours": _hours(r["fr_median"]),
        "first_response_p90_hours": _hours(r["fr_p90"]),
        "first_response_within_target_pct": _pct(r["answered_in_time"], due_or_done),
        "first_responses_late": r["late"],
        "resolution_median_hours": _hours(r["res_median"]),
        "resolved_within_target_pct": _pct(r["resolved_in_time"], r["resolved"]),
        "reopen_rate_pct": _pct(r["reopened"], r["ever_resolved"]),
        "acted_on_pct": _pct(r["acted_on"], r["resolved"]),
        "rating_average": round(r["rating_average"], 2)
        if r["rating_average"] is not None
        else None,
        "ratings": r["ratings"],
    }


EMPTY_TICKETS = _ticket_row(
    {
        "raised": 0,
        "late": 0,
        "answered_in_time": 0,
        "fr_median": None,
        "fr_p90": None,
        "res_median": None,
        "resolved": 0,
        "resolved_in_time": 0,
        "reopened": 0,
        "ever_resolved": 0,
        "acted_on": 0,
        "rating_average": None,
        "ratings": 0,
    }
)


def monthly(tickets: QuerySet[Ticket], group: list[str], now: datetime) -> list[dict[str, Any]]:
    by_month = ticket_figures(
        tickets.annotate(month=TruncMonth("created_at", tzinfo=LONDON)), [*group, "month"], now
    )
    series = []
    for key, figures in sorted(by_month.items(), key=lambda kv: (kv[0][-1], kv[0][:-1])):
        *ids, month = key
        series.append(
            {**dict(zip(group, ids, strict=True)), "month": month.strftime("%Y-%m"), **figures}
        )
    return series


EMPTY_HOURS = {
    "onsite_hours_delivered": 0.0,
    "onsite_hours_expected_by_now": 0.0,
    "onsite_hours_promised": 0.0,
}


def onsite_hours(
    partnerships: Iterable[Partnership], user: Any, today: date, group: list[str]
) -> dict[tuple[Any, ...], dict[str, float]]:
    """Each partnership's on-site hours this term (``visits.hours.onsite_summaries``, the
    rules of a partnership's own page), summed over the group. Six queries."""
    partnerships = list(partnerships)
    summaries = onsite_summaries(partnerships, user=user, on=today)
    out: dict[tuple[Any, ...], dict[str, float]] = defaultdict(lambda: dict(EMPTY_HOURS))
    for p in partnerships:
        o = summaries[p.pk]
        row = out[tuple(getattr(p, g) for g in group)]
        row["onsite_hours_delivered"] += float(o.delivered_hours)
        row["onsite_hours_expected_by_now"] += float(o.expected_by_now_hours)
        row["onsite_hours_promised"] += float(o.promised_hours)
    return {key: {name: round(value, 1) for name, value in row.items()} for key, row in out.items()}


def visit_figures(
    visits: QuerySet[Visit], group: list[str]
) -> dict[tuple[Any, ...], dict[str, Any]]:
    rows = (
        visits.order_by()
        .values(*group)
        .annotate(
            visits_completed=Count("id", filter=Q(status=Visit.Status.COMPLETED)),
            visits_planned=Count("id", filter=~Q(status=Visit.Status.CANCELLED)),
            visits_no_show=Count("id", filter=Q(status=Visit.Status.NO_SHOW)),
        )
    )
    return {
        _key(r, group): {k: r[k] for k in ("visits_completed", "visits_planned", "visits_no_show")}
        for r in rows
    }


def nudge_figures(
    nudges: QuerySet[Nudge], opt_outs: QuerySet[OptOut], group: list[str]
) -> dict[tuple[Any, ...], dict[str, Any]]:
    out: dict[tuple[Any, ...], dict[str, Any]] = defaultdict(
        lambda: {"nudges_sent": 0, "opt_outs": 0}
    )
    for r in (
        nudges.filter(status=Nudge.Status.SENT).order_by().values(*group).annotate(n=Count("id"))
    ):
        out[_key(r, group)]["nudges_sent"] = r["n"]
    opt_group = ["supplier_id" if g == "supplier_id" else "contact__school_id" for g in group]
    for r in (
        opt_outs.filter(supplier__isnull=False)
        .order_by()
        .values(*opt_group)
        .annotate(n=Count("id"))
    ):
        out[tuple(r[g] for g in opt_group)]["opt_outs"] = r["n"]
    return out


# How old a cached benchmark may be. A period that reaches into this month changes as
# tickets arrive; an older one still changes as its tickets are answered, resolved and
# rated, only more slowly. A benchmark says when it was computed (``computed_at``).
BENCHMARK_CURRENT_MAX_AGE = timedelta(minutes=15)
BENCHMARK_PAST_MAX_AGE = timedelta(hours=24)


def _benchmark_span(period: Period, today: date) -> tuple[Period, timedelta]:
    """The period the benchmark is computed over, and how long it may be cached. No ticket
    is created after this month, so a period ending later counts the same tickets as one
    ending at the start of next month: they share one computation."""
    this_month = date(today.year, today.month, 1)
    span = Period(period.start, min(period.end, add_months(this_month, 1)))
    current = span.end > this_month
    return span, BENCHMARK_CURRENT_MAX_AGE if current else BENCHMARK_PAST_MAX_AGE


def benchmark_cache_key(period: Period, today: date | None = None) -> str:
    span, _ = _benchmark_span(period, today or timezone.localdate())
    # v2: the value is {"computed_at", "benchmark"}; entries of the old shape are not read.
    return f"scorecard-benchmark:v2:{span.start.isoformat()}:{span.end.isoformat()}"


def benchmark(period: Period, now: datetime) -> dict[str, Any] | None:
    """The cross-supplier benchmark of an allowed period (``period_problems``), computed
    at most once per ``BENCHMARK_*_MAX_AGE`` and cached (Django's cache: Redis in
    production, shared by every web process): it reads every ticket of the period, so it
    must not run on every request."""
    today = timezone.localdate(now)
    problems = period_problems(period, today)
    if problems:
        raise ValueError(f"Not a scorecard period: {problems}")
    span, max_age = _benchmark_span(period, today)
    key = benchmark_cache_key(period, today)
    found = cache.get(key)
    if isinstance(found, dict) and now - datetime.fromisoformat(found["computed_at"]) < max_age:
        return found["benchmark"]
    value = _benchmark(span, now)
    if value is not None:
        value = {**value, "computed_at": now.isoformat()}
    cache.set(
        key,
        {"computed_at": now.isoformat(), "benchmark": value},
        int(max_age.total_seconds()),
    )
    return value


def _benchmark(period: Period, now: datetime) -> dict[str, Any] | None:
    """The median over suppliers of each supplier's own figures, across every school:
    anonymised, and only when at least five suppliers contribute. This is the one read
    that deliberately spans suppliers; it returns no supplier's own figure."""
    start, end = period.bounds
    everyone = Ticket.objects.filter(
        created_at__gte=start, created_at__lt=end
    )  # dangerously unscoped
    per_supplier = [
        f for f in ticket_figures(everyone, ["supplier_id"], now).values() if f["tickets_raised"]
    ]
    if len(per_supplier) < BENCHMARK_MIN_SUPPLIERS:
        return None

    def mid(name: str) -> float | None:
        values = [f[name] for f in per_supplier if f[name] is not None]
        return round(median(values), 1) if values else None

    return {
        "suppliers": len(per_supplier),
        **{
            name: mid(name)
            for name in (
                "first_response_median_hours",
                "first_response_within_target_pct",
                "resolution_median_hours",
                "resolved_within_target_pct",
                "acted_on_pct",
                "rating_average",
            )
        },
    }


def scorecard(
    *,
    user: Any,
    period: Period,
    group: list[str],
    school_ids: set[int] | None = None,
    supplier_ids: set[int] | None = None,
    now: datetime | None = None,
    with_monthly: bool = True,
) -> dict[str, Any]:
    """Rows of figures per group, the monthly series (unless ``with_monthly`` is off), and
    the benchmark."""
    now = now or timezone.now()
    today = timezone.localdate(now)
    start, end = period.bounds

    def narrow(
        qs: QuerySet[Any], school_field: str = "school_id", supplier_field: str = "supplier_id"
    ) -> QuerySet[Any]:
        if school_ids is not None:
            qs = qs.filter(**{f"{school_field}__in": school_ids})
        if supplier_ids is not None:
            qs = qs.filter(**{f"{supplier_field}__in": supplier_ids})
        return qs

    tickets = narrow(
        Ticket.objects.visible_to(user).filter(created_at__gte=start, created_at__lt=end)
    )
    figures = ticket_figures(tickets, group, now)
    partnerships = list(narrow(Partnership.objects.visible_to(user).exclude(stage="ended")))
    hours = onsite_hours(partnerships, user, today, group)
    visits = visit_figures(
        narrow(Visit.objects.visible_to(user).filter(starts_at__gte=start, starts_at__lt=end)),
        group,
    )
    nudges = nudge_figures(
        narrow(Nudge.objects.visible_to(user).filter(sent_at__gte=start, sent_at__lt=end)),
        narrow(
            OptOut.objects.visible_to(user).filter(created_at__gte=start, created_at__lt=end),
            "contact__school_id",
        ),
        group,
    )
    keys = set(figures) | set(hours) | {tuple(getattr(p, g) for g in group) for p in partnerships}
    rows = []
    for key in keys:
        rows.append(
            {
                **dict(zip(group, key, strict=True)),
                **figures.get(key, EMPTY_TICKETS),
                **hours.get(key, EMPTY_HOURS),
                **visits.get(
                    key, {"visits_completed": 0, "visits_planned": 0, "visits_no_show": 0}
                ),
                **nudges.get(key, {"nudges_sent": 0, "opt_outs": 0}),
            }
        )
    return {
        "rows": rows,
        "monthly": monthly(tickets, group, now) if with_monthly else [],
        "benchmark": benchmark(period, now),
    }
