"""Ordinary mail (ticket notifications, password resets) through SendGridEmailBackend and
the real SDK, against the loopback fake of SendGrid's API."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.core import mail
from django.core.mail import EmailMultiAlternatives, get_connection, send_mail

from nudges.backends import SendGridEmailBackend, SendGridSendError
from tests.fakes.sendgrid import FakeSendGrid, Reply

KEY = "SG.backend-key"
BACKEND = "nudges.backends.SendGridEmailBackend"


@pytest.fixture
def fake() -> Iterator[FakeSendGrid]:
    with FakeSendGrid(api_key=KEY) as f:
        yield f


@pytest.fixture
def sleeps() -> list[float]:
    return []


def connection(fake: FakeSendGrid, sleeps: list[float], **kwargs: Any) -> Any:
    kwargs.setdefault("timeout", 5)
    return get_connection(BACKEND, api_key=KEY, host=fake.host, sleep=sleeps.append, **kwargs)


def test_send_mail_reaches_sendgrid_with_subject_body_and_reply_to(
    fake: FakeSendGrid, sleeps: list[float]
) -> None:
    message = EmailMultiAlternatives(
        subject="Acme Learning has responded: Logins fail",
        body="Hello Ann,\n\nWe are on it.\n",
        from_email="Partnership CRM <no-reply@crm.example>",
        to=["Ann Teacher <ann@school.example>"],
        cc=["lead@school.example"],
        reply_to=["Tom Whitaker <tom@acme.example>"],
        headers={"X-Ticket": "42"},
        connection=connection(fake, sleeps),
    )
    message.attach_alternative("<p>Hello Ann,</p><p>We are on it.</p>", "text/html")
    message.attach("notes.txt", "Step 1: sign in again.", "text/plain")

    assert message.send() == 1

    (d,) = fake.deliveries
    assert d.from_ == {"email": "no-reply@crm.example", "name": "Partnership CRM"}
    assert d.to == ({"email": "ann@school.example", "name": "Ann Teacher"},)
    assert d.cc == ({"email": "lead@school.example"},)
    assert d.reply_to == {"email": "tom@acme.example", "name": "Tom Whitaker"}
    assert d.subject == "Acme Learning has responded: Logins fail"
    assert d.text == "Hello Ann,\n\nWe are on it.\n"
    assert d.html == "<p>Hello Ann,</p><p>We are on it.</p>"
    assert d.headers == {"X-Ticket": "42"}
    (attachment,) = fake.requests[0].json["attachments"]
    assert attachment["filename"] == "notes.txt" and attachment["type"] == "text/plain"


def test_send_mail_uses_it_when_it_is_the_configured_backend(
    fake: FakeSendGrid, settings: Any
) -> None:
    settings.EMAIL_BACKEND = BACKEND
    settings.SENDGRID_API_KEY = KEY
    settings.SENDGRID_API_HOST = fake.host
    settings.SENDGRID_TIMEOUT = 5
    settings.DEFAULT_FROM_EMAIL = "Partnership CRM <no-reply@crm.example>"

    sent = send_mail("Reset your password", "Follow the link.", None, ["ann@school.example"])

    assert sent == 1
    (d,) = fake.deliveries
    assert (d.subject, d.text, d.html) == ("Reset your password", "Follow the link.", None)
    assert d.from_ == {"email": "no-reply@crm.example", "name": "Partnership CRM"}
    assert not hasattr(mail, "outbox") or mail.outbox == []


def test_an_address_named_twice_is_sent_to_once(fake: FakeSendGrid, sleeps: list[float]) -> None:
    # SendGrid refuses a request that names an address twice anywhere.
    sent = send_mail(
        "Hi",
        "Body",
        "crm@crm.example",
        ["ann@school.example", "Ann@School.example"],
        connection=connection(fake, sleeps),
    )

    assert sent == 1
    assert fake.deliveries[0].to == ({"email": "ann@school.example"},)


def test_a_500_raises_unless_fail_silently(fake: FakeSendGrid, sleeps: list[float]) -> None:
    fake.default = Reply(500)

    with pytest.raises(SendGridSendError) as raised:
        send_mail("Hi", "Body", None, ["ann@school.example"], connection=connection(fake, sleeps))
    assert raised.value.outcome == "retry" and raised.value.status == 500
    assert fake.calls == 3 and len(sleeps) == 2  # retried, then gave up

    quiet = connection(fake, sleeps, fail_silently=True)
    assert send_mail("Hi", "Body", None, ["ann@school.example"], connection=quiet) == 0
    assert fake.deliveries == []


def test_a_timeout_raises_as_unknown_and_is_not_retried(
    fake: FakeSendGrid, sleeps: list[float]
) -> None:
    fake.default = Reply(delay=2.0)

    with pytest.raises(SendGridSendError) as raised:
        send_mail(
            "Hi",
            "Body",
            None,
            ["ann@school.example"],
            connection=connection(fake, sleeps, timeout=0.3),
        )
    assert raised.value.outcome == "unknown"
    assert fake.calls == 1 and sleeps == []


def test_a_refusal_raises_as_failed(fake: FakeSendGrid, sleeps: list[float]) -> None:
    with pytest.raises(SendGridSendError) as raised:
        send_mail("Hi", "Body", None, ["not an address"], connection=connection(fake, sleeps))
    assert raised.value.outcome == "failed" and raised.value.status == 400
    assert "personalizations.0.to.0.email" in str(raised.value)


def test_the_backend_needs_an_api_key(settings: Any) -> None:
    settings.SENDGRID_API_KEY = ""
    with pytest.raises(ValueError, match="API key"):
        SendGridEmailBackend()
