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
        except BaseException as exc:  # noqa: BLE001 - the test reports it
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
