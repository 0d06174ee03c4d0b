"""An account manager's portfolio: every partnership with a health score and the reasons
that lowered it, in a fixed number of queries however many partnerships there are.

The health score starts at 100 and loses points for each problem, never below 0:

| reason | points |
|---|---|
| open tickets past their first-response or resolution due time | 10 each, at most 30 |
| average rating of the last 90 days below 3 (with at least 2 ratings) | 15 |
| on-site hours behind the agreement for this point of the term | 15 |
| readiness follow-up actions past their due date | 10 each, at most 20 |
| a trial phase ended over 14 days ago with no decision | 15 |
| no contact (a nudge sent or a visit completed) for 30 days | 10 |
| staff opting out of this supplier's nudges in the last 90 days | 5 each, at most 15 |
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Avg, Count, Max, Min, Q, QuerySet
from django.utils import timezone

from accounts.models import Partnership, PartnershipContact, TrialPhase
from accounts.services import FINAL_DECISIONS
from nudges.models import Nudge, OptOut
from tickets.filters import breached_q
from tickets.models import OPEN_STATUSES, Ticket
from visits.hours import OnsiteSummary, onsite_summaries
from visits.models import FollowUpAction, Visit


@dataclass
class Health:
    score: int = 100
    reasons: list[str] = field(default_factory=list)

    def lose(self, points: int, reason: str) -> None:
        if points > 0:
            self.score = max(0, self.score - points)
            self.reasons.append(f"{reason} (-{points})")


@dataclass
class PortfolioRow:
    partnership: Partnership
    health: Health
    open_tickets: int = 0
    breached_tickets: int = 0
    rating_average: float | None = None
    last_visit: datetime | None = None
    next_visit: datetime | None = None
    next_nudge: datetime | None = None
    last_contact: datetime | None = None
    onsite: OnsiteSummary | None = None  # on-site hours this term (visits.hours)


def _group(qs: QuerySet[Any], **aggregates: Any) -> dict[int, dict[str, Any]]:
    return {
        r["partnership_id"]: r
        for r in qs.order_by().values("partnership_id").annotate(**aggregates)
    }


def portfolio(
    partnerships: Iterable[Partnership], *, user: Any, now: datetime | None = None
) -> list[PortfolioRow]:
    """One row per partnership of ``partnerships`` (the user's visible ones, loaded with
    their school and supplier), in their order; every figure is read through each model's
    ``visible_to(user)``."""
    now = now or timezone.now()
    today = timezone.localdate(now)
    items = list(partnerships)
    ids = [p.pk for p in items]
    quarter = now - timedelta(days=90)

    # Two narrow reads rather than one pass over every ticket of the portfolio: the open
    # ones and the recently rated ones are a few percent of a supplier's tickets (and each
    # has its own partial index).
    visible = Ticket.objects.visible_to(user).filter(partnership_id__in=ids)
    tickets = _group(
        visible.filter(status__in=OPEN_STATUSES),
        # Counting a column of the partial index (not the id) lets PostgreSQL answer from
        # the index alone.
        open=Count("partnership_id"),
        breached=Count("partnership_id", filter=breached_q(now)),
    )
    ratings = _group(
        visible.filter(rated_at__gte=quarter),
        rating_avg=Avg("rating"),
        rating_n=Count("rating"),
    )
    for pid, r in ratings.items():
        tickets.setdefault(pid, {}).update(r)
    visits = _group(
        Visit.objects.visible_to(user).filter(partnership_id__in=ids),
        last=Max("ends_at", filter=Q(status="completed")),
        next=Min("starts_at", filter=Q(status="planned", starts_at__gte=now)),
    )
    nudges = _group(
        Nudge.objects.visible_to(user).filter(
            partnership_id__in=ids, status__in=["scheduled", "sent"]
        ),
        next=Min("next_attempt_at", filter=Q(status="scheduled")),
        last=Max("sent_at", filter=Q(status="sent")),
    )
    overdue_actions = {
        r["assessment__visit__partnership_id"]: r["n"]
        for r in FollowUpAction.objects.visible_to(user)
        .filter(assessment__visit__partnership_id__in=ids, done_at__isnull=True, due_on__lt=today)
        .order_by()
        .values("assessment__visit__partnership_id")
        .annotate(n=Count("id"))
    }
    stalled = set(
        TrialPhase.objects.visible_to(user)
        .filter(partnership_id__in=ids, end_date__lt=today - timedelta(days=14))
        .exclude(decision__in=FINAL_DECISIONS)  # an extended phase is open until decided
        .values_list("partnership_id", flat=True)
    )
    opt_outs: dict[int, int] = defaultdict(int)
    recent_stops = (
        OptOut.objects.visible_to(user)
        .filter(created_at__gte=quarter, supplier__isnull=False)
        .values_list("contact_id", "supplier_id")
    )
    links = PartnershipContact.objects.filter(partnership_id__in=ids).values_list(
        "partnership_id", "contact_id", "partnership__supplier_id"
    )
    stops = set(recent_stops)
    for pid, contact_id, supplier_id in links:
        if (contact_id, supplier_id) in stops:
            opt_outs[pid] += 1

    # On-site hours this term, by the same rules as a partnership's own page (6 queries).
    onsite = onsite_summaries(items, user=user, on=today)

    rows = []
    for p in items:
        h = Health()
        t = tickets.get(p.pk, {})
        v = visits.get(p.pk, {})
        breached = t.get("breached", 0)
        h.lose(min(10 * breached, 30), f"{breached} open ticket(s) past their due time")
        if t.get("rating_n", 0) >= 2 and t["rating_avg"] < 3:
            h.lose(15, f"average rating {t['rating_avg']:.1f} over the last 90 days")
        o = onsite[p.pk]
        promised = float(o.promised_hours)
        expected = float(o.expected_by_now_hours)
        delivered = float(o.delivered_hours)
        if promised and o.is_behind:
            h.lose(
                15,
                f"on-site hours behind: {delivered} of {expected} expected by now ({promised} this term)",
            )
        overdue = overdue_actions.get(p.pk, 0)
        h.lose(min(10 * overdue, 20), f"{overdue} readiness action(s) overdue")
        if p.pk in stalled:
            h.lose(15, "a trial phase ended over two weeks ago with no decision")
        contacts = [d for d in (v.get("last"), nudges.get(p.pk, {}).get("last")) if d]
        last_contact = max(contacts) if contacts else None
        if (last_contact or p.created_at) < now - timedelta(days=30):
            h.lose(10, "no contact for over 30 days")
        stops = opt_outs.get(p.pk, 0)
        h.lose(min(5 * stops, 15), f"{stops} member(s) of staff opted out in the last 90 days")
        rows.append(
            PortfolioRow(
                partnership=p,
                health=h,
                open_tickets=t.get("open", 0),
                breached_tickets=breached,
                rating_average=round(t["rating_avg"], 2)
                if t.get("rating_avg") is not None
                else None,
                last_visit=v.get("last"),
                next_visit=v.get("next"),
                next_nudge=nudges.get(p.pk, {}).get("next"),
                last_contact=last_contact,
                onsite=o,
            )
        )
    return rows
