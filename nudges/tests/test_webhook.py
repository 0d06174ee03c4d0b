"""POST /webhooks/sendgrid/events/: only signed, fresh requests count; each event is
recorded once, and moves its nudge (and the address, and the contact's opt-outs) forward."""

from __future__ import annotations

import datetime as dt
import json
import time
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from nudges.events import record_events
from nudges.models import Nudge, NudgeEvent, OptOut, Suppression
from nudges.sendgrid import OutgoingEmail, Sender, SendGridBatchSender
from tests.fakes.sendgrid import EventSigner, FakeSendGrid, Reply, make_event

URL = "/webhooks/sendgrid/events/"
T0 = 1_790_000_000  # an event time, as SendGrid's unix timestamp


@pytest.fixture
def signer(settings: Any) -> EventSigner:
    s = EventSigner()
    settings.SENDGRID_WEBHOOK_PUBLIC_KEY = s.public_key
    settings.SENDGRID_WEBHOOK_MAX_AGE = 300
    return s


def post(
    client: Client,
    events: Any,
    signer: EventSigner | None,
    *,
    timestamp: int | None = None,
    body: str | None = None,
) -> Any:
    body = json.dumps(events) if body is None else body
    headers = signer.headers(body, timestamp) if signer else {}
    return client.post(URL, data=body, content_type="application/json", headers=headers)


def new_nudge(world: Any, status: str = "sending", **kwargs: Any) -> Nudge:
    now = timezone.now()
    kwargs.setdefault("occurrence", f"manual:{time.monotonic_ns()}")
    return Nudge.objects.create(
        supplier=world.s1,
        school=world.school_a,
        partnership=world.p_a1,
        contact=kwargs.pop("contact", world.c_a_teacher),
        due_at=now,
        next_attempt_at=now,
        status=status,
        subject="How is the pilot going?",
        **kwargs,
    )


def event(kind: str, nudge: Nudge, *, at: int = T0, **extra: Any) -> dict[str, Any]:
    return make_event(kind, nudge.contact.email, nudge_id=nudge.pk, timestamp=at, **extra)


# --- Who may post -----------------------------------------------------------------------------


def test_signed_events_are_recorded_once_even_when_sendgrid_posts_them_again(
    world: Any, client: Client, signer: EventSigner
) -> None:
    nudge = new_nudge(world)
    events = [event("processed", nudge), event("delivered", nudge, at=T0 + 5)]

    first = post(client, events, signer)
    assert first.status_code == 200
    assert first.json() == {"received": 2, "recorded": 2}
    again = post(client, events, signer)  # SendGrid's retry: same events, newly signed
    assert again.status_code == 200
    assert again.json() == {"received": 2, "recorded": 0}

    assert NudgeEvent.objects.count() == 2
    assert set(NudgeEvent.objects.values_list("event", "nudge_id")) == {
        ("processed", nudge.pk),
        ("delivered", nudge.pk),
    }
    nudge.refresh_from_db()
    assert (nudge.status, nudge.delivery) == ("sent", "delivered")


def test_unsigned_requests_are_refused_and_nothing_is_recorded(
    world: Any, client: Client, signer: EventSigner
) -> None:
    nudge = new_nudge(world)
    response = post(client, [event("delivered", nudge)], None)

    assert response.status_code == 403
    assert NudgeEvent.objects.count() == 0
    nudge.refresh_from_db()
    assert nudge.status == "sending"


def test_forged_signatures_are_refused(world: Any, client: Client, signer: EventSigner) -> None:
    nudge = new_nudge(world)
    events = [event("spamreport", nudge)]
    body = json.dumps(events)
    someone_else = EventSigner()
    opt_outs = OptOut.objects.count()

    assert post(client, events, someone_else).status_code == 403
    # Signed, then changed on the way.
    headers = signer.headers(json.dumps([event("delivered", nudge)]))
    response = client.post(URL, data=body, content_type="application/json", headers=headers)
    assert response.status_code == 403
    # Not even base64 (the SDK raises on it rather than saying False).
    headers = {**signer.headers(body), "X-Twilio-Email-Event-Webhook-Signature": "abc"}
    response = client.post(URL, data=body, content_type="application/json", headers=headers)
    assert response.status_code == 403

    assert NudgeEvent.objects.count() == 0
    assert OptOut.objects.count() == opt_outs and not Suppression.objects.exists()


