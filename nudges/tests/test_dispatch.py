"""The dispatcher's rules: send windows, consent, suppression, frequency limits, batching
and every outcome recorded. The sender here records what it is given (our interface);
the real SDK against the fake SendGrid is exercised in test_integration.py."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import time_machine

from accounts.tests import factories as f
from nudges.dispatch import dispatch_due, recover
from nudges.models import Nudge, OptOut, Suppression
from nudges.sendgrid import NO_LOG, Outcome, OutgoingEmail, Sender, SendReport

LONDON = ZoneInfo("Europe/London")
MONDAY_10 = datetime(2026, 11, 23, 10, tzinfo=LONDON)


@dataclass
class RecordingSender:
    status: str = "accepted"
    batches: list[tuple[Sender, list[OutgoingEmail]]] = field(default_factory=list)

    def send(
        self, sender: Sender, emails: list[OutgoingEmail], request_log: Any = NO_LOG
    ) -> SendReport:
        emails = request_log.started(emails)
        self.batches.append((sender, emails))
        outcome = Outcome(
            status=self.status,
            message_id="msg-1",
            error="" if self.status == "accepted" else "boom",
            retry_after=30 if self.status == "retry" else None,
        )
        return SendReport(outcomes={e.nudge_id: outcome for e in emails}, calls=1)


def _due(
    world: Any, contact: Any = None, partnership: Any = None, when: datetime = MONDAY_10, **kw: Any
) -> Nudge:
    p = partnership or world.p_a1
    contact = contact or world.c_a_teacher
    return Nudge.objects.create(
        supplier_id=p.supplier_id,
        school_id=p.school_id,
        partnership=p,
        contact=contact,
        template=world.tpl_s1 if p.supplier_id == world.s1.pk else world.tpl_s2,
        occurrence=f"manual:{uuid.uuid4()}",
        due_at=when,
        next_attempt_at=when,
    )


@pytest.fixture
def quiet(world: Any) -> Any:
    """Only the nudges a test makes are due: the cast's are parked far ahead."""
    Nudge.objects.update(next_attempt_at=MONDAY_10 + timedelta(days=365))
    return world


def test_a_due_nudge_is_rendered_personally_and_sent_from_the_account_manager(quiet: Any) -> None:
    world = quiet
    nudge = _due(world)
    sender = RecordingSender()
    with time_machine.travel(MONDAY_10, tick=False):
        stats = dispatch_due(sender=sender)
    assert (stats.sent, stats.calls) == (1, 1)
    who, [email] = sender.batches[0]
    assert who.name == "S1 Am (Acme Learning)" and who.reply_to_email == "s1_am@example.org"
    assert email.subject == "Hello Ann"
    assert "How is Acme Maths going at Ashfield Primary?" in email.text
    assert "/unsubscribe/" in email.unsubscribe_url
    nudge.refresh_from_db()
    assert nudge.status == "sent" and nudge.rendered_subject == "Hello Ann"
    assert nudge.sent_at == MONDAY_10


def test_many_nudges_go_in_one_call_per_sender(quiet: Any) -> None:
    world = quiet
    for _ in range(30):
        c = f.ContactFactory(school=world.school_a)
        f.PartnershipContactFactory(partnership=world.p_a1, contact=c)
        _due(world, contact=c)
    sender = RecordingSender()
    with time_machine.travel(MONDAY_10, tick=False):
        stats = dispatch_due(sender=sender)
    assert stats.sent == 30
    assert [len(emails) for _, emails in sender.batches] == [30]


@pytest.mark.parametrize(
    "moment,expected",
    [
        (datetime(2026, 11, 23, 6, 0, tzinfo=LONDON), datetime(2026, 11, 23, 7, 30, tzinfo=LONDON)),
        (
            datetime(2026, 11, 23, 16, 45, tzinfo=LONDON),
            datetime(2026, 11, 24, 7, 30, tzinfo=LONDON),
        ),
        (
            datetime(2026, 11, 28, 10, 0, tzinfo=LONDON),
            datetime(2026, 11, 30, 7, 30, tzinfo=LONDON),
        ),
        (
            datetime(2026, 12, 25, 10, 0, tzinfo=LONDON),
            datetime(2026, 12, 29, 7, 30, tzinfo=LONDON),
        ),
    ],
    ids=["before-the-window", "after-it", "saturday", "christmas-and-boxing-day"],
)
def test_outside_the_send_window_a_nudge_waits_for_the_next_one(
    quiet: Any, moment: datetime, expected: datetime
) -> None:
    nudge = _due(quiet, when=moment)
    sender = RecordingSender()
    with time_machine.travel(moment, tick=False):
        stats = dispatch_due(sender=sender)
    assert stats.postponed == 1 and not sender.batches
    nudge.refresh_from_db()
    assert (nudge.status, nudge.next_attempt_at, nudge.attempts) == ("scheduled", expected, 0)


