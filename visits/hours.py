"""On-site hours this term against the partnership's agreement."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from functools import lru_cache
from typing import Any

from django.db.models import Sum
from django.utils import timezone

from accounts.calendars import calendar_for_school, calendars_for_schools
from accounts.models import Partnership, Term
from accounts.working_time import WorkingCalendar

from .models import TimeEntry, Visit


@dataclass(frozen=True)
class TermSpan:
    name: str
    starts_on: date
    ends_on: date
    from_school_calendar: bool


def default_term(on: date) -> TermSpan:
    """When the school has given no term dates: the three terms of an English school
    year, taken as whole calendar spans (Sep–Dec, Jan–Mar, Apr–Aug)."""
    if on.month >= 9:
        return TermSpan(f"Autumn {on.year}", date(on.year, 9, 1), date(on.year, 12, 31), False)
    if on.month <= 3:
        return TermSpan(f"Spring {on.year}", date(on.year, 1, 1), date(on.year, 3, 31), False)
    return TermSpan(f"Summer {on.year}", date(on.year, 4, 1), date(on.year, 8, 31), False)


def term_on(school_id: int, on: date) -> TermSpan:
    """The school's term containing ``on``; in a holiday, the term that comes next (the
    hours still to deliver); with no term dates at all, the default term."""
    terms = Term.objects.filter(school_id=school_id, ends_on__gte=on).order_by("starts_on")
    term = terms.first()
    if term is None:  # no term dates, or none given this far ahead
        return default_term(on)
    return TermSpan(term.name, term.starts_on, term.ends_on, True)


def term_spans(school_ids: Iterable[int], on: date) -> dict[int, TermSpan]:
    """``term_on`` for many schools in one query: each school's term containing ``on``
    (in a holiday, the next one), else the default term. The term the agreement's
    per-term figures (on-site hours, nudges per contact per term) are counted in."""
    ids = set(school_ids)
    spans: dict[int, TermSpan] = {}
    terms = (
        Term.objects.filter(school_id__in=ids, ends_on__gte=on)
        .order_by("starts_on")
        .values_list("school_id", "name", "starts_on", "ends_on")
    )
    for school_id, name, starts_on, ends_on in terms:
        spans.setdefault(school_id, TermSpan(name, starts_on, ends_on, True))
    for school_id in ids:
        spans.setdefault(school_id, default_term(on))
    return spans


@dataclass(frozen=True)
class OnsiteSummary:
    partnership_id: int
    term: TermSpan
    promised_hours: Decimal
    delivered_hours: Decimal
    planned_hours: Decimal
    expected_by_now_hours: Decimal
    shortfall_hours: Decimal
    is_behind: bool


def _hours(minutes: int | None) -> Decimal:
    return (Decimal(minutes or 0) / 60).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)


@lru_cache(maxsize=4096)
def _working_days(cal: WorkingCalendar | None, start: date, end: date, on: date) -> tuple[int, int]:
    """(working days of the term up to ``on``, working days of the term). Calendars are
    immutable and compare by value, so schools with the same dates share one count."""
    days = (start + timedelta(n) for n in range((end - start).days + 1))
    working = [d for d in days if cal is None or cal.is_working_day(d)]
    return sum(1 for d in working if d <= on), len(working)


def expected_by_now(
    cal: WorkingCalendar | None, start: date, end: date, on: date, promised: Decimal
) -> Decimal:
    """The promise pro rata to the term's working days up to ``on`` (every day counts when
    no calendar is given; the whole promise for a term with no working day)."""
    passed, total = _working_days(cal, start, end, on)
    fraction = Decimal(passed) / Decimal(total) if total else Decimal(1)
    return (promised * fraction).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)


def onsite_summary(partnership: Partnership, on: date, *, user: Any) -> OnsiteSummary:
    """Delivered: on-site time entries dated within the term, up to and including ``on``.
    Planned: planned visits later in the term. Expected by now: the promise pro rata to
    the school's working days of the term passed (so a supplier is not "behind" on the
    first day of term). Shortfall: promised minus delivered, never negative.

    Built only from the entries and visits ``user`` may see (``visible_to``): a teacher,
    who sees no time entries, is told of no delivered time, rather than learning the
    supplier's minutes day by day through ``on``."""
    term = term_on(partnership.school_id, on)
    delivered = (
        TimeEntry.objects.visible_to(user)
        .filter(
            partnership=partnership,
            mode=TimeEntry.Mode.ON_SITE,
            date__gte=term.starts_on,
            date__lte=min(on, term.ends_on),
        )
        .aggregate(m=Sum("minutes"))["m"]
    )
    planned_minutes = sum(
        v.duration_minutes
        for v in Visit.objects.visible_to(user)
        .filter(
            partnership=partnership,
            status=Visit.Status.PLANNED,
            starts_at__date__gt=on,
            starts_at__date__lte=term.ends_on,
        )
        .only("starts_at", "ends_at")
    )
    cal = calendar_for_school(partnership.school)
    return _summary(partnership, term, cal, on, delivered, planned_minutes)


