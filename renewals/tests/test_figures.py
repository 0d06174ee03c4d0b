"""A value review's figures reconcile with the scorecard for the same period (the same
definitions, over the same rows), and its on-site hours term by term add up to the time
recorded, counted here again from the entries themselves."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from types import SimpleNamespace
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from accounts.tests import factories as f
from nudges.models import Nudge, NudgeTemplate, OptOut
from renewals.figures import review_figures, review_period
from renewals.models import ValueReview
from renewals.services import review_open
from reports.scorecards import Period, scorecard
from tickets.models import Ticket
from visits.models import TimeEntry, Visit

pytestmark = pytest.mark.django_db

LONDON = ZoneInfo("Europe/London")
# The term (1 Sep 2026 - 31 Aug 2027) as it stands on 31 January 2027: two school terms
# (Autumn 2026 whole, Spring 2027 in progress), and whole months, as the scorecard takes.
NOW = datetime(2027, 1, 31, 12, tzinfo=LONDON)
BEFORE = datetime(2026, 8, 20, 10, tzinfo=LONDON)  # before the agreement's term
AFTER = datetime(2027, 2, 20, 10, tzinfo=LONDON)  # after today


def _ticket(p: Any, raiser: Any, created: datetime, **fields: Any) -> Ticket:
    return Ticket.objects.create(
        **{
            "partnership": p,
            "raised_by": raiser,
            "subject": "s",
            "description": "d",
            "created_at": created,
            "first_response_target_seconds": 6 * 3600,
            "resolution_target_seconds": 30 * 3600,
            "first_response_due_at": created + timedelta(days=1),
            **fields,
        }
    )


def _answered(created: datetime, hours: int, late: bool = False) -> dict[str, Any]:
    return {
        "first_response_at": created + timedelta(days=2 if late else 0, hours=hours),
        "first_response_seconds": hours * 3600,
    }


def _resolved(created: datetime, days: int, outcome: str, breached: bool = False) -> dict:
    return {
        "status": "resolved",
        "resolved_at": created + timedelta(days=days),
        "sla_used_seconds": days * 8 * 3600,
        "resolution_breached": breached,
        "outcome": outcome,
        "outcome_reason": "Not in scope" if outcome == "wont_change" else "",
    }


def _build(cast: SimpleNamespace) -> dict[str, Any]:
    """The partnership's records across its term, and some either side of it; the other
    supplier's at the same school. Returns what the figures must show, counted by hand."""
    p, other = cast.partnership, cast.other_partnership
    t1 = datetime(2026, 9, 14, 9, tzinfo=LONDON)
    t2 = datetime(2026, 11, 3, 9, tzinfo=LONDON)
    t3 = datetime(2027, 1, 12, 9, tzinfo=LONDON)
    t4 = datetime(2027, 1, 30, 9, tzinfo=LONDON)
    _ticket(p, cast.teacher, t1, **_answered(t1, 2), **_resolved(t1, 3, "fixed"), rating=5)
    _ticket(
        p,
        cast.teacher,
        t2,
        **_answered(t2, 5, late=True),
        **_resolved(t2, 9, "wont_change", breached=True),
        reopen_count=1,
        rating=2,
    )
    _ticket(p, cast.lead, t2, **_answered(t2, 1), **_resolved(t2, 2, "workaround"), rating=4)
    _ticket(p, cast.teacher, t3, **_answered(t3, 3))
    _ticket(p, cast.teacher, t3)  # never answered, overdue
    _ticket(p, cast.teacher, t4, first_response_due_at=NOW + timedelta(hours=3))  # not yet due
    # Outside the period, and the other supplier's: in neither figure.
    _ticket(p, cast.teacher, BEFORE, **_answered(BEFORE, 1), rating=1)
    _ticket(p, cast.teacher, AFTER)
    _ticket(other, cast.lead, t2, **_answered(t2, 1), rating=3)

    for start, status in [
        (datetime(2026, 10, 1, 10, tzinfo=LONDON), "completed"),
        (datetime(2026, 12, 2, 10, tzinfo=LONDON), "completed"),
        (datetime(2027, 1, 20, 10, tzinfo=LONDON), "no_show"),
        (datetime(2027, 1, 27, 10, tzinfo=LONDON), "cancelled"),
        (datetime(2027, 2, 24, 10, tzinfo=LONDON), "planned"),  # after today
        (BEFORE, "completed"),
    ]:
        Visit.objects.create(
            partnership=p,
            kind="training",
            starts_at=start,
            ends_at=start + timedelta(hours=2),
            status=status,
            status_reason="Snow" if status in ("no_show", "cancelled") else "",
        )
    Visit.objects.create(
        partnership=other,
        kind="training",
        starts_at=datetime(2026, 10, 1, 10, tzinfo=LONDON),
        ends_at=datetime(2026, 10, 1, 12, tzinfo=LONDON),
        status="completed",
    )

    entries = [
        (date(2026, 9, 15), 90, "on_site"),
        (date(2026, 10, 20), 135, "on_site"),
        (date(2026, 12, 18), 45, "on_site"),
        (date(2026, 11, 2), 60, "remote"),  # remote: not on-site hours
        (date(2027, 1, 11), 120, "on_site"),
        (date(2027, 1, 31), 40, "on_site"),  # today counts
        (date(2027, 2, 1), 300, "on_site"),  # tomorrow does not
        (date(2026, 8, 28), 200, "on_site"),  # before the agreement's term
    ]
    for day, minutes, mode in entries:
        TimeEntry.objects.create(
            partnership=p, user=cast.am, date=day, minutes=minutes, mode=mode, activity="training"
        )
    TimeEntry.objects.create(
        partnership=other,
        user=cast.other_am,
        date=date(2026, 10, 20),
        minutes=600,
        mode="on_site",
        activity="training",
    )

    staff = [f.ContactFactory(school=cast.school) for _ in range(4)]
    for contact in staff:
        f.PartnershipContactFactory(partnership=p, contact=contact)
    template = NudgeTemplate.objects.create(
        supplier=cast.supplier, name="Check-in", subject="Hi", body_text="How is it going?"
    )
    other_template = NudgeTemplate.objects.create(
        supplier=cast.other_supplier, name="Hello", subject="Hi", body_text="Hello"
    )
    sends = [
        (staff[0], datetime(2026, 9, 21, 10, tzinfo=LONDON), "sent"),
        (staff[0], datetime(2026, 10, 5, 10, tzinfo=LONDON), "sent"),
        (staff[1], datetime(2026, 10, 5, 10, tzinfo=LONDON), "sent"),
        (staff[2], datetime(2027, 1, 18, 10, tzinfo=LONDON), "sent"),
        (staff[3], datetime(2027, 1, 18, 10, tzinfo=LONDON), "cancelled"),
        (staff[3], BEFORE, "sent"),
    ]
    for i, (contact, at, status) in enumerate(sends):
        Nudge.objects.create(
            supplier_id=p.supplier_id,
            school_id=p.school_id,
            partnership=p,
            contact=contact,
            template=template,
            occurrence=f"manual:{i}",
            due_at=at,
            next_attempt_at=at,
            status=status,
            sent_at=at if status == "sent" else None,
        )
    Nudge.objects.create(
        supplier_id=other.supplier_id,
        school_id=other.school_id,
        partnership=other,
        contact=staff[0],
        template=other_template,
        occurrence="manual:other",
        due_at=datetime(2026, 10, 5, 10, tzinfo=LONDON),
        next_attempt_at=datetime(2026, 10, 5, 10, tzinfo=LONDON),
        status="sent",
        sent_at=datetime(2026, 10, 5, 10, tzinfo=LONDON),
    )
    # An opt-out from this supplier within the term, one before it, one of the other
    # supplier (none of them this supplier's).
    OptOut.objects.create(
        contact=staff[1],
        supplier=cast.supplier,
        source="link",
        created_at=datetime(2026, 10, 6, 8, tzinfo=LONDON),
    )
    OptOut.objects.create(
        contact=staff[3], supplier=cast.supplier, source="link", created_at=BEFORE
    )
    OptOut.objects.create(
        contact=staff[2],
        supplier=cast.other_supplier,
        source="link",
        created_at=datetime(2027, 1, 19, 8, tzinfo=LONDON),
    )

    on_site = [m for day, m, mode in entries if mode == "on_site"]
    in_term = [
        m for day, m, mode in entries if mode == "on_site" and date(2026, 9, 1) <= day <= NOW.date()
    ]
    assert len(in_term) < len(on_site)
    return {
        "tickets_raised": 6,
        "first_responses_late": 2,  # the late answer and the overdue one
        "ratings_by_score": {"1": 0, "2": 1, "3": 0, "4": 1, "5": 1},
        "resolved": 3,
        "visits": {"visits_completed": 2, "visits_planned": 3, "visits_no_show": 1},
        "nudges_sent": 4,
        "opt_outs": 1,
        "staff_reached": 3,
        "staff_stopped": 1,
        "onsite_minutes": sum(in_term),
    }