@pytest.mark.parametrize("skew", [-301, 301], ids=["stale", "future-dated"])
def test_stale_and_future_dated_requests_are_refused(
    world: Any, client: Client, signer: EventSigner, skew: int
) -> None:
    nudge = new_nudge(world)
    response = post(client, [event("delivered", nudge)], signer, timestamp=int(time.time()) + skew)

    assert response.status_code == 403
    assert NudgeEvent.objects.count() == 0


def test_without_a_verification_key_the_webhook_refuses_everything(
    world: Any, client: Client, settings: Any
) -> None:
    settings.SENDGRID_WEBHOOK_PUBLIC_KEY = ""
    nudge = new_nudge(world)
    response = post(client, [event("delivered", nudge)], EventSigner())

    assert response.status_code == 503
    assert NudgeEvent.objects.count() == 0


def test_a_signed_body_that_is_not_a_json_list_of_events_is_a_400(
    db: Any, client: Client, signer: EventSigner
) -> None:
    assert post(client, None, signer, body="[{not json").status_code == 400
    assert post(client, None, signer, body='{"event": "delivered"}').status_code == 400


def test_only_post_is_allowed(db: Any, client: Client, signer: EventSigner) -> None:
    assert client.get(URL).status_code == 405


# --- What events mean -------------------------------------------------------------------------


@pytest.mark.parametrize("status", ["sending", "unknown"])
@pytest.mark.parametrize("kind", ["processed", "delivered"])
def test_a_processed_or_delivered_event_settles_a_sending_or_unknown_nudge_as_sent(
    world: Any, client: Client, signer: EventSigner, status: str, kind: str
) -> None:
    nudge = new_nudge(world, status=status)
    post(client, [event(kind, nudge, sg_message_id="abc123.filter0001.1.0")], signer)

    nudge.refresh_from_db()
    assert nudge.status == "sent"
    assert nudge.sent_at == dt.datetime.fromtimestamp(T0, tz=dt.UTC)
    assert nudge.sendgrid_message_id == "abc123.filter0001.1.0"
    assert nudge.delivery == ("delivered" if kind == "delivered" else "")


def test_a_late_event_stops_the_resend_of_a_nudge_put_back_in_the_queue(
    world: Any, client: Client, signer: EventSigner
) -> None:
    # UNKNOWN with no news for a while goes back to SCHEDULED; the event proves it went.
    nudge = new_nudge(world, status="scheduled")
    post(client, [event("processed", nudge)], signer)

    nudge.refresh_from_db()
    assert nudge.status == "sent"


def test_a_sent_nudge_keeps_the_time_the_dispatcher_recorded(
    world: Any, client: Client, signer: EventSigner
) -> None:
    sent_at = timezone.now() - dt.timedelta(minutes=5)
    nudge = new_nudge(world, status="sent", sent_at=sent_at, sendgrid_message_id="X-1")
    post(client, [event("delivered", nudge)], signer)

    nudge.refresh_from_db()
    assert (nudge.status, nudge.sent_at, nudge.sendgrid_message_id) == ("sent", sent_at, "X-1")


def test_delivery_never_goes_backwards(world: Any, client: Client, signer: EventSigner) -> None:
    nudge = new_nudge(world, status="sent")
    post(client, [event("click", nudge, at=T0 + 60, url="https://acme.example/")], signer)
    post(client, [event("delivered", nudge, at=T0)], signer)  # late
    post(client, [event("open", nudge, at=T0 + 30)], signer)  # late too

    nudge.refresh_from_db()
    assert nudge.delivery == "clicked"
    assert nudge.delivered_at == dt.datetime.fromtimestamp(T0, tz=dt.UTC)
    assert nudge.opened_at == dt.datetime.fromtimestamp(T0 + 30, tz=dt.UTC)
    assert nudge.clicked_at == dt.datetime.fromtimestamp(T0 + 60, tz=dt.UTC)


