"""A nudge whose request may or may not have reached SendGrid ("in doubt") is settled by
evidence, never resent on silence: only the request in flight is in doubt, one event for
any email of a request confirms the whole request, events for later requests but none for
it mean it never arrived, and without either it is held for the supplier admin, who sends
it again or leaves it. A resend is the same email as the first attempt."""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.core.exceptions import ValidationError
from django.db import connection, connections

from accounts.tests import factories as f
from nudges.dispatch import dispatch_due, recover
from nudges.events import record_events
from nudges.models import Nudge, SendAttempt
from nudges.sendgrid import NO_LOG, Outcome, OutgoingEmail, PostResult, Sender, SendReport
from nudges.services import held_drop, held_resend
from tests.fakes.sendgrid import make_event

from .test_dispatch import _due, quiet  # noqa: F401  (quiet is a fixture)
from .test_faults import make_due_nudges

LONDON = ZoneInfo("Europe/London")
MONDAY_10 = datetime(2026, 11, 23, 10, tzinfo=LONDON)


class WorkerDied(Exception):
    """Stands for a SIGKILL during a request: started, never finished."""


@dataclass
class ScriptedSender:
    """One request per send() call, answered in turn from the script: accepted, unknown
    (the answer was lost), retry (SendGrid busy) or crash."""

    script: list[str] = field(default_factory=list)
    requests: list[list[OutgoingEmail]] = field(default_factory=list)

    def send(
        self, sender: Sender, emails: list[OutgoingEmail], request_log: Any = NO_LOG
    ) -> SendReport:
        going = request_log.started(emails)
        self.requests.append(going)
        kind = self.script.pop(0) if self.script else "accepted"
        if kind == "crash":
            raise WorkerDied
        message_id = f"msg-{len(self.requests)}" if kind == "accepted" else ""
        error = "" if kind == "accepted" else f"{kind} (scripted)"
        request_log.finished(going, PostResult(kind, message_id=message_id, error=error))
        outcome = Outcome(
            kind, error=error, message_id=message_id, retry_after=30 if kind == "retry" else None
        )
        return SendReport(outcomes={e.nudge_id: outcome for e in going}, calls=1)

    def sent_to(self, nudge_id: int) -> list[OutgoingEmail]:
        return [e for request in self.requests for e in request if e.nudge_id == nudge_id]


def new_contact(world: Any) -> Any:
    c = f.ContactFactory(school=world.school_a)
    f.PartnershipContactFactory(partnership=world.p_a1, contact=c)
    return c


def statuses(ids: list[int]) -> Counter[str]:
    return Counter(Nudge.objects.filter(pk__in=ids).values_list("status", flat=True))


def processed(nudge_id: int) -> dict[str, Any]:
    n = Nudge.objects.select_related("contact").get(pk=nudge_id)
    return make_event("processed", n.contact.email, nudge_id=nudge_id)


def test_only_the_request_in_flight_when_a_worker_dies_is_in_doubt(db: Any, settings: Any) -> None:
    settings.NUDGE_SETTLE_SECONDS = 3600
    with time_machine.travel(MONDAY_10, tick=False):
        ids = make_due_nudges(30)  # three account managers: three requests of 10
        with pytest.raises(WorkerDied):
            dispatch_due(sender=ScriptedSender(["accepted", "crash"]))
    # Two requests were made; the third sender's emails never left.
    assert SendAttempt.objects.count() == 2
    with time_machine.travel(MONDAY_10 + timedelta(minutes=6), tick=False):
        result = recover()
    assert (result["released"], result["in_doubt"]) == (10, 10)
    assert statuses(ids) == {"sent": 10, "unknown": 10, "scheduled": 10}
    with time_machine.travel(MONDAY_10 + timedelta(minutes=7), tick=False):
        again = ScriptedSender()
        assert dispatch_due(sender=again).sent == 10
    assert statuses(ids) == {"sent": 20, "unknown": 10}
    # None of the ten in doubt was sent a second time.
    unknown = set(Nudge.objects.filter(pk__in=ids, status="unknown").values_list("pk", flat=True))
    assert not unknown & {e.nudge_id for r in again.requests for e in r}


