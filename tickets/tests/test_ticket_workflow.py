"""A ticket's whole life through the API, as teachers, supplier staff and school leads."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest
from django.core import mail

from tickets.models import Ticket, TicketEvent


def _file(world: Any, user: str = "a_teacher", **extra: Any) -> Any:
    body = {
        "partnership": world.p_a1.pk,
        "subject": "Login loops",
        "description": "Year 4 can't sign in",
        **extra,
    }
    return world.client(user).post("/api/v1/tickets/", body)


def _move(world: Any, user: str, ticket_id: int, status: str, **extra: Any) -> Any:
    return world.client(user).post(
        f"/api/v1/tickets/{ticket_id}/transition/", {"status": status, **extra}
    )


def test_a_teacher_files_with_a_subject_and_a_description(world: Any) -> None:
    response = _file(world)
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["status"] == "new"
    assert body["category"] == "problem"
    assert body["raised_by"] == world.a_teacher.pk
    assert body["school"] == world.school_a.pk and body["supplier"] == world.s1.pk
    assert body["sla"]["first_response_at"] is None
    assert [e["kind"] for e in body["history"]] == ["created"]


def test_a_retried_request_with_the_same_idempotency_key_files_once(world: Any) -> None:
    client = world.client("a_teacher")
    body = {"partnership": world.p_a1.pk, "subject": "S", "description": "D"}
    before = Ticket.objects.count()
    first = client.post("/api/v1/tickets/", body, HTTP_IDEMPOTENCY_KEY="abc-123")
    again = client.post("/api/v1/tickets/", body, HTTP_IDEMPOTENCY_KEY="abc-123")
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["id"] == again.json()["id"]
    assert Ticket.objects.count() == before + 1
    other = client.post("/api/v1/tickets/", body, HTTP_IDEMPOTENCY_KEY="another")
    assert other.status_code == 201
    assert Ticket.objects.count() == before + 2


def test_missing_subject_is_a_field_error_and_nothing_is_filed(world: Any) -> None:
    before = Ticket.objects.count()
    response = world.client("a_teacher").post(
        "/api/v1/tickets/", {"partnership": world.p_a1.pk, "subject": "", "description": ""}
    )
    assert response.status_code == 400
    assert {"subject", "description"} <= set(response.json())
    assert Ticket.objects.count() == before


@pytest.mark.parametrize("user", ["s1_am", "trust_lead"])
def test_only_school_staff_raise_tickets(world: Any, user: str) -> None:
    assert _file(world, user).status_code == 403


def test_a_teacher_sees_only_their_own_tickets(world: Any) -> None:
    mine = _file(world).json()["id"]
    lead_ticket = _file(world, "a_lead").json()["id"]
    ids = [t["id"] for t in world.client("a_teacher").get("/api/v1/tickets/").json()["results"]]
    assert ids == [mine, world.t_a1.pk]  # newest first; t_a1 is theirs too
    assert world.client("a_teacher").get(f"/api/v1/tickets/{lead_ticket}/").status_code == 404
    lead_ids = {t["id"] for t in world.client("a_lead").get("/api/v1/tickets/").json()["results"]}
    assert lead_ids == {mine, lead_ticket, world.t_a1.pk, world.t_a2.pk}


def test_the_suppliers_first_reply_is_the_first_response_and_emails_the_raiser(
    world: Any, django_capture_on_commit_callbacks: Any
) -> None:
    ticket_id = _file(world).json()["id"]
    with django_capture_on_commit_callbacks(execute=True):
        internal = world.client("s1_agent").post(
            f"/api/v1/tickets/{ticket_id}/messages/",
            {"body": "Looks like SSO", "is_internal": True},
        )
    assert internal.status_code == 201
    assert Ticket.objects.get(pk=ticket_id).first_response_at is None  # internal doesn't count
    assert mail.outbox == []
    with django_capture_on_commit_callbacks(execute=True):
        world.client("s1_agent").post(
            f"/api/v1/tickets/{ticket_id}/messages/", {"body": "We're on it: try clearing cookies"}
        )
        world.client("s1_agent").post(f"/api/v1/tickets/{ticket_id}/messages/", {"body": "Second"})
    ticket = Ticket.objects.get(pk=ticket_id)
    assert ticket.first_response_at is not None
    [email] = mail.outbox
    assert email.to == ["a_teacher@example.org"]
    assert "Acme Learning has responded" in email.subject
    assert "try clearing cookies" in email.body
    assert "SSO" not in email.body


def test_internal_notes_never_reach_school_users(world: Any) -> None:
    ticket_id = _file(world).json()["id"]
    url = f"/api/v1/tickets/{ticket_id}/messages/"
    world.client("s1_am").post(
        url, {"body": "Internal: school is behind on payments", "is_internal": True}
    )
    world.client("s1_am").post(url, {"body": "Public reply"})
    for user in ("a_teacher", "a_lead", "trust_lead"):
        client = world.client(user)
        listed = client.get(url).json()
        assert [m["body"] for m in listed["results"]] == ["Public reply"], user
        assert listed["count"] == 1
        detail = client.get(f"/api/v1/tickets/{ticket_id}/").json()
        assert [m["body"] for m in detail["messages"]] == ["Public reply"]
        search = client.get("/api/v1/tickets/", {"q": "payments"}).json()
        assert search["count"] == 0
        export = client.get("/api/v1/tickets/export/")
        assert b"payments" not in b"".join(export.streaming_content)
    supplier_view = world.client("s1_agent").get(url).json()
    assert [m["is_internal"] for m in supplier_view["results"]] == [True, False]


def test_school_users_cannot_write_internal_notes(world: Any) -> None:
    ticket_id = _file(world).json()["id"]
    url = f"/api/v1/tickets/{ticket_id}/messages/"
    assert (
        world.client("a_teacher").post(url, {"body": "x", "is_internal": True}).status_code == 403
    )
    assert world.client("trust_lead").post(url, {"body": "x"}).status_code == 403


def test_an_illegal_move_names_the_allowed_ones(world: Any) -> None:
    ticket_id = _file(world).json()["id"]
    refused = _move(world, "s1_agent", ticket_id, "closed")
    assert refused.status_code == 400
    assert refused.json()["allowed_statuses"] == [
        "acknowledged",
        "in_progress",
        "waiting_on_school",
        "resolved",
    ]
    teacher = _move(world, "a_teacher", ticket_id, "resolved")
    assert teacher.status_code == 400
    assert teacher.json()["allowed_statuses"] == []


def test_resolving_needs_an_outcome_and_wont_change_needs_a_reason(world: Any) -> None:
    ticket_id = _file(world).json()["id"]
    no_outcome = _move(world, "s1_agent", ticket_id, "resolved")
    assert no_outcome.status_code == 400 and "outcome" in no_outcome.json()
    no_reason = _move(world, "s1_agent", ticket_id, "resolved", outcome="wont_change")
    assert no_reason.status_code == 400 and "outcome_reason" in no_reason.json()
    assert Ticket.objects.get(pk=ticket_id).status == "new"
    ok = _move(
        world,
        "s1_agent",
        ticket_id,
        "resolved",
        outcome="wont_change",
        outcome_reason="Conflicts with the DfE guidance on data retention",
    )
    assert ok.status_code == 200
    assert ok.json()["outcome"] == "wont_change"


def test_the_whole_life_of_a_ticket(world: Any, django_capture_on_commit_callbacks: Any) -> None:
    ticket_id = _file(world, category="training_need").json()["id"]
    with django_capture_on_commit_callbacks(execute=True):
        assert _move(world, "s1_am", ticket_id, "acknowledged").status_code == 200
        assert _move(world, "s1_am", ticket_id, "in_progress").status_code == 200
        waiting = _move(world, "s1_am", ticket_id, "waiting_on_school").json()
        assert waiting["sla"]["is_paused"] is True
        assert waiting["sla"]["resolution_due_at"] is None
        # The teacher answers: the ticket goes back to the supplier and the clock runs again.
        world.client("a_teacher").post(
            f"/api/v1/tickets/{ticket_id}/messages/", {"body": "It's the Year 4 iPads"}
        )
        assert Ticket.objects.get(pk=ticket_id).status == "in_progress"
        resolved = _move(world, "s1_am", ticket_id, "resolved", outcome="training_given")
        assert resolved.status_code == 200
    assert [m.subject for m in mail.outbox] == [
        "Acme Learning has responded: Login loops",
        # The teacher's answer reaches the account manager (nobody is assigned).
        "Reply: Login loops",
        "Resolved: Login loops",
    ]
    assert mail.outbox[1].to == [world.s1_am.email]
    assert "Training given" in mail.outbox[2].body
    rated = world.client("a_teacher").post(
        f"/api/v1/tickets/{ticket_id}/rate/", {"rating": 4, "comment": "Quick"}
    )
    assert rated.status_code == 200 and rated.json()["rating"] == 4
    again = world.client("a_teacher").post(f"/api/v1/tickets/{ticket_id}/rate/", {"rating": 5})
    assert again.status_code == 400
    history = [(e["kind"], e["to_value"], e["by"]) for e in rated.json()["history"]]
    assert history == [
        ("created", "new", "A Teacher"),
        ("status", "acknowledged", "S1 Am"),
        ("first_response", "", "S1 Am"),
        ("status", "in_progress", "S1 Am"),
        ("status", "waiting_on_school", "S1 Am"),
        ("status", "in_progress", "A Teacher"),
        ("outcome", "training_given", "S1 Am"),
        ("status", "resolved", "S1 Am"),
        ("rated", "4", "A Teacher"),
    ]


def test_only_the_raiser_rates_and_only_once_resolved(world: Any) -> None:
    ticket_id = _file(world).json()["id"]
    url = f"/api/v1/tickets/{ticket_id}/rate/"
    assert world.client("a_teacher").post(url, {"rating": 5}).status_code == 400  # not resolved
    _move(world, "s1_am", ticket_id, "resolved", outcome="fixed")
    assert world.client("a_lead").post(url, {"rating": 1}).status_code == 403
    assert world.client("a_teacher").post(url, {"rating": 9}).status_code == 400
    assert world.client("a_teacher").post(url, {"rating": 5}).status_code == 200


def test_the_raiser_reopens_a_ticket_that_was_not_really_fixed(world: Any) -> None:
    ticket_id = _file(world).json()["id"]
    _move(world, "s1_am", ticket_id, "resolved", outcome="workaround")
    refused = _move(world, "a_teacher", ticket_id, "in_progress")
    assert refused.status_code == 400 and "reason" in refused.json()
    reopened = _move(world, "a_teacher", ticket_id, "in_progress", reason="Still loops")
    assert reopened.status_code == 200
    body = reopened.json()
    assert body["status"] == "in_progress" and body["outcome"] == "" and body["reopen_count"] == 1
    closed = _move(world, "a_teacher", ticket_id, "closed")
    assert closed.status_code == 400  # not resolved any more


def test_triage_assigns_to_a_colleague_only(world: Any) -> None:
    ticket_id = _file(world).json()["id"]
    url = f"/api/v1/tickets/{ticket_id}/"
    ok = world.client("s1_am").patch(url, {"assignee": world.s1_agent.pk, "priority": "high"})
    assert ok.status_code == 200
    assert ok.json()["assignee"] == world.s1_agent.pk
    kinds = [e["kind"] for e in ok.json()["history"]]
    assert "assigned" in kinds and "priority" in kinds
    other = world.client("s1_am").patch(url, {"assignee": world.s2_agent.pk})
    assert other.status_code == 400
    assert world.client("a_teacher").patch(url, {"priority": "urgent"}).status_code == 403
    reword = world.client("a_teacher").patch(url, {"subject": "Login loops on iPads"})
    assert reword.status_code == 200


def test_filters_search_and_export(world: Any) -> None:
    first = _file(world, subject="Projector cable missing", category="problem").json()["id"]
    second = _file(world, subject="Idea: dark mode", category="idea").json()["id"]
    _move(world, "s1_am", second, "resolved", outcome="changed_product")
    client = world.client("s1_am")
    assert [
        t["id"] for t in client.get("/api/v1/tickets/", {"status": "new"}).json()["results"]
    ] == [first, world.t_a1.pk]
    assert [
        t["id"] for t in client.get("/api/v1/tickets/", {"category": "idea"}).json()["results"]
    ] == [second]
    assert [
        t["id"] for t in client.get("/api/v1/tickets/", {"q": "projector"}).json()["results"]
    ] == [first]
    for words, found in (("projector", [first]), ("zz-no-such-words", [])):
        listed = client.get("/api/v1/tickets/", {"search": words}).json()["results"]
        assert [t["id"] for t in listed] == found, words
    assert [
        t["id"] for t in client.get("/api/v1/tickets/", {"is_open": "false"}).json()["results"]
    ] == [second]
    response = client.get("/api/v1/tickets/export/", {"category": "idea"})
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert [(r["id"], r["outcome"], r["school"]) for r in rows] == [
        (str(second), "changed_product", "Ashfield Primary")
    ]


def test_export_defuses_spreadsheet_formulas(world: Any) -> None:
    _file(world, subject='=HYPERLINK("http://evil")')
    text = b"".join(world.client("s1_am").get("/api/v1/tickets/export/").streaming_content).decode()
    assert "'=HYPERLINK" in text


def test_every_change_is_in_the_history_with_who_and_when(world: Any) -> None:
    ticket_id = _file(world).json()["id"]
    _move(world, "s1_am", ticket_id, "in_progress")
    events = TicketEvent.objects.filter(ticket_id=ticket_id).order_by("id")
    assert [(e.kind, e.by.email) for e in events] == [
        ("created", "a_teacher@example.org"),
        ("status", "s1_am@example.org"),
        ("first_response", "s1_am@example.org"),
    ]


def test_a_broker_outage_does_not_break_the_reply_and_the_sweeper_sends_later(
    world: Any, django_capture_on_commit_callbacks: Any, monkeypatch: Any
) -> None:
    from datetime import timedelta

    import time_machine
    from django.utils import timezone

    from tickets import tasks

    ticket_id = _file(world).json()["id"]

    def broker_down(*args: Any, **kwargs: Any) -> None:
        raise ConnectionRefusedError("broker down")

    monkeypatch.setattr(tasks.notify_raiser, "delay", broker_down)
    with django_capture_on_commit_callbacks(execute=True):
        reply = world.client("s1_am").post(f"/api/v1/tickets/{ticket_id}/messages/", {"body": "Hi"})
    assert reply.status_code == 201
    assert mail.outbox == []
    monkeypatch.undo()
    with time_machine.travel(timezone.now() + timedelta(minutes=5)):
        tasks.sweep_notifications()
        tasks.sweep_notifications()  # a second sweep sends nothing more
    sent = [m for m in mail.outbox if m.to == ["a_teacher@example.org"]]
    assert len([m for m in sent if "Login loops" in m.subject]) == 1


def test_the_fast_list_rows_are_exactly_what_the_serializer_gives(world: Any) -> None:
    from django.utils import timezone

    from tickets import sla
    from tickets.serializers import LIST_VALUES, TicketSerializer, ticket_rows

    ticket_id = _file(world).json()["id"]
    _move(world, "s1_am", ticket_id, "waiting_on_school")
    world.a_teacher.full_name = ""  # the name falls back to the email in both
    world.a_teacher.save(update_fields=["full_name"])
    tickets = list(Ticket.objects.select_related("supplier", "school", "raised_by").order_by("id"))
    now = timezone.now()
    context = {"sla": lambda t: sla.view(t, now), "request": None}
    values = list(Ticket.objects.order_by("id").values(*LIST_VALUES))
    assert ticket_rows(values, now) == TicketSerializer(tickets, many=True, context=context).data
