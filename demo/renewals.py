"""Demo renewals on top of the demo partnerships: an agreement term for every partnership
with contract dates (from those dates, with a notice period and an annual value), and two
open value reviews: Lanternfish Learning at Cotswold Edge School, opened by the school's
lead, with its staff survey sent to the partnership's staff and all but one answered
(enough for the supplier to see the answers added up); and another partnership's,
opened automatically. Through the apps' services; deterministic; does nothing once any
agreement term exists."""

from __future__ import annotations

import random
from datetime import date, datetime, timedelta
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from accounts.models import Contact, Membership, Partnership, Stage
from renewals import services
from renewals.models import AgreementTerm, ValueReview
from renewals.survey import survey_answer, survey_send, survey_token

from .activity import _at

SURVEYED = ("Lanternfish Learning", "Cotswold Edge School")
ANSWERS = [
    ("a_lot", "Weekly homework and the reading logs", "Faster sync with the MIS"),
    ("a_lot", "Planning phonics groups", ""),
    ("a_little", "Homework now and then", "Simpler log-in for Year 1"),
    ("a_lot", "Every lesson in Year 5", "More training for new staff"),
    ("not_at_all", "", "We use the paper scheme instead"),
    ("a_little", "Parents' evening reports", ""),
]


def _notice_days(rng: random.Random, p: Partnership, today: date) -> int:
    days = (p.contract_end - p.contract_start).days
    notice = rng.choice([60, 90, 90])
    left = (p.contract_end - today).days
    if p.stage == Stage.RENEWAL and left > 14:
        notice = left - rng.randint(10, min(20, left - 4))  # notice due in 10-20 days
    return max(0, min(notice, days - 1))


@transaction.atomic
def seed_renewals(now: datetime | None = None) -> dict[str, int]:
    if AgreementTerm.objects.exists():
        return {}
    now = now or timezone.now()
    today = timezone.localdate(now)
    rng = random.Random(1313)
    counts = {"agreement_terms": 0, "value_reviews": 0, "survey_invitations": 0, "answers": 0}
    partnerships = list(
        Partnership.objects.exclude(stage=Stage.ENDED)
        .filter(contract_start__isnull=False, contract_end__isnull=False)
        .select_related("school", "supplier", "account_manager")
        .order_by("id")
    )
    terms: dict[int, AgreementTerm] = {}
    for p in partnerships:
        if p.account_manager is None or p.contract_end <= p.contract_start:
            continue
        with _at(now - timedelta(days=60)):
            terms[p.pk] = services.term_save(
                by=p.account_manager,
                partnership=p,
                starts_on=p.contract_start,
                ends_on=p.contract_end,
                notice_days=_notice_days(rng, p, today),
                annual_value=Decimal(rng.choice([1800, 2400, 3600, 4800, 6500])),
            )
        counts["agreement_terms"] += 1

    lead_of = {
        m.organisation_id: m.user
        for m in Membership.objects.filter(role="school_lead").select_related("user")
    }
    surveyed = next(
        (p for p in partnerships if (p.supplier.name, p.school.name) == SURVEYED and p.pk in terms),
        None,
    )
    if surveyed is not None and surveyed.school_id in lead_of:
        lead = lead_of[surveyed.school_id]
        opened = now - timedelta(days=9)
        with _at(opened):
            review = services.review_open(by=lead, term=terms[surveyed.pk])
            review.opened_at = opened  # the model's default is the real clock
            review.save(update_fields=["opened_at"])
        with _at(opened + timedelta(hours=1)):
            invitations = survey_send(
                by=lead,
                review=review,
                message="Five minutes, please: it decides whether we keep it next year.",
            )
            # And the rest of the partnership's staff (the head, IT lead, finance).
            others = Contact.objects.filter(partnership_links__partnership=surveyed).exclude(
                pk__in=[i.contact_id for i in invitations]
            )
            if others:
                invitations += survey_send(
                    by=lead, review=review, contact_ids=[c.pk for c in others]
                )
        counts["value_reviews"] += 1
        counts["survey_invitations"] += len(invitations)
        # All but one answer over the next days.
        for i, (invitation, answer) in enumerate(zip(invitations[:-1], ANSWERS, strict=False)):
            notice, uses, change = answer
            with _at(opened + timedelta(days=1 + i, hours=3)):
                survey_answer(
                    token=survey_token(invitation), notice=notice, uses=uses, change=change
                )
            counts["answers"] += 1

    auto = next(
        (
            t
            for pid, t in terms.items()
            if surveyed is None or pid != surveyed.pk
            if t.partnership.stage == Stage.RENEWAL
        ),
        None,
    )
    if auto is not None:
        with _at(now - timedelta(days=2)):
            # What the daily task does for a term whose notice date is near.
            review = services._create_review(auto, ValueReview.Opener.AUTOMATIC, None)
            review.opened_at = now - timedelta(days=2)
            review.save(update_fields=["opened_at"])
        counts["value_reviews"] += 1
    return counts