def test_a_bounce_marks_the_nudge_bounced_and_suppresses_the_address(
    world: Any, client: Client, signer: EventSigner
) -> None:
    nudge = new_nudge(world, status="sent")
    reason = "550 5.1.1 The email account that you tried to reach does not exist."
    bounce = event("bounce", nudge, type="bounce", status="5.1.1", reason=reason)
    bounce["email"] = nudge.contact.email.upper()
    post(client, [event("delivered", nudge), bounce], signer)

    nudge.refresh_from_db()
    assert nudge.delivery == "bounced"  # an async bounce outranks "delivered"
    suppression = Suppression.objects.get()
    assert suppression.email == nudge.contact.email.lower()
    assert (suppression.reason, suppression.detail) == ("bounce", reason)
    assert NudgeEvent.objects.get(event="bounce").reason == reason


def test_a_blocked_message_also_suppresses_the_address(
    world: Any, client: Client, signer: EventSigner
) -> None:
    nudge = new_nudge(world, status="sent")
    post(client, [event("bounce", nudge, type="blocked", reason="554 blocked")], signer)

    nudge.refresh_from_db()
    assert nudge.delivery == "bounced"
    assert Suppression.objects.get().reason == "blocked"


@pytest.mark.parametrize(
    ("reason", "suppressed"),
    [
        ("Bounced Address", True),
        ("Invalid", True),
        ("Unsubscribed Address", True),
        ("Spam Reporting Address", True),
        ("Spam Content (if spam checker app enabled)", False),
        ("Invalid SMTPAPI header", False),
    ],
)
def test_a_dropped_message_suppresses_the_address_only_when_the_address_is_at_fault(
    world: Any, client: Client, signer: EventSigner, reason: str, suppressed: bool
) -> None:
    nudge = new_nudge(world, status="sent")
    post(client, [event("dropped", nudge, reason=reason)], signer)

    nudge.refresh_from_db()
    assert nudge.delivery == "dropped"
    assert Suppression.objects.exists() is suppressed


def test_a_spam_report_opts_the_contact_out_of_that_supplier_and_suppresses_the_address(
    world: Any, client: Client, signer: EventSigner
) -> None:
    nudge = new_nudge(world, status="sent")
    post(client, [event("spamreport", nudge)], signer)

    nudge.refresh_from_db()
    assert nudge.delivery == "spam_report"
    opt_out = OptOut.objects.get(contact=world.c_a_teacher)
    assert (opt_out.supplier_id, opt_out.source) == (world.s1.pk, "spam_report")
    assert Suppression.objects.get().reason == "spam_report"


@pytest.mark.parametrize("kind", ["unsubscribe", "group_unsubscribe"])
def test_an_unsubscribe_event_opts_the_contact_out_of_that_supplier(
    world: Any, client: Client, signer: EventSigner, kind: str
) -> None:
    nudge = new_nudge(world, status="sent")
    post(client, [event(kind, nudge)], signer)
    post(client, [event(kind, nudge)], signer)  # a second one changes nothing

    opt_out = OptOut.objects.get(contact=world.c_a_teacher)
    assert (opt_out.supplier_id, opt_out.source) == (world.s1.pk, "one_click")
    assert not Suppression.objects.exists()  # other suppliers may still write
    nudge.refresh_from_db()
    assert nudge.delivery == "unsubscribed"


def test_events_of_ordinary_mail_are_recorded_without_a_nudge(
    db: Any, client: Client, signer: EventSigner
) -> None:
    bounce = make_event("bounce", "Gone@School.example", type="bounce", reason="550 no such user")
    response = post(client, [make_event("delivered", "head@school.example"), bounce], signer)

    assert response.json()["recorded"] == 2
    assert set(NudgeEvent.objects.values_list("nudge_id", flat=True)) == {None}
    assert Suppression.objects.get().email == "gone@school.example"