@pytest.mark.parametrize("who", ["lead", "am"])
def test_the_reviews_figures_are_the_scorecards_for_the_same_period(
    cast: SimpleNamespace, who: str
) -> None:
    expected = _build(cast)
    review = review_open(by=cast.lead, term=cast.term)
    review = ValueReview.objects.select_related("term", "partnership").get(pk=review.pk)
    user = cast.users[who]

    figures = review_figures(review, user=user, now=NOW)
    period = review_period(review, NOW.date())
    assert period == Period(date(2026, 9, 1), date(2027, 2, 1))
    card = scorecard(
        user=user,
        period=period,
        group=["school_id"],
        school_ids={cast.school.pk},
        supplier_ids={cast.supplier.pk},
        now=NOW,
        with_monthly=False,
    )
    [row] = card["rows"]

    tickets = figures["tickets"]
    assert tickets == {key: row[key] for key in tickets}
    assert figures["visits"] == {key: row[key] for key in figures["visits"]}
    nudges = {k: figures["nudges"][k] for k in ("nudges_sent", "opt_outs")}
    assert nudges == {key: row[key] for key in nudges}

    # ... and they are the records counted by hand.
    assert tickets["tickets_raised"] == expected["tickets_raised"]
    assert tickets["first_responses_late"] == expected["first_responses_late"]
    assert tickets["first_response_within_target_pct"] == 60.0  # 3 of 5 answered or due
    assert tickets["resolved_within_target_pct"] == 66.7  # 2 of 3
    assert tickets["acted_on_pct"] == 66.7  # all but "won't change"
    assert (tickets["ratings"], tickets["rating_average"]) == (3, 3.67)
    assert figures["ratings_by_score"] == expected["ratings_by_score"]
    assert figures["you_said_we_did_count"] == expected["resolved"]
    assert [t["outcome"] for t in figures["you_said_we_did"]] == [
        "wont_change",
        "workaround",
        "fixed",
    ]
    assert figures["visits"] == expected["visits"]
    assert figures["nudges"] == {
        "nudges_sent": expected["nudges_sent"],
        "opt_outs": expected["opt_outs"],
        "staff_reached": expected["staff_reached"],
        "staff_stopped": expected["staff_stopped"],
    }

    by_term = figures["onsite_hours_by_term"]
    assert [(t["term"], t["complete"]) for t in by_term] == [
        ("Autumn 2026", True),
        ("Spring 2027", False),
    ]
    assert [t["delivered_hours"] for t in by_term] == [4.5, 2.7]  # 270 and 160 minutes
    assert sum(t["delivered_hours"] for t in by_term) == pytest.approx(
        expected["onsite_minutes"] / 60, abs=0.05
    )
    assert all(t["promised_hours"] == 12.0 for t in by_term)


def test_a_decided_review_keeps_its_figures_while_the_records_move_on(
    cast: SimpleNamespace,
) -> None:
    _build(cast)
    review = review_open(by=cast.lead, term=cast.term)
    response = cast.client("lead").post(
        f"/api/v1/value-reviews/{review.pk}/decide/",
        {"decision": "renew", "decision_reason": "Staff use it"},
        format="json",
    )
    assert response.status_code == 200, response.content
    kept = response.json()["figures"]
    raised = kept["tickets"]["tickets_raised"]

    _ticket(cast.partnership, cast.teacher, datetime(2026, 10, 1, 9, tzinfo=LONDON))

    again = cast.client("am").get(f"/api/v1/value-reviews/{review.pk}/").json()
    assert again["figures"] == kept
    assert again["figures"]["tickets"]["tickets_raised"] == raised
