"""A teacher's double tap (or a retried request) arriving twice at the same moment, on
two real PostgreSQL connections: one ticket, and both requests answer with it."""

from __future__ import annotations

import threading

import pytest
from django.db import connection, connections

from conftest import build_world
from tickets.models import Ticket, TicketEvent
from tickets.services import ticket_create


@pytest.mark.django_db(transaction=True)
def test_two_submits_with_one_idempotency_key_at_once_file_one_ticket() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("the race is only real with two PostgreSQL connections")
    world = build_world()
    teacher, partnership = world.users["a_teacher"], world.p_a1
    before = Ticket.objects.count()
    start = threading.Barrier(2)
    results: list[tuple[int, bool]] = []
    errors: list[BaseException] = []

    def submit() -> None:
        try:
            start.wait(timeout=10)
            ticket, created = ticket_create(
                by=teacher,
                partnership=partnership,
                subject="The board will not wake",
                description="Since Monday.",
                idempotency_key="tap-tap-0001",
            )
            results.append((ticket.pk, created))
        except BaseException as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=submit) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert not errors, errors
    assert Ticket.objects.count() == before + 1
    (pk,) = {pk for pk, _ in results}
    assert sorted(created for _, created in results) == [False, True]
    assert TicketEvent.objects.filter(ticket_id=pk, kind="created").count() == 1


def test_an_email_the_mail_server_refused_is_sent_by_the_retry_once(world) -> None:
    from unittest import mock

    from django.core import mail

    from tickets.notifications import send_raiser_notification
    from tickets.services import ticket_transition

    ticket = world.t_a1
    ticket_transition(ticket=ticket, by=world.s1_am, status="resolved", outcome="fixed")
    Ticket.objects.filter(pk=ticket.pk).update(notified_resolved_at=None)
    refused = mock.patch("django.core.mail.EmailMessage.send", side_effect=OSError("421 busy"))
    with refused, pytest.raises(OSError):
        send_raiser_notification(ticket_id=ticket.pk, kind="resolved")
    assert Ticket.objects.get(pk=ticket.pk).notified_resolved_at is None  # claim given back
    mail.outbox.clear()
    assert send_raiser_notification(ticket_id=ticket.pk, kind="resolved") is True
    assert send_raiser_notification(ticket_id=ticket.pk, kind="resolved") is False
    assert len(mail.outbox) == 1