def test_a_nudge_in_doubt_does_not_count_against_the_weekly_limit(quiet: Any) -> None:  # noqa: F811
    world = quiet
    assert world.p_a1.nudges_per_contact_per_week == 1
    first = _due(world)
    with time_machine.travel(MONDAY_10, tick=False):
        dispatch_due(sender=ScriptedSender(["unknown"]))
    first.refresh_from_db()
    assert first.status == "unknown"
    # Had the first arrived, the partnership's limit of one a week would hold this back.
    second = _due(world, when=MONDAY_10 + timedelta(hours=1))
    with time_machine.travel(MONDAY_10 + timedelta(hours=1), tick=False):
        assert dispatch_due(sender=ScriptedSender()).sent == 1
    second.refresh_from_db()
    assert second.status == "sent"


def test_one_event_for_any_email_of_a_request_confirms_the_whole_request(db: Any) -> None:
    with time_machine.travel(MONDAY_10, tick=False):
        ids = make_due_nudges(6)
        sender = ScriptedSender(["unknown", "unknown", "unknown"])
        dispatch_due(sender=sender)
    first_request = [e.nudge_id for e in sender.requests[0]]
    assert len(first_request) == 2
    with time_machine.travel(MONDAY_10 + timedelta(minutes=1), tick=False):
        record_events([processed(first_request[0])])
        result = recover()
    assert result["confirmed"] == 1  # the other email of that request
    assert statuses(first_request) == {"sent": 2}
    assert statuses(ids) == {"sent": 2, "unknown": 4}


def test_a_request_with_no_events_while_later_requests_have_them_is_sent_again_once(
    quiet: Any,  # noqa: F811
) -> None:
    world = quiet
    lost = _due(world)
    with time_machine.travel(MONDAY_10, tick=False):
        first = ScriptedSender(["unknown"])
        dispatch_due(sender=first)
    # Two minutes later another request is accepted and SendGrid's events for it arrive.
    later = _due(world, contact=new_contact(world), when=MONDAY_10 + timedelta(minutes=2))
    with time_machine.travel(MONDAY_10 + timedelta(minutes=2), tick=False):
        dispatch_due(sender=ScriptedSender())
        record_events([processed(later.pk)])
    with time_machine.travel(MONDAY_10 + timedelta(minutes=6), tick=False):
        result = recover()
        assert result["resent"] == 1
        second = ScriptedSender()
        assert dispatch_due(sender=second).sent == 1
    lost.refresh_from_db()
    assert lost.status == "sent"
    [before], [after] = first.sent_to(lost.pk), second.sent_to(lost.pk)
    # The same email: rendered once, its unsubscribe footer not added a second time.
    assert (after.subject, after.text, after.html) == (before.subject, before.text, before.html)
    assert after.text.count("Unsubscribe:") == 1


def test_events_for_a_request_made_seconds_later_are_evidence_after_the_settle_time(
    quiet: Any,  # noqa: F811
) -> None:
    world = quiet
    lost = _due(world)
    with time_machine.travel(MONDAY_10, tick=False):
        dispatch_due(sender=ScriptedSender(["unknown"]))
    later = _due(world, contact=new_contact(world), when=MONDAY_10)
    with time_machine.travel(MONDAY_10 + timedelta(seconds=3), tick=False):
        dispatch_due(sender=ScriptedSender())
        record_events([processed(later.pk)])
    with time_machine.travel(MONDAY_10 + timedelta(minutes=4), tick=False):
        assert recover()["resent"] == 0  # not before the settle time
    with time_machine.travel(MONDAY_10 + timedelta(minutes=6), tick=False):
        assert recover()["resent"] == 1
    lost.refresh_from_db()
    assert lost.status == "scheduled"


def test_a_retry_sends_the_stored_rendering_with_one_footer(quiet: Any) -> None:  # noqa: F811
    world = quiet
    nudge = _due(world)
    sender = ScriptedSender(["retry"])
    with time_machine.travel(MONDAY_10, tick=False):
        dispatch_due(sender=sender)
    with time_machine.travel(MONDAY_10 + timedelta(minutes=5), tick=False):
        dispatch_due(sender=sender)
    first, second = sender.sent_to(nudge.pk)
    assert second.text == first.text and second.html == first.html
    assert second.text.count("Unsubscribe:") == 1 and second.html.count(">Unsubscribe<") == 1
    nudge.refresh_from_db()
    assert nudge.body_text == ""  # the template's wording is still the source


