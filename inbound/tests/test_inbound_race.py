"""The same reply delivered twice at once (Parse retrying a slow answer, or two Parse
hosts) is stored once: two real PostgreSQL connections race on the Message-ID key."""

from __future__ import annotations

import threading

import pytest
from django.db import connection, connections

from conftest import build_world
from inbound.parse import from_mime
from inbound.services import receive
from partnership_crm.reply_tokens import reply_address
from tests.fakes import inbound_parse as fake
from tickets.models import TicketMessage


@pytest.mark.django_db(transaction=True)
def test_two_deliveries_of_one_reply_at_once_make_one_message() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("the race is only real with two PostgreSQL connections")
    world = build_world()
    ticket, teacher = world.t_a1, world.users["a_teacher"]
    reply_to = reply_address("ticket", ticket.pk, teacher.pk)
    raw = fake.gmail_reply(teacher.email, reply_to, "Re", "Only once, please.").as_bytes()
    start = threading.Barrier(2)
    outcomes: list[str] = []

    def deliver() -> None:
        try:
            message = from_mime(raw)
            start.wait(timeout=10)
            outcomes.append(receive(message).status)
        finally:
            connections.close_all()  # this thread's own connection

    threads = [threading.Thread(target=deliver) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert sorted(outcomes) == ["accepted", "duplicate"]
    assert TicketMessage.objects.filter(ticket=ticket, body="Only once, please.").count() == 1