def test_an_event_for_an_erased_nudge_is_kept_without_a_link(db: Any) -> None:
    assert record_events([make_event("delivered", "x@school.example", nudge_id=987654)]) == 1
    assert NudgeEvent.objects.get().nudge_id is None


def test_malformed_entries_are_skipped_and_events_without_an_id_still_dedupe(db: Any) -> None:
    old_style = {"email": "a@school.example", "timestamp": T0, "event": "dropped"}
    batch = ["junk", {"no": "event"}, old_style, dict(old_style)]

    assert record_events(batch) == 1
    assert record_events(batch) == 0
    assert NudgeEvent.objects.count() == 1


# --- Cost -------------------------------------------------------------------------------------


def test_a_hundred_events_cost_the_same_queries_as_a_handful(
    world: Any, signer: EventSigner
) -> None:
    kinds = ["delivered", "bounce", "spamreport", "unsubscribe"]

    def batch(n: int) -> list[dict[str, Any]]:
        now = timezone.now()
        nudges = Nudge.objects.bulk_create(
            Nudge(
                supplier=world.s1,
                school=world.school_a,
                partnership=world.p_a1,
                contact=world.c_a_teacher,
                occurrence=f"manual:{time.monotonic_ns()}-{i}",
                due_at=now,
                next_attempt_at=now,
                status="sent",
            )
            for i in range(n)
        )
        return [event(kinds[i % 4], nudge) for i, nudge in enumerate(nudges)]

    def queries(events: list[dict[str, Any]]) -> int:
        with CaptureQueriesContext(connection) as ctx:
            assert record_events(events) == len(events)
        return len(ctx.captured_queries)

    small, large = batch(4), batch(100)
    # Equal but for SQLite's 999-parameter limit, which chunks the bulk statements (about
    # 90 rows each); PostgreSQL does each in one.
    assert queries(large) <= queries(small) + 2
    assert queries(batch(1000)) <= 40  # 28 on SQLite: never one per event


# --- End to end: the fake SendGrid posts its own signed events --------------------------------


@pytest.mark.django_db(transaction=True)
def test_the_fake_sendgrid_posts_signed_events_that_settle_unknown_nudges(
    world: Any, live_server: Any, settings: Any
) -> None:
    ok, bouncing = new_nudge(world, status="sending"), new_nudge(world, contact=world.c_a_it)
    Nudge.objects.filter(pk=bouncing.pk).update(status="sending")
    fake = FakeSendGrid(
        api_key="SG.k",
        webhook_url=f"{live_server.url}{URL}",
        bounce={world.c_a_it.email},
        event_delay=0.05,
    )
    settings.SENDGRID_WEBHOOK_PUBLIC_KEY = fake.public_key
    with fake:
        # SendGrid takes the mail but the answer is lost: "unknown", settled by the events.
        fake.default = Reply(drop=True)
        sender = SendGridBatchSender(api_key="SG.k", host=fake.host, timeout=5)
        emails = [
            OutgoingEmail(n.pk, n.contact.email, "", "Hi", "Hello", "<p>Hello</p>", "")
            for n in (ok, bouncing)
        ]
        report = sender.send(Sender("nudges@crm.example", "Tom"), emails)
        assert {o.status for o in report.outcomes.values()} == {"unknown"}
        # As the dispatcher records it: only if the events have not settled it already.
        Nudge.objects.filter(pk__in=[ok.pk, bouncing.pk], status="sending").update(status="unknown")
        assert fake.wait_for_events(10)

    assert [status for status, _ in fake.webhook_posts] == [200, 200]
    ok.refresh_from_db()
    bouncing.refresh_from_db()
    assert (ok.status, ok.delivery) == ("sent", "delivered")
    assert (bouncing.status, bouncing.delivery) == ("sent", "bounced")
    assert Suppression.objects.get().email == world.c_a_it.email.lower()
    assert NudgeEvent.objects.count() == 4
