"""The SendGrid batch sender, driven through the real SDK against the loopback fake of
SendGrid's HTTP API (tests/fakes/sendgrid.py). Sleeps are recorded, not slept."""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from email import message_from_bytes, policy
from email.utils import formatdate
from pathlib import Path
from typing import Any

import pytest

from nudges.outbox import OutboxBatchSender
from nudges.sendgrid import (
    HTML_TAG,
    SUBSTITUTIONS_LIMIT,
    TEXT_TAG,
    OutgoingEmail,
    Sender,
    SendGridBatchSender,
    default_sender,
    substitutions_size,
)
from nudges.templating import render_email
from tests.fakes.sendgrid import FakeSendGrid, ReceivedRequest, Reply, closed_port

KEY = "SG.test-key"
SENDER = Sender(
    email="nudges@crm.example",
    name="Tom Whitaker (Lanternfish)",
    reply_to_email="tom@lanternfish.example",
    reply_to_name="Tom Whitaker",
)


@pytest.fixture
def fake() -> Iterator[FakeSendGrid]:
    with FakeSendGrid(api_key=KEY) as f:
        yield f


@pytest.fixture
def sleeps() -> list[float]:
    return []


def sender_for(fake: FakeSendGrid, sleeps: list[float], **kwargs: Any) -> SendGridBatchSender:
    kwargs.setdefault("timeout", 5.0)
    return SendGridBatchSender(api_key=KEY, host=fake.host, sleep=sleeps.append, **kwargs)


def email(i: int, **overrides: Any) -> OutgoingEmail:
    values: dict[str, Any] = {
        "nudge_id": i,
        "to_email": f"staff{i}@school.example",
        "to_name": f"Staff {i}",
        "subject": f"How is the pilot going, {i}?",
        "text": f"Hello {i},\n\nHow is it going?\n",
        "html": f"<p>Hello {i},</p><p>How is it going?</p>",
        "unsubscribe_url": f"https://crm.example/unsubscribe/tok{i}/",
    }
    values.update(overrides)
    return OutgoingEmail(**values)


def delivered_ids(fake: FakeSendGrid) -> list[int | None]:
    return sorted(d.nudge_id for d in fake.deliveries)  # type: ignore[type-var]


# --- As few requests as SendGrid allows -------------------------------------------------------


def test_a_thousand_emails_go_in_one_request_with_a_personalization_each(
    fake: FakeSendGrid, sleeps: list[float]
) -> None:
    emails = [email(i) for i in range(1, 1001)]
    report = sender_for(fake, sleeps).send(SENDER, emails)

    assert report.calls == 1 and fake.calls == 1
    body = fake.requests[0].json
    assert len(body["personalizations"]) == 1000
    assert body["content"] == [
        {"type": "text/plain", "value": TEXT_TAG},
        {"type": "text/html", "value": HTML_TAG},
    ]
    assert body["from"] == {"email": SENDER.email, "name": SENDER.name}
    assert body["reply_to"] == {"email": SENDER.reply_to_email, "name": SENDER.reply_to_name}
    assert {o.status for o in report.outcomes.values()} == {"accepted"}
    assert {o.message_id for o in report.outcomes.values()} == {fake.deliveries[0].message_id}
    assert delivered_ids(fake) == list(range(1, 1001))  # each exactly once


def test_each_email_of_a_batch_replies_to_its_own_address(
    fake: FakeSendGrid, sleeps: list[float]
) -> None:
    emails = [email(i, reply_to=f"reply+tok{i}@reply.example") for i in (1, 2)]
    emails.append(email(3))  # no address of its own: the sender's
    report = sender_for(fake, sleeps).send(SENDER, emails)

    assert report.calls == 1  # still one request: SendGrid substitutes reply_to per email
    replies = {d.nudge_id: d.reply_to for d in fake.deliveries}
    assert replies == {
        1: {"email": "reply+tok1@reply.example", "name": SENDER.reply_to_name},
        2: {"email": "reply+tok2@reply.example", "name": SENDER.reply_to_name},
        3: {"email": SENDER.reply_to_email, "name": SENDER.reply_to_name},
    }


def test_a_thousand_and_one_emails_take_two_requests(
    fake: FakeSendGrid, sleeps: list[float]
) -> None:
    report = sender_for(fake, sleeps).send(SENDER, [email(i) for i in range(1, 1002)])

    assert report.calls == 2 and fake.calls == 2
    assert [len(r.json["personalizations"]) for r in fake.requests] == [1000, 1]
    assert len(report.outcomes) == 1001
    assert {o.status for o in report.outcomes.values()} == {"accepted"}
    assert delivered_ids(fake) == list(range(1, 1002))


