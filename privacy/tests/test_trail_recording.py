"""Every channel records who, how and before/after: a page edit, an API edit (knox
token), an admin edit, a Celery task's change and an inbound email."""

from __future__ import annotations

from typing import Any

import pytest
from celery import shared_task
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from accounts.models import Membership
from accounts.tests.test_admin import _form_data
from audit.context import recording
from tickets.models import Ticket

PASSWORD = "correct horse battery staple"


def _latest(model: Any, pk: int) -> Any:
    return model.history.filter(id=pk).order_by("-history_id").first()


def _diff(record: Any) -> dict[str, tuple[Any, Any]]:
    previous = record.prev_record
    assert previous is not None
    return {c.field: (c.old, c.new) for c in record.diff_against(previous).changes}


def test_a_page_edit_records_the_user_the_page_and_before_after(world: Any) -> None:
    ticket = world.t_a1
    client = Client()
    client.force_login(world.users["s1_agent"])
    response = client.post(
        reverse("ticket-triage", args=[ticket.pk]),
        {"priority": "high", "category": ticket.category, "assignee": ""},
    )
    assert response.status_code in (200, 302)
    record = _latest(Ticket, ticket.pk)
    assert record.history_user == world.users["s1_agent"]
    assert (record.history_channel, record.history_via) == ("page", "ticket-triage")
    assert _diff(record)["priority"] == ("normal", "high")


def test_an_api_edit_with_a_token_records_the_token_user(world: Any) -> None:
    ticket = world.t_a1
    client = APIClient()
    token = client.post(
        "/api/v1/auth/token/", {"email": "s1_agent@example.org", "password": PASSWORD}
    ).json()["token"]
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    response = client.patch(f"/api/v1/tickets/{ticket.pk}/", {"priority": "urgent"}, format="json")
    assert response.status_code == 200, response.content
    record = _latest(Ticket, ticket.pk)
    assert record.history_user == world.users["s1_agent"]
    assert record.history_channel == "api"
    assert record.history_via.startswith("ticket")
    assert _diff(record)["priority"] == ("normal", "urgent")


def test_an_admin_edit_records_the_operator_and_the_admin(admin_client: Client, world: Any):
    membership = Membership.objects.get(user=world.users["b_teacher"])
    url = reverse("admin:accounts_membership_change", args=[membership.pk])
    data = _form_data(admin_client.get(url))
    data["role"] = "school_lead"
    response = admin_client.post(url, data)
    assert response.status_code == 302
    record = _latest(Membership, membership.pk)
    assert record.history_user is not None and record.history_user.is_superuser
    assert (record.history_channel, record.history_via) == (
        "admin",
        "admin:accounts_membership_change",
    )
    assert _diff(record)["role"] == ("teacher", "school_lead")


@shared_task(name="privacy.tests.escalate_ticket")
def escalate_ticket(ticket_id: int) -> None:
    ticket = Ticket.objects.get(pk=ticket_id)
    ticket.priority = Ticket.Priority.URGENT
    ticket.save(update_fields=["priority"])


def test_a_task_records_no_user_and_its_name(world: Any) -> None:
    escalate_ticket.delay(world.t_b2.pk)
    record = _latest(Ticket, world.t_b2.pk)
    assert record.history_user is None
    assert (record.history_channel, record.history_via) == ("task", "privacy.tests.escalate_ticket")
    assert _diff(record)["priority"] == ("normal", "urgent")


def test_a_task_run_inside_a_request_is_still_the_system_s(world: Any, rf: Any) -> None:
    """An eager task (as in tests and the embedded default) does not borrow the user of
    the request that queued it; the request's own changes afterwards do."""
    from simple_history.models import HistoricalRecords

    request = rf.get("/")
    request.user = world.users["s1_admin"]
    HistoricalRecords.context.request = request
    try:
        escalate_ticket.delay(world.t_b2.pk)
        assert _latest(Ticket, world.t_b2.pk).history_user is None
        ticket = Ticket.objects.get(pk=world.t_b2.pk)
        ticket.priority = Ticket.Priority.LOW
        ticket.save()
        after = _latest(Ticket, world.t_b2.pk)
        assert after.history_user == world.users["s1_admin"]
        assert after.history_channel == "system"
    finally:
        del HistoricalRecords.context.request


def test_recording_marks_a_block_and_the_conditional_rating_keeps_its_history(world: Any):
    from tickets.services import ticket_rate, ticket_transition

    ticket = world.t_b2
    ticket_transition(ticket=ticket, by=world.users["s2_agent"], status="in_progress")
    ticket_transition(
        ticket=Ticket.objects.get(pk=ticket.pk),
        by=world.users["s2_agent"],
        status="resolved",
        outcome="fixed",
        outcome_reason="",
    )
    with recording("inbound", "sendgrid-inbound"):
        ticket_rate(ticket=Ticket.objects.get(pk=ticket.pk), by=world.users["b_teacher"], rating=4)
    record = _latest(Ticket, ticket.pk)
    assert record.history_user == world.users["b_teacher"]
    assert (record.history_channel, record.history_via) == ("inbound", "sendgrid-inbound")
    assert _diff(record)["rating"] == (None, 4)


@pytest.mark.parametrize("argv", [["manage.py", "seed_demo"], ["./manage.py", "erase_person"]])
def test_a_management_command_is_its_own_channel(argv: list[str]) -> None:
    from audit.context import _process_default

    assert _process_default(argv) == ("command", argv[1])
    assert _process_default(["manage.py", "runserver"]) == ("system", "")
    assert _process_default(["celery", "-A", "partnership_crm", "worker"]) == ("system", "")