def test_opted_out_stopped_and_suppressed_contacts_are_skipped_with_the_reason(quiet: Any) -> None:
    world = quiet
    opted = _due(world, contact=world.c_a_it)  # a_lead stopped s1 nudging c_a_it (oo_a1)
    suppressed = _due(world, contact=world.c_a_teacher)
    Suppression.objects.create(email=world.c_a_teacher.email, reason="bounce")
    sender = RecordingSender()
    with time_machine.travel(MONDAY_10, tick=False):
        stats = dispatch_due(sender=sender)
    assert stats.skipped == 2 and not sender.batches
    opted.refresh_from_db()
    suppressed.refresh_from_db()
    assert opted.status == "skipped" and "opted out" in opted.status_reason
    assert suppressed.status == "skipped" and "bounced" in suppressed.status_reason


def test_a_contact_gets_at_most_two_nudges_a_week_across_suppliers(quiet: Any) -> None:
    world = quiet
    dsl = world.c_a_dsl  # linked to p_a2 (s2); link to p_a1 (s1) too
    f.PartnershipContactFactory(partnership=world.p_a1, contact=dsl)
    world.p_a1.nudges_per_contact_per_week = 5
    world.p_a1.save()
    world.p_a2.nudges_per_contact_per_week = 5
    world.p_a2.save()
    last_week = MONDAY_10 - timedelta(days=3)
    earlier = _due(world, contact=dsl, partnership=world.p_a2, tag="old")
    Nudge.objects.filter(pk=earlier.pk).update(status="sent", sent_at=last_week)
    first = _due(world, contact=dsl, partnership=world.p_a1, tag="1")
    second = _due(world, contact=dsl, partnership=world.p_a1, tag="2")
    sender = RecordingSender()
    with time_machine.travel(MONDAY_10, tick=False):
        stats = dispatch_due(sender=sender)
    assert (stats.sent, stats.postponed) == (1, 1)
    held = Nudge.objects.get(
        pk=second.pk if Nudge.objects.get(pk=first.pk).status == "sent" else first.pk
    )
    # Free again when the nudge of last Friday is a week old: Fri 27 Nov at 10:00.
    assert held.next_attempt_at == last_week + timedelta(days=7)
    assert "limit" in held.status_reason and "Brightboard" not in held.status_reason


def test_the_partnerships_own_weekly_limit_applies_too(quiet: Any) -> None:
    world = quiet  # p_a1 allows 1 nudge per contact per week by default
    _due(world, tag="1")
    _due(world, tag="2")
    sender = RecordingSender()
    with time_machine.travel(MONDAY_10, tick=False):
        stats = dispatch_due(sender=sender)
    assert (stats.sent, stats.postponed) == (1, 1)


def test_a_paused_partnership_sends_nothing(quiet: Any) -> None:
    world = quiet
    world.p_a1.stage = "paused"
    world.p_a1.save()
    _due(world)
    with time_machine.travel(MONDAY_10, tick=False):
        assert dispatch_due(sender=RecordingSender()).skipped == 1


def test_sendgrid_busy_means_retry_later_and_a_refusal_is_final(quiet: Any) -> None:
    world = quiet
    busy = _due(world)
    with time_machine.travel(MONDAY_10, tick=False):
        dispatch_due(sender=RecordingSender(status="retry"))
    busy.refresh_from_db()
    assert busy.status == "scheduled" and busy.next_attempt_at == MONDAY_10 + timedelta(seconds=60)
    assert busy.attempts == 1
    with time_machine.travel(MONDAY_10 + timedelta(minutes=2), tick=False):
        dispatch_due(sender=RecordingSender(status="failed"))
    busy.refresh_from_db()
    assert busy.status == "failed" and busy.last_error == "boom"


