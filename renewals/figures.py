"""The value review's evidence, for an agreement term, from the figures the product
already defines: the ticket figures of ``reports.scorecards`` (``ticket_figures``,
``visit_figures``, ``nudge_figures``, the same definitions, over the same ``visible_to``
rows), on-site hours term by term from ``visits.hours.onsite_by_term``, and the trial
phases, follow-up actions and resolved tickets as recorded. No figure is defined here.

The result is plain JSON (dates as ISO strings), so a decided review keeps it as it was.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from django.db.models import Count, Q
from django.utils import timezone

from accounts.models import TrialPhase
from nudges.models import Nudge, OptOut
from reports.scorecards import (
    EMPTY_TICKETS,
    FIGURES,
    Period,
    first_response_q,
    nudge_figures,
    ticket_figures,
    visit_figures,
)
from tickets.models import Ticket
from visits.hours import onsite_by_term
from visits.models import FollowUpAction, Visit

from .models import ValueReview

# The longest "you said, we did" list a review shows (the count says how many in all).
YOU_SAID_LIMIT = 200

DEFINITIONS: dict[str, str] = {
    **{k: v for k, v in FIGURES.items() if not k.startswith("onsite_")},
    "onsite_hours_by_term": "On-site hours recorded in each school term of the agreement, against the hours per term the agreement promised (the term in progress up to today).",
    "staff_reached": "Staff of the school sent at least one nudge by the supplier in the period.",
    "staff_stopped": "Of them, those who stopped the supplier's nudges in the period (unsubscribed, reported spam or were stopped by the school's lead).",
    "you_said_we_did": "Tickets resolved in the period, with the outcome the supplier recorded.",
}


def review_period(review: ValueReview, today: date) -> Period:
    """The agreement term from its first day up to today, the decision day or the
    term's last day, whichever comes first (``Period.end`` is exclusive)."""
    term = review.term
    last = min(today, term.ends_on)
    if review.decided_at is not None:
        last = min(last, timezone.localdate(review.decided_at))
    return Period(term.starts_on, max(last, term.starts_on) + timedelta(days=1))


def _iso(d: date | datetime | None) -> str | None:
    return d.isoformat() if d is not None else None


