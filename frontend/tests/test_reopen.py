"""The school's side of the conversation: emailed links land on the reader's page, a
resolved ticket is reopened (or followed up) from its page, and the supplier hears of it."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
import time_machine
from django.conf import settings
from django.core import mail
from django.utils import timezone

from tickets.models import Status, Ticket, TicketMessage
from tickets.services import ticket_post_message, ticket_transition


@pytest.fixture(autouse=True)
def _after_commit(django_capture_on_commit_callbacks):
    """Emails go after commit: run those callbacks as each test's writes commit."""
    from django.db import connection

    real = connection.on_commit

    def now(func, robust=False):
        func()

    connection.on_commit = now
    yield
    connection.on_commit = real


LINK = re.compile(r"https?://\S+")


def _resolve(world, ticket):
    return ticket_transition(ticket=ticket, by=world.s1_am, status="resolved", outcome="fixed")


def _links(message):
    return [m.rstrip(".,)") for m in LINK.findall(message.body)]


def _follow(login, user_name, url):
    assert url.startswith(settings.SITE_URL), url
    return login(user_name).get(url.removeprefix(settings.SITE_URL))


def test_every_link_in_every_ticket_email_opens_for_its_reader(world, login):
    mail.outbox.clear()
    ticket = world.t_a1
    ticket_post_message(ticket=ticket, by=world.s1_am, body="Looking at it now.")
    _resolve(world, ticket)
    ticket_post_message(ticket=ticket, by=world.a_teacher, body="Still broken.", reopen=True)
    to = {m.to[0]: m for m in mail.outbox}
    names = {u.email: n for n, u in world.users.items()}
    assert len(mail.outbox) >= 2, [m.subject for m in mail.outbox]
    for message in mail.outbox:
        reader = names[message.to[0]]
        links = _links(message)
        assert links, message.body
        for url in links:
            assert _follow(login, reader, url).status_code == 200, (reader, url)
    assert world.a_teacher.email in to and world.s1_am.email in to


def test_a_teacher_reopens_a_resolved_ticket_from_its_page_and_the_am_is_told_once(world, login):
    ticket = _resolve(world, world.t_a1)
    mail.outbox.clear()
    client = login("a_teacher")
    page = client.get(f"/my-tickets/{ticket.pk}/").content.decode()
    assert "Reopen it with this message" in page
    response = client.post(
        f"/my-tickets/{ticket.pk}/reply/", {"body": "The login still fails.", "reopen": "1"}
    )
    assert response.status_code == 302
    ticket.refresh_from_db()
    assert ticket.status == Status.IN_PROGRESS and ticket.reopen_count == 1
    reason = TicketMessage.objects.get(ticket=ticket, reopened=True)
    assert reason.body == "The login still fails."
    notices = [m for m in mail.outbox if m.to == [world.s1_am.email]]
    assert len(notices) == 1 and notices[0].subject.startswith("Reopened:")
    # A retried task sends nothing more.
    from tickets.notifications import send_supplier_notification

    assert send_supplier_notification(message_id=reason.pk) is False
    page = login("s1_am").get("/tickets/?status=open").content.decode()
    assert ticket.subject in page


def test_a_note_on_a_resolved_ticket_keeps_it_resolved_but_is_not_silent(world, login):
    ticket = _resolve(world, world.t_a1)
    mail.outbox.clear()
    client = login("a_teacher")
    client.post(f"/my-tickets/{ticket.pk}/reply/", {"body": "Thanks, all good.", "reopen": "0"})
    ticket.refresh_from_db()
    assert ticket.status == Status.RESOLVED
    assert [m.subject for m in mail.outbox if m.to == [world.s1_am.email]] == [
        f"Reply: {ticket.subject}"
    ]


def test_a_school_message_on_a_resolved_ticket_must_say_whether_it_reopens(world):
    ticket = _resolve(world, world.t_a1)
    api = world.client("a_teacher")
    response = api.post(f"/api/v1/tickets/{ticket.pk}/messages/", {"body": "Hm"}, format="json")
    assert response.status_code == 400 and "reopen" in response.json()
    assert not TicketMessage.objects.filter(ticket=ticket, body="Hm").exists()
    response = api.post(
        f"/api/v1/tickets/{ticket.pk}/messages/", {"body": "Hm", "reopen": True}, format="json"
    )
    assert response.status_code == 201 and response.json()["channel"] == "api"
    ticket.refresh_from_db()
    assert ticket.status == Status.IN_PROGRESS


def test_past_the_window_reopening_files_a_linked_follow_up(world, login):
    ticket = _resolve(world, world.t_a1)
    later = timezone.now() + timedelta(days=settings.TICKET_REOPEN_WINDOW_DAYS + 1)
    with time_machine.travel(later, tick=False):
        api = world.client("a_teacher")
        refused = api.post(
            f"/api/v1/tickets/{ticket.pk}/transition/", {"status": "in_progress"}, format="json"
        )
        assert refused.status_code == 400 and "reason" in refused.json()
        response = login("a_teacher").post(
            f"/my-tickets/{ticket.pk}/reply/", {"body": "It is back again.", "reopen": "1"}
        )
    new = Ticket.objects.get(follow_up_of=ticket)
    assert response["Location"] == f"/my-tickets/{new.pk}/"
    assert new.description == "It is back again." and new.status == Status.NEW
    ticket.refresh_from_db()
    assert ticket.status == Status.RESOLVED and ticket.reopen_count == 0


def test_supplier_side_cannot_be_told_twice_and_internal_notes_never_notify(world):
    mail.outbox.clear()
    ticket_post_message(ticket=world.t_a1, by=world.s1_am, body="note", is_internal=True)
    assert [m for m in mail.outbox if m.to == [world.s1_am.email]] == []