def test_a_timeout_leaves_the_nudge_unknown_and_silence_never_resends_it(quiet: Any) -> None:
    world = quiet
    nudge = _due(world)
    with time_machine.travel(MONDAY_10, tick=False):
        dispatch_due(sender=RecordingSender(status="unknown"))
        assert dispatch_due(sender=RecordingSender()).claimed == 0  # not resent
    nudge.refresh_from_db()
    assert nudge.status == "unknown"
    with time_machine.travel(MONDAY_10 + timedelta(hours=2), tick=False):
        result = recover()
        assert (result["resent"], result["held"]) == (0, 1)
        assert dispatch_due(sender=RecordingSender()).claimed == 0
    nudge.refresh_from_db()
    assert nudge.status == "held"  # for the supplier admin to decide


def test_a_claim_left_by_a_dead_worker_is_recovered_safely(quiet: Any, settings: Any) -> None:
    world = quiet
    settings.NUDGE_SETTLE_SECONDS = 3600
    never_tried = _due(world, tag="a")
    maybe_sent = _due(world, contact=world.c_a_it, tag="b")
    Nudge.objects.filter(pk__in=[never_tried.pk, maybe_sent.pk]).update(
        status="sending", claimed_at=MONDAY_10
    )
    Nudge.objects.filter(pk=maybe_sent.pk).update(send_attempted_at=MONDAY_10)
    with time_machine.travel(MONDAY_10 + timedelta(minutes=10), tick=False):
        result = recover()
    assert (result["released"], result["in_doubt"]) == (1, 1)
    assert Nudge.objects.get(pk=never_tried.pk).status == "scheduled"
    assert Nudge.objects.get(pk=maybe_sent.pk).status == "unknown"


def test_a_second_dispatcher_finds_nothing_to_claim(quiet: Any) -> None:
    _due(quiet)
    with time_machine.travel(MONDAY_10, tick=False):
        assert dispatch_due(sender=RecordingSender()).sent == 1
        assert dispatch_due(sender=RecordingSender()).claimed == 0


def test_the_dispatcher_runs_a_fixed_number_of_queries_per_batch(
    quiet: Any, django_assert_max_num_queries: Any
) -> None:
    world = quiet
    for _ in range(40):
        c = f.ContactFactory(school=world.school_a)
        f.PartnershipContactFactory(partnership=world.p_a1, contact=c)
        _due(world, contact=c)
    # 30 before each request was recorded (4 queries) and finished (1), and the per-term limit
    # was counted (2): still the same for 40 nudges as for 1,000.
    with time_machine.travel(MONDAY_10, tick=False), django_assert_max_num_queries(37):
        assert dispatch_due(sender=RecordingSender()).sent == 40


def test_an_opt_out_cancels_what_was_scheduled(world: Any) -> None:
    from nudges.services import opt_out

    opt_out(contact=world.c_b_teacher, supplier=world.s2, source=OptOut.Source.LINK)
    world.n_b2.refresh_from_db()
    assert world.n_b2.status == "skipped"


def test_the_agreements_limit_each_term_holds_the_next_nudge_until_next_term(
    quiet: Any, settings: Any
) -> None:
    from visits.hours import term_spans

    world = quiet
    settings.NUDGE_CONTACT_WEEKLY_CAP = 10
    p = world.p_a1
    p.nudges_per_contact_per_week, p.nudges_per_contact_per_term = 5, 2
    p.save(update_fields=["nudges_per_contact_per_week", "nudges_per_contact_per_term"])
    term = term_spans([p.school_id], MONDAY_10.date())[p.school_id]
    assert term.starts_on < MONDAY_10.date() - timedelta(days=14) < term.ends_on
    # Two sent this term (a fortnight ago), one the term before, which does not count.
    for when in (
        MONDAY_10 - timedelta(days=14),
        MONDAY_10 - timedelta(days=13),
        datetime.combine(term.starts_on - timedelta(days=3), MONDAY_10.timetz()),
    ):
        sent = _due(world, when=when)
        Nudge.objects.filter(pk=sent.pk).update(status="sent", sent_at=when)
    third = _due(world)
    with time_machine.travel(MONDAY_10, tick=False):
        stats = dispatch_due(sender=RecordingSender())
    assert (stats.sent, stats.postponed) == (0, 1)
    third.refresh_from_db()
    assert third.status == "scheduled"
    assert third.status_reason == "held back by the limit on emails to a member of staff each term"
    assert third.next_attempt_at.astimezone(LONDON).date() > term.ends_on
    # Another supplier's emails to the same person are not counted against this one.
    other = _due(world, partnership=world.p_a2, contact=world.c_a_teacher)
    with time_machine.travel(MONDAY_10, tick=False):
        assert dispatch_due(sender=RecordingSender()).sent == 1
    other.refresh_from_db()
    assert other.status == "sent"