def _summary(
    partnership: Partnership,
    term: TermSpan,
    cal: WorkingCalendar | None,
    on: date,
    delivered_minutes: int | None,
    planned_minutes: int | None,
) -> OnsiteSummary:
    """The figures from the minutes read (one partnership's or a batch's)."""
    promised = Decimal(partnership.onsite_hours_per_term)
    expected = expected_by_now(cal, term.starts_on, term.ends_on, on, promised)
    delivered = _hours(delivered_minutes)
    return OnsiteSummary(
        partnership_id=partnership.pk,
        term=term,
        promised_hours=promised,
        delivered_hours=delivered,
        planned_hours=_hours(planned_minutes),
        expected_by_now_hours=expected,
        shortfall_hours=max(Decimal(0), promised - delivered),
        is_behind=delivered < expected,
    )


def onsite_summaries(
    partnerships: Iterable[Partnership], *, user: Any, on: date
) -> dict[int, OnsiteSummary]:
    """``onsite_summary`` for a batch of visible partnerships, with the same
    rules (the school's term containing ``on`` or the next one, else the default term;
    expected-by-now pro rata to the school's working days), in six queries for any number
    of partnerships: calendars (3), terms, on-site minutes, planned visits."""
    partnerships = list(partnerships)
    if not partnerships:
        return {}
    school_ids = {p.school_id for p in partnerships}
    calendars = calendars_for_schools(school_ids)
    spans = term_spans(school_ids, on)

    pids = [p.pk for p in partnerships]
    school_of = {p.pk: p.school_id for p in partnerships}
    earliest = min(s.starts_on for s in spans.values())
    latest = max(s.ends_on for s in spans.values())
    delivered: dict[int, int] = defaultdict(int)
    rows = (
        TimeEntry.objects.visible_to(user)
        .filter(
            partnership_id__in=pids,
            mode=TimeEntry.Mode.ON_SITE,
            date__gte=earliest,
            date__lte=on,
        )
        .values("partnership_id", "date")
        .annotate(m=Sum("minutes"))
        .values_list("partnership_id", "date", "m")
    )
    for pid, day, minutes in rows:
        span = spans[school_of[pid]]
        if span.starts_on <= day <= min(on, span.ends_on):
            delivered[pid] += minutes or 0
    planned: dict[int, int] = defaultdict(int)
    visits = (
        Visit.objects.visible_to(user)
        .filter(
            partnership_id__in=pids,
            status=Visit.Status.PLANNED,
            starts_at__date__gt=on,
            starts_at__date__lte=latest,
        )
        .values_list("partnership_id", "starts_at", "ends_at")
    )
    for pid, starts_at, ends_at in visits:
        if timezone.localdate(starts_at) <= spans[school_of[pid]].ends_on:
            planned[pid] += int((ends_at - starts_at).total_seconds() // 60)

    return {
        p.pk: _summary(
            p,
            spans[p.school_id],
            calendars.get(p.school_id),
            on,
            delivered.get(p.pk),
            planned.get(p.pk),
        )
        for p in partnerships
    }


def terms_between(school_id: int, start: date, end: date) -> list[TermSpan]:
    """The school's terms overlapping ``start``..``end`` (inclusive), in order; where the
    school has given no dates for part of the span, the default terms fill it."""
    given = [
        TermSpan(t.name, t.starts_on, t.ends_on, True)
        for t in Term.objects.filter(school_id=school_id, ends_on__gte=start, starts_on__lte=end)
        .order_by("starts_on")
        .only("name", "starts_on", "ends_on")
    ]
    spans: list[TermSpan] = []
    day = start
    while day <= end:
        ahead = [t for t in given if t.ends_on >= day]
        if ahead and ahead[0].starts_on <= day:
            term = ahead[0]
        elif ahead:  # a holiday before the next given term: skip to it
            day = ahead[0].starts_on
            continue
        else:
            term = default_term(day)
        spans.append(term)
        day = term.ends_on + timedelta(days=1)
    return spans


@dataclass(frozen=True)
class TermHours:
    term: TermSpan
    promised_hours: Decimal
    delivered_hours: Decimal
    complete: bool  # the term has ended by ``on``


def onsite_by_term(
    partnership: Partnership,
    start: date,
    end: date,
    on: date,
    *,
    user: Any,
    promised: Decimal | None = None,
) -> list[TermHours]:
    """On-site hours delivered against promised, term by term, for the school terms
    overlapping ``start``..``end`` up to ``on``. Delivered has ``onsite_summary``'s
    definition (on-site time entries dated within the term, up to ``on``, as ``user`` may
    see them); promised is ``promised`` (an agreement term's own figure) or the
    partnership's. Two queries."""
    last = min(end, on)
    if last < start:
        return []
    spans = terms_between(partnership.school_id, start, last)
    minutes = dict(
        TimeEntry.objects.visible_to(user)
        .filter(
            partnership=partnership,
            mode=TimeEntry.Mode.ON_SITE,
            date__gte=start,
            date__lte=last,
        )
        .values_list("date")
        .annotate(m=Sum("minutes"))
        .values_list("date", "m")
    )
    per_term = Decimal(partnership.onsite_hours_per_term if promised is None else promised)
    out = []
    for span in spans:
        delivered = sum(
            m or 0 for day, m in minutes.items() if span.starts_on <= day <= span.ends_on
        )
        out.append(TermHours(span, per_term, _hours(delivered), span.ends_on < on))
    return out