def review_figures(
    review: ValueReview, *, user: Any, now: datetime | None = None
) -> dict[str, Any]:
    """Every figure of the review as ``user`` may see it. About a dozen queries, whatever
    the number of tickets."""
    now = now or timezone.now()
    today = timezone.localdate(now)
    term = review.term
    p = review.partnership
    period = review_period(review, today)
    start, end = period.bounds
    group = ["partnership_id"]
    key = (p.pk,)

    tickets = Ticket.objects.visible_to(user).filter(
        partnership=p, created_at__gte=start, created_at__lt=end
    )
    ticket_row = ticket_figures(tickets, group, now).get(key, EMPTY_TICKETS)
    # The parts and wholes of ticket_figures' shares (the same filters), so a share of a
    # handful of tickets can be shown as "2 of 3" rather than a bare percentage.
    resolved_q = Q(resolved_at__isnull=False)
    ticket_counts = tickets.order_by().aggregate(
        answered_in_time=Count("id", filter=first_response_q("on_time", now)),
        late=Count("id", filter=first_response_q("late", now)),
        resolved=Count("id", filter=resolved_q),
        resolved_in_time=Count("id", filter=resolved_q & Q(resolution_breached=False)),
        acted_on=Count("id", filter=resolved_q & ~Q(outcome="wont_change")),
        reopened=Count("id", filter=Q(reopen_count__gt=0)),
        ever_resolved=Count("id", filter=resolved_q | Q(reopen_count__gt=0)),
    )
    ticket_counts["answered_or_due"] = ticket_counts["answered_in_time"] + ticket_counts["late"]

    visits = visit_figures(
        Visit.objects.visible_to(user).filter(
            partnership=p, starts_at__gte=start, starts_at__lt=end
        ),
        group,
    ).get(key, {"visits_completed": 0, "visits_planned": 0, "visits_no_show": 0})

    sent = Nudge.objects.visible_to(user).filter(partnership=p, sent_at__gte=start, sent_at__lt=end)
    stops = OptOut.objects.visible_to(user).filter(
        Q(supplier_id=p.supplier_id) | Q(supplier__isnull=True),
        contact__school_id=p.school_id,
        created_at__gte=start,
        created_at__lt=end,
    )
    # By school: nudge_figures groups opt-outs by their contact's school (an opt-out has
    # no partnership), so a partnership key never met them. The nudges are this
    # partnership's already, the opt-outs this supplier's at this school.
    nudges = nudge_figures(
        sent.filter(school_id=p.school_id), stops.filter(supplier_id=p.supplier_id), ["school_id"]
    ).get((p.school_id,), {"nudges_sent": 0, "opt_outs": 0})
    reached = set(
        sent.filter(status=Nudge.Status.SENT).values_list("contact_id", flat=True).distinct()
    )
    stopped = set(stops.filter(contact_id__in=reached).values_list("contact_id", flat=True))

    resolved = (
        Ticket.objects.visible_to(user)
        .filter(partnership=p, resolved_at__gte=start, resolved_at__lt=end)
        .order_by("-resolved_at", "-id")
    )
    you_said = [
        {
            "ticket_id": t.pk,
            "subject": t.subject,
            "category": t.get_category_display(),
            "outcome": t.outcome,
            "outcome_label": t.get_outcome_display(),
            "outcome_reason": t.outcome_reason,
            "resolved_on": _iso(timezone.localdate(t.resolved_at)),
        }
        for t in resolved.only("subject", "category", "outcome", "outcome_reason", "resolved_at")[
            :YOU_SAID_LIMIT
        ]
    ]
    resolved_count = resolved.count() if len(you_said) == YOU_SAID_LIMIT else len(you_said)

    hours = onsite_by_term(
        p, term.starts_on, term.ends_on, today, user=user, promised=term.onsite_hours_per_term
    )

    phases = (
        TrialPhase.objects.visible_to(user)
        .filter(partnership=p, start_date__lte=period.end, end_date__gte=period.start)
        .prefetch_related("criteria")
        .order_by("start_date", "id")
    )
    follow_ups = (
        FollowUpAction.objects.visible_to(user)
        .filter(assessment__visit__partnership=p, done_at__isnull=True)
        .order_by("due_on", "id")
    )
    rating_counts = dict(
        tickets.filter(rating__isnull=False).values_list("rating").annotate(n=Count("id"))
    )

    return {
        "period": {"start": _iso(period.start), "end": _iso(period.end - timedelta(days=1))},
        "term": {
            "number": term.number,
            "starts_on": _iso(term.starts_on),
            "ends_on": _iso(term.ends_on),
            "notice_on": _iso(term.notice_on),
            "annual_value": str(term.annual_value) if term.annual_value is not None else None,
        },
        "targets": {
            "first_response_target_hours": term.first_response_target_hours,
            "resolution_target_hours": term.resolution_target_hours,
            "onsite_hours_per_term": float(term.onsite_hours_per_term),
            "nudges_per_contact_per_week": term.nudges_per_contact_per_week,
            "nudges_per_contact_per_term": term.nudges_per_contact_per_term,
        },
        "tickets": ticket_row,
        "ticket_counts": ticket_counts,
        "ratings_by_score": {str(n): rating_counts.get(n, 0) for n in range(1, 6)},
        "you_said_we_did": you_said,
        "you_said_we_did_count": resolved_count,
        "onsite_hours_by_term": [
            {
                "term": h.term.name,
                "starts_on": _iso(h.term.starts_on),
                "ends_on": _iso(h.term.ends_on),
                "from_school_calendar": h.term.from_school_calendar,
                "promised_hours": float(h.promised_hours),
                "delivered_hours": float(h.delivered_hours),
                "complete": h.complete,
            }
            for h in hours
        ],
        "visits": visits,
        "nudges": {
            **nudges,
            "staff_reached": len(reached),
            "staff_stopped": len(stopped),
        },
        "trial_phases": [
            {
                "id": ph.pk,
                "kind": ph.get_kind_display(),
                "start_date": _iso(ph.start_date),
                "end_date": _iso(ph.end_date),
                "intent": ph.intent,
                "impact": ph.impact,
                "decision": ph.get_decision_display(),
                "criteria": [
                    {
                        "description": c.description,
                        "target": c.target,
                        "evaluation": c.get_evaluation_display(),
                        "evidence": c.evidence,
                    }
                    for c in ph.criteria.all()
                ],
            }
            for ph in phases
        ],
        "open_follow_ups": [
            {
                "id": a.pk,
                "description": a.description,
                "owner": a.get_owner_display(),
                "due_on": _iso(a.due_on),
                "overdue": a.due_on < today,
            }
            for a in follow_ups
        ],
        "definitions": DEFINITIONS,
    }
