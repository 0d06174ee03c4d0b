"""Demo activity on top of accounts.demo's organisations and people: tickets with replies,
outcomes and ratings, technical surveys with readiness, visits and time on site, nudge
templates and rules. Everything goes through the apps' own services, so the demo obeys
the same rules as real use; history is written by running those services at past
moments. Deterministic, and it does nothing if tickets already exist."""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from unittest import mock

from django.db import transaction
from django.utils import timezone

from accounts.models import Contact, Membership, Partnership
from nudges.models import NudgeRule, NudgeTemplate
from nudges.planner import plan
from tickets.models import Ticket
from tickets.services import ticket_create, ticket_post_message, ticket_rate, ticket_transition
from visits.models import ReadinessArea
from visits.services import assessment_save, time_entry_create, visit_complete, visit_create

ACTIVE = ["pilot", "expansion", "whole_school", "renewal"]
SUBJECTS = [
    ("Pupils can't log in on the Year 4 iPads", "problem"),
    ("How do I set homework for two classes at once?", "question"),
    ("Could the reports show reading age?", "idea"),
    ("Need a refresher for new staff in January", "training_need"),
    ("The new dashboard is brilliant", "praise"),
    ("Sync with the MIS missed the new starters", "problem"),
]


@contextmanager
def _at(moment: datetime) -> Iterator[None]:
    """Run the services as if at ``moment`` (they all ask django.utils.timezone.now)."""
    with mock.patch("django.utils.timezone.now", return_value=moment):
        yield


def _weekday(now: datetime, weekdays: int, hour: int) -> datetime:
    """The moment ``weekdays`` weekdays from ``now`` (negative: back), at ``hour``: distinct
    offsets give distinct days, so one person's demo visits never overlap."""
    day, step = now, 1 if weekdays >= 0 else -1
    remaining = abs(weekdays)
    while remaining or day.weekday() >= 5:
        day += timedelta(days=step)
        if day.weekday() < 5 and remaining:
            remaining -= 1
    return day.replace(hour=hour, minute=0, second=0, microsecond=0)


@transaction.atomic
def seed_activity(now: datetime | None = None) -> dict[str, int]:
    if Ticket.objects.exists():
        return {}
    now = now or timezone.now()
    rng = random.Random(2026)
    counts = {"tickets": 0, "visits": 0, "templates": 0, "rules": 0}
    partnerships = list(
        Partnership.objects.filter(stage__in=ACTIVE).select_related(
            "school", "supplier", "account_manager"
        )
    )
    school_users = {}
    for m in Membership.objects.filter(role__in=["teacher", "school_lead"]).select_related("user"):
        school_users.setdefault(m.organisation_id, []).append(m)

    for i, p in enumerate(partnerships):
        am = p.account_manager
        if am is None:
            continue
        contacts = list(Contact.objects.filter(partnership_links__partnership=p)[:3])
        # A technical survey six weeks ago, rated ready (the gate's evidence).
        start = _weekday(now, -(30 + i), 9)
        with _at(start - timedelta(days=7)):
            survey = visit_create(
                by=am,
                partnership=p,
                kind="technical_survey",
                starts_at=start,
                ends_at=start + timedelta(hours=3),
                attendees=[am],
                contacts=contacts[:1],
                agenda="Network, wifi, devices, SSO, MIS, filtering, DPIA, SEND",
            )
        with _at(start + timedelta(hours=3)):
            visit_complete(visit=survey, by=am, notes="Good coverage; one wifi dead spot.")
            assessment_save(
                visit=survey,
                by=am,
                outcome="ready_with_conditions",
                summary="Ready; an access point is needed in the Year 5 block.",
                checks=[
                    {"area": a, "result": "concern" if a == "wifi" else "pass", "notes": ""}
                    for a in ReadinessArea.values
                ],
                actions=[
                    {
                        "description": "Add an access point in the Year 5 block",
                        "owner": "school",
                        "due_on": (start + timedelta(days=21)).date(),
                    }
                ],
            )
        # Training three weeks ago, and support booked for next week.
        training = _weekday(now, -(5 + i), 13)
        with _at(training - timedelta(days=5)):
            past = visit_create(
                by=am,
                partnership=p,
                kind="training",
                starts_at=training,
                ends_at=training + timedelta(hours=2),
                attendees=[am],
                contacts=contacts,
            )
        with _at(training + timedelta(hours=2)):
            visit_complete(visit=past, by=am)
            time_entry_create(
                by=am,
                partnership=p,
                date=training.date(),
                minutes=45,
                mode="remote",
                activity="planning",
                notes="Prepared the staff twilight",
            )
        upcoming = _weekday(now, 3 + i, 10)
        visit_create(
            by=am,
            partnership=p,
            kind="onsite_support",
            starts_at=upcoming,
            ends_at=upcoming + timedelta(hours=2),
            attendees=[am],
            contacts=contacts[:1],
            agenda="Drop-in for staff questions",
        )
        counts["visits"] += 3

        raisers = [
            m.user
            for m in school_users.get(p.school_id, [])
            if Partnership.objects.visible_to(m.user).filter(pk=p.pk).exists()
        ]
        if not raisers:
            continue
        for j, (subject, category) in enumerate(rng.sample(SUBJECTS, 3)):
            raiser = raisers[j % len(raisers)]
            raised = _weekday(now, -(1 + 4 * j + i % 3), 10 + j)
            with _at(raised):
                ticket, _ = ticket_create(
                    by=raiser,
                    partnership=p,
                    subject=subject,
                    category=category,
                    description=f"{subject}. Noticed this week at {p.school.name}.",
                )
            counts["tickets"] += 1
            if j == 0:
                continue  # one stays new: the supplier's queue has something to do
            with _at(raised + timedelta(hours=2 + 5 * (i % 3))):
                ticket_post_message(
                    ticket=ticket, by=am, body="Thanks for flagging this; looking into it now."
                )
                ticket_transition(ticket=ticket, by=am, status="in_progress")
            if j == 2:
                with _at(raised + timedelta(days=2)):
                    ticket = ticket_transition(
                        ticket=ticket,
                        by=am,
                        status="resolved",
                        outcome=rng.choice(["fixed", "training_given", "workaround"]),
                    )
                with _at(raised + timedelta(days=3)):
                    ticket_rate(
                        ticket=ticket, by=raiser, rating=rng.choice([3, 4, 4, 5]), comment="Thanks"
                    )

    for supplier_id in {p.supplier_id for p in partnerships}:
        am = next(
            p.account_manager
            for p in partnerships
            if p.supplier_id == supplier_id and p.account_manager
        )
        template = NudgeTemplate.objects.create(
            supplier_id=supplier_id,
            name="Pilot check-in",
            created_by=am,
            subject="How is {{ product_name }} going, {{ first_name }}?",
            body_text=(
                "Hi {{ first_name }},\n\nHow are you finding {{ product_name }} at {{ school_name }}? "
                "If anything is getting in the way, reply to this email and I'll sort it.\n\n"
                "Next visit: {{ next_visit }}.\n\n{{ account_manager_signature }}"
            ),
        )
        NudgeRule.objects.create(
            supplier_id=supplier_id,
            template=template,
            name="Cohort check-in every 3 school weeks",
            trigger="cadence",
            every_n_school_weeks=3,
            audience_cohort=True,
            stages="pilot,expansion",
            created_by=am,
        )
        counts["templates"] += 1
        counts["rules"] += 1
    counts["nudges_planned"] = plan(now=now)
    return counts