def test_each_personalization_carries_its_unsubscribe_headers_and_nudge_id(
    fake: FakeSendGrid, sleeps: list[float]
) -> None:
    sender_for(fake, sleeps).send(SENDER, [email(7), email(8)])

    for d in fake.deliveries:
        assert d.custom_args == {"nudge_id": str(d.nudge_id)}
        assert d.headers == {
            "List-Unsubscribe": f"<https://crm.example/unsubscribe/tok{d.nudge_id}/>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        }
        assert d.to == (
            {"email": f"staff{d.nudge_id}@school.example", "name": f"Staff {d.nudge_id}"},
        )


def test_the_bodies_arrive_exactly_as_rendered_with_escaping_preserved(
    fake: FakeSendGrid, sleeps: list[float]
) -> None:
    values = {
        "first_name": '<b>Ann</b> & "Co"',
        "school_name": "St Mary's & St John's",
        "unsubscribe_url": "https://crm.example/unsubscribe/abc/?a=1&b=2",
    }
    rendered = render_email(
        "Hello {{ first_name }}",
        "Hi {{ first_name }} at {{ school_name }},\n\n50% of staff use [%tags%] & $vars.",
        "",
        values,
    )
    assert "&lt;b&gt;Ann&lt;/b&gt; &amp;" in rendered.html  # the premise: escaped once
    mail = email(1, subject=rendered.subject, text=rendered.text, html=rendered.html)
    sender_for(fake, sleeps).send(SENDER, [mail, email(2)])

    (d,) = [d for d in fake.deliveries if d.nudge_id == 1]
    assert d.subject == rendered.subject
    assert d.text == rendered.text
    assert d.html == rendered.html


def test_the_same_address_twice_goes_in_separate_requests(
    fake: FakeSendGrid, sleeps: list[float]
) -> None:
    # SendGrid refuses a request naming one address twice; two nudges to one person
    # (two rules) must still both go.
    emails = [email(1), email(2, to_email="STAFF1@school.example"), email(3)]
    report = sender_for(fake, sleeps).send(SENDER, emails)

    assert report.calls == 2
    assert {o.status for o in report.outcomes.values()} == {"accepted"}
    assert delivered_ids(fake) == [1, 2, 3]


def test_an_email_too_big_for_substitutions_goes_alone_with_its_content_inline(
    fake: FakeSendGrid, sleeps: list[float]
) -> None:
    big_html = "<p>" + "Plenty to say. " * 800 + "</p>"
    big = email(2, html=big_html)
    assert substitutions_size(big) > SUBSTITUTIONS_LIMIT
    report = sender_for(fake, sleeps).send(SENDER, [email(1), big, email(3)])

    assert report.calls == 2
    batch, alone = (r.json for r in fake.requests)
    assert [p["custom_args"]["nudge_id"] for p in batch["personalizations"]] == ["1", "3"]
    assert [p["custom_args"]["nudge_id"] for p in alone["personalizations"]] == ["2"]
    assert "substitutions" not in alone["personalizations"][0]
    assert alone["content"][1] == {"type": "text/html", "value": big_html}
    assert {o.status for o in report.outcomes.values()} == {"accepted"}
    (d,) = fake.delivered_to("staff2@school.example")
    assert d.html == big_html


def test_text_that_contains_our_substitution_tags_is_sent_inline(
    fake: FakeSendGrid, sleeps: list[float]
) -> None:
    odd = email(2, subject=f"About {HTML_TAG}")
    sender_for(fake, sleeps).send(SENDER, [email(1), odd])

    (d,) = fake.delivered_to("staff2@school.example")
    assert d.subject == f"About {HTML_TAG}"
    assert d.html == odd.html


# --- Retries: only where SendGrid certainly did not take the mail -----------------------------


def test_a_429_with_retry_after_is_retried_after_that_many_seconds(
    fake: FakeSendGrid, sleeps: list[float]
) -> None:
    fake.script(Reply(429, {"Retry-After": "1"}), Reply(202))
    report = sender_for(fake, sleeps).send(SENDER, [email(1), email(2)])

    assert report.calls == 2 and fake.calls == 2
    assert sleeps == [1.0]
    assert {o.status for o in report.outcomes.values()} == {"accepted"}
    assert delivered_ids(fake) == [1, 2]


def test_x_ratelimit_reset_is_honoured_when_there_is_no_retry_after(
    fake: FakeSendGrid, sleeps: list[float]
) -> None:
    fake.script(Reply(429, {"X-RateLimit-Reset": str(int(time.time()) + 3)}))
    report = sender_for(fake, sleeps).send(SENDER, [email(1)])

    assert report.outcomes[1].status == "accepted"
    assert len(sleeps) == 1 and 1.5 <= sleeps[0] <= 3.5


def test_a_retry_after_given_as_an_http_date_is_honoured(
    fake: FakeSendGrid, sleeps: list[float]
) -> None:
    fake.script(Reply(429, {"Retry-After": formatdate(time.time() + 3, usegmt=True)}))
    report = sender_for(fake, sleeps).send(SENDER, [email(1)])

    assert report.outcomes[1].status == "accepted"
    assert len(sleeps) == 1 and 1.5 <= sleeps[0] <= 3.5


def test_a_rate_limit_longer_than_max_backoff_is_left_to_the_dispatcher(
    fake: FakeSendGrid, sleeps: list[float]
) -> None:
    fake.script(Reply(429, {"Retry-After": "120"}))
    report = sender_for(fake, sleeps, max_backoff=30).send(SENDER, [email(1)])

    assert report.calls == 1 and sleeps == []
    outcome = report.outcomes[1]
    assert outcome.status == "retry"
    assert outcome.retry_after is not None and 110 <= outcome.retry_after <= 120


def test_a_persistent_500_becomes_retry_after_max_attempts(
    fake: FakeSendGrid, sleeps: list[float]
) -> None:
    fake.default = Reply(500)
    report = sender_for(fake, sleeps, max_attempts=3, max_backoff=4).send(
        SENDER, [email(1), email(2)]
    )

    assert report.calls == 3 and fake.calls == 3
    assert len(sleeps) == 2 and all(0 < s <= 4 for s in sleeps)
    for outcome in report.outcomes.values():
        assert outcome.status == "retry"
        assert "500" in outcome.error
        assert outcome.retry_after is not None and outcome.retry_after > 0
    assert fake.deliveries == []


def test_a_timeout_is_unknown_and_never_retried(fake: FakeSendGrid, sleeps: list[float]) -> None:
    # SendGrid queues the mail, then is too slow to say so: a retry would send it twice.
    fake.default = Reply(delay=2.0)
    started = time.monotonic()
    report = sender_for(fake, sleeps, timeout=0.3).send(SENDER, [email(1), email(2)])

    assert time.monotonic() - started < 1.5
    assert fake.calls == 1 and report.calls == 1 and sleeps == []
    for outcome in report.outcomes.values():
        assert outcome.status == "unknown"
        assert "timed out" in outcome.error
    assert delivered_ids(fake) == [1, 2]  # it did go: the webhook's events will say so


def test_a_connection_dropped_after_the_request_is_unknown_and_never_retried(
    fake: FakeSendGrid, sleeps: list[float]
) -> None:
    fake.default = Reply(drop=True)
    report = sender_for(fake, sleeps).send(SENDER, [email(1)])

    assert fake.calls == 1 and report.calls == 1
    assert report.outcomes[1].status == "unknown"


def test_a_refused_connection_is_retried_then_left_for_later(sleeps: list[float]) -> None:
    sender = SendGridBatchSender(
        api_key=KEY,
        host=f"http://127.0.0.1:{closed_port()}",
        timeout=2,
        max_attempts=3,
        sleep=sleeps.append,
    )
    report = sender.send(SENDER, [email(1), email(2)])

    assert report.calls == 3 and len(sleeps) == 2
    for outcome in report.outcomes.values():
        assert outcome.status == "retry"
        assert "could not reach SendGrid" in outcome.error
        assert outcome.retry_after is not None


# --- Refusals: fail only the emails SendGrid objects to ---------------------------------------


def test_a_400_naming_one_personalization_fails_only_that_email(
    fake: FakeSendGrid, sleeps: list[float]
) -> None:
    emails = [email(i) for i in range(6)]
    emails[3] = email(3, to_email="ann@@school.example")
    report = sender_for(fake, sleeps).send(SENDER, emails)

    assert fake.answers == [400, 202]
    assert report.outcomes[3].status == "failed"
    assert "personalizations.3.to.0.email" in report.outcomes[3].error
    assert {i for i, o in report.outcomes.items() if o.status == "accepted"} == {0, 1, 2, 4, 5}
    assert delivered_ids(fake) == [0, 1, 2, 4, 5]


def test_a_400_that_names_no_email_is_bisected_to_find_it(
    fake: FakeSendGrid, sleeps: list[float]
) -> None:
    def picky(request: ReceivedRequest) -> Reply | None:
        addresses = [p["to"][0]["email"] for p in request.json["personalizations"]]
        if "staff5@school.example" in addresses:
            return Reply(400, body={"errors": [{"message": "Bad Request", "field": None}]})
        return None

    fake.default = picky
    report = sender_for(fake, sleeps).send(SENDER, [email(i) for i in range(8)])

    assert report.outcomes[5].status == "failed"
    assert {i for i, o in report.outcomes.items() if o.status == "accepted"} == (
        set(range(8)) - {5}
    )
    assert delivered_ids(fake) == [0, 1, 2, 3, 4, 6, 7]
    assert report.calls <= 1 + 2 * math.ceil(math.log2(8))


def test_bisection_is_bounded_and_leaves_the_undecided_emails_for_later(
    fake: FakeSendGrid, sleeps: list[float]
) -> None:
    fake.default = Reply(400, body={"errors": [{"message": "Bad Request", "field": None}]})
    report = sender_for(fake, sleeps, max_split_requests=4).send(
        SENDER, [email(i) for i in range(16)]
    )

    assert report.calls == 5
    # Never isolated, so never blamed: safe to send again in another batch.
    assert {o.status for o in report.outcomes.values()} == {"retry"}


def test_a_bad_from_address_fails_the_batch_without_splitting(
    fake: FakeSendGrid, sleeps: list[float]
) -> None:
    bad = Sender(email="not-an-address", name="Tom")
    report = sender_for(fake, sleeps).send(bad, [email(i) for i in range(4)])

    assert report.calls == 1
    assert {o.status for o in report.outcomes.values()} == {"failed"}
    assert "from.email" in report.outcomes[0].error


def test_a_wrong_api_key_fails_the_batch(fake: FakeSendGrid, sleeps: list[float]) -> None:
    sender = SendGridBatchSender(api_key="SG.wrong", host=fake.host, timeout=5, sleep=sleeps.append)
    report = sender.send(SENDER, [email(1), email(2)])

    assert report.calls == 1
    assert {o.status for o in report.outcomes.values()} == {"failed"}
    assert "401" in report.outcomes[1].error


def test_an_email_without_subject_fails_without_a_request(
    fake: FakeSendGrid, sleeps: list[float]
) -> None:
    report = sender_for(fake, sleeps).send(SENDER, [email(1, subject="  ")])

    assert report.calls == 0 and fake.calls == 0
    assert report.outcomes[1].status == "failed"


# --- Choosing the sender ----------------------------------------------------------------------


def test_default_sender_is_sendgrid_only_with_an_api_key(settings: Any, tmp_path: Path) -> None:
    settings.EMAIL_FILE_PATH = str(tmp_path)
    settings.SENDGRID_API_KEY = ""
    assert isinstance(default_sender(), OutboxBatchSender)
    settings.SENDGRID_API_KEY = KEY
    assert isinstance(default_sender(), SendGridBatchSender)


def test_without_an_api_key_nudges_are_written_to_the_outbox_folder(tmp_path: Path) -> None:
    report = OutboxBatchSender(tmp_path).send(SENDER, [email(1), email(2)])

    assert report.calls == 1
    assert {o.status for o in report.outcomes.values()} == {"accepted"}
    files = sorted(tmp_path.glob("*.eml"))
    assert len(files) == 2
    message = message_from_bytes(files[0].read_bytes(), policy=policy.default)
    assert message["List-Unsubscribe"] == "<https://crm.example/unsubscribe/tok1/>"
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert message["X-Nudge-Id"] == "1"
    assert message["Reply-To"] == "Tom Whitaker <tom@lanternfish.example>"
    html = message.get_body(preferencelist=("html",))
    assert html is not None and html.get_content().strip() == email(1).html


def test_a_long_unsubscribe_url_is_written_as_a_plain_header_mail_clients_read(
    tmp_path: Path,
) -> None:
    # A real signed token makes the URL longer than a 78-character line.
    url = "http://127.0.0.1:8000/unsubscribe/" + "eyJjIjo0MiwicyI6N30" * 4 + ":1vQx:AbCdEf/"
    OutboxBatchSender(tmp_path).send(SENDER, [email(1, unsubscribe_url=url)])
    [written] = tmp_path.glob("*.eml")
    raw = written.read_bytes()
    assert f"List-Unsubscribe: <{url}>\n".encode() in raw  # not =?utf-8?q?...?= words
    assert b"=?utf-8?" not in raw.split(b"\n\n", 1)[0]