def _held(world: Any, **kw: Any) -> Nudge:
    nudge = _due(world, **kw)
    with time_machine.travel(MONDAY_10, tick=False):
        dispatch_due(sender=ScriptedSender(["unknown"]))
    with time_machine.travel(MONDAY_10 + timedelta(minutes=10), tick=False):
        recover()
    nudge.refresh_from_db()
    assert nudge.status == "held"
    return nudge


def test_with_no_events_at_all_it_is_held_and_the_supplier_admin_sends_it_again(
    quiet: Any,  # noqa: F811
) -> None:
    world = quiet
    nudge = _held(world)
    url = f"/api/v1/nudges/{nudge.pk}/resend/"
    listed = world.client("s1_admin").get("/api/v1/nudges/", {"status": "held"}).json()
    assert [n["id"] for n in listed["results"]] == [nudge.pk]
    assert world.client("s1_am").post(url).status_code == 403  # admins decide
    assert world.client("s2_admin").post(url).status_code == 404  # another supplier's
    with time_machine.travel(MONDAY_10 + timedelta(minutes=11), tick=False):
        answer = world.client("s1_admin").post(url)
        assert answer.status_code == 200, answer.content
        assert answer.json()["status"] == "scheduled" and answer.json()["decided_at"]
        assert "S1 Admin" in answer.json()["status_reason"]
        assert world.client("s1_admin").post(url).status_code == 400  # decided already
        sender = ScriptedSender()
        assert dispatch_due(sender=sender).sent == 1
    [again] = sender.sent_to(nudge.pk)
    assert again.subject == nudge.rendered_subject and again.text == nudge.rendered_text


def test_the_supplier_admin_may_leave_a_nudge_in_doubt_unsent(quiet: Any) -> None:  # noqa: F811
    world = quiet
    nudge = _held(world)
    answer = world.client("s1_admin").post(f"/api/v1/nudges/{nudge.pk}/drop/")
    assert answer.status_code == 200 and answer.json()["status"] == "cancelled"
    with time_machine.travel(MONDAY_10 + timedelta(hours=1), tick=False):
        recover()
        assert dispatch_due(sender=ScriptedSender()).claimed == 0


def test_a_late_event_settles_a_held_nudge_as_sent(quiet: Any) -> None:  # noqa: F811
    nudge = _held(quiet)
    record_events([processed(nudge.pk)])
    nudge.refresh_from_db()
    assert nudge.status == "sent"


@pytest.mark.django_db(transaction=True)
def test_two_admins_deciding_at_once_make_one_decision() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("needs two real connections on PostgreSQL")
    from conftest import build_world

    world = build_world()
    nudge = _held(world)
    barrier = threading.Barrier(2)
    results: dict[str, str] = {}

    def decide(name: str, action: Any) -> None:
        try:
            barrier.wait(timeout=10)
            action(nudge=Nudge.objects.get(pk=nudge.pk), by=world.users["s1_admin"])
            results[name] = "done"
        except ValidationError:
            results[name] = "refused"
        finally:
            connections.close_all()

    threads = [
        threading.Thread(target=decide, args=("resend", held_resend)),
        threading.Thread(target=decide, args=("drop", held_drop)),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert sorted(results.values()) == ["done", "refused"]
    nudge.refresh_from_db()
    assert nudge.status == ("scheduled" if results["resend"] == "done" else "cancelled")
    assert nudge.decided_by_id == world.users["s1_admin"].pk


def test_each_request_is_recorded_with_its_outcome(quiet: Any) -> None:  # noqa: F811
    world = quiet
    a, b = _due(world), _due(world, contact=new_contact(world))
    with time_machine.travel(MONDAY_10, tick=False):
        dispatch_due(sender=ScriptedSender(["unknown"]))
    attempt = SendAttempt.objects.get()
    assert (attempt.emails, attempt.outcome, attempt.finished_at is not None) == (
        2,
        "unknown",
        True,
    )
    assert set(attempt.nudges.values_list("pk", flat=True)) == {a.pk, b.pk}
