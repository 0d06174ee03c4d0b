"""Filing feedback (once, whatever the double submits), following it, rating it."""

from __future__ import annotations

import uuid

from tickets.models import Ticket
from tickets.services import ticket_transition


def _file(client, token, **extra):
    data = {
        "token": str(token),
        "subject": "Logins fail in ICT suite",
        "description": "Every Year 6 login fails since the update.",
        "category": "",
        **extra,
    }
    return client.post("/feedback/", data)


def test_a_teacher_with_one_partnership_is_not_asked_which(world, login):
    html = login("a_teacher").get("/feedback/").content.decode()
    assert 'type="hidden" name="partnership"' in html
    assert "About <strong>Acme Maths (Acme Learning)</strong>" in html
    assert 'name="token"' in html


def test_a_lead_with_several_partnerships_chooses_one(world, login):
    html = login("a_lead").get("/feedback/").content.decode()
    assert '<select name="partnership"' in html
    assert "Acme Maths (Acme Learning)" in html and "Brightboard Reading (Brightboard)" in html


def test_feedback_is_filed_and_shown_to_its_raiser(world, login):
    client = login("a_teacher")
    response = _file(client, uuid.uuid4(), partnership=world.p_a1.pk)
    ticket = Ticket.objects.get(subject="Logins fail in ICT suite")
    assert response.status_code == 302 and response["Location"] == f"/my-tickets/{ticket.pk}/"
    assert ticket.raised_by == world.a_teacher and ticket.partnership == world.p_a1
    assert ticket.category == "problem"  # "not sure" files as a problem
    page = client.get(response["Location"]).content.decode()
    assert "Your feedback is with Acme Learning" in page


def test_the_one_time_token_files_a_double_submit_once(world, login):
    client = login("a_teacher")
    token = uuid.uuid4()
    first = _file(client, token, partnership=world.p_a1.pk)
    second = _file(client, token, partnership=world.p_a1.pk)
    assert Ticket.objects.filter(subject="Logins fail in ICT suite").count() == 1
    assert first["Location"] == second["Location"]
    assert "filed already" in client.get(second["Location"]).content.decode()
    _file(client, uuid.uuid4(), partnership=world.p_a1.pk)  # a new form is a new ticket
    assert Ticket.objects.filter(subject="Logins fail in ICT suite").count() == 2


def test_missing_fields_and_a_bad_token_are_form_errors(world, login):
    client = login("a_teacher")
    response = client.post("/feedback/", {"token": "not-a-uuid", "subject": "", "description": ""})
    assert response.status_code == 422
    html = response.content.decode()
    assert "This field is required." in html
    assert 'aria-invalid="true"' in html
    assert Ticket.objects.filter(raised_by=world.a_teacher).count() == 1


def test_a_partnership_outside_the_teachers_scope_is_a_form_error(world, login):
    response = _file(login("a_teacher"), uuid.uuid4(), partnership=world.p_b2.pk)
    assert response.status_code == 422
    assert "Select a valid choice" in response.content.decode()


def test_a_teacher_in_no_roll_out_is_told_so(world, login):
    world.p_a1.contact_links.all().delete()
    world.ph_a1.cohort.clear()
    html = login("a_teacher").get("/feedback/").content.decode()
    assert "not part of a supplier's roll-out" in html


def test_my_tickets_shows_public_replies_and_the_outcome_only(world, login):
    ticket_transition(
        ticket=world.t_a1,
        by=world.s1_am,
        status="resolved",
        outcome="training_given",
        outcome_reason="Showed the class how to reset passwords.",
    )
    html = login("a_teacher").get("/my-tickets/").content.decode()
    assert "Ticket t_a1" in html and "Message m_a1_public" in html
    assert "Showed the class how to reset passwords." in html
    assert "Message m_a1_internal" not in html
    assert "Rate how it was handled" in html


def test_rating_a_resolved_ticket(world, login):
    client = login("a_teacher")
    url = f"/my-tickets/{world.t_a1.pk}/"
    assert "Your rating" not in client.get(url).content.decode()  # not resolved yet
    refused = client.post(f"{url}rate/", {"rating": "4"})
    assert refused.status_code == 422
    assert "rated once it is resolved" in refused.content.decode()

    ticket_transition(ticket=world.t_a1, by=world.s1_am, status="resolved", outcome="fixed")
    assert "Your rating" in client.get(url).content.decode()
    assert client.post(f"{url}rate/", {"rating": "9"}).status_code == 422
    done = client.post(f"{url}rate/", {"rating": "4", "comment": "Sorted quickly"})
    assert done.status_code == 302
    world.t_a1.refresh_from_db()
    assert (world.t_a1.rating, world.t_a1.rating_comment) == (4, "Sorted quickly")
    again = client.post(f"{url}rate/", {"rating": "5"})
    assert again.status_code == 422
    assert "already rated" in again.content.decode()


def test_only_the_raiser_rates(world, login):
    ticket_transition(ticket=world.t_a1, by=world.s1_am, status="resolved", outcome="fixed")
    response = login("a_lead").post(f"/my-tickets/{world.t_a1.pk}/rate/", {"rating": "5"})
    assert response.status_code == 403


def test_replying_from_the_school_side(world, login):
    client = login("a_teacher")
    url = f"/my-tickets/{world.t_a1.pk}/reply/"
    assert client.post(url, {"body": "  "}).status_code == 422
    assert client.post(url, {"body": "It happens on Chrome too."}).status_code == 302
    assert world.t_a1.messages.filter(body="It happens on Chrome too.").exists()
    # A trust lead reads but may not reply (403, not a 500).
    assert (
        login("trust_lead").post(f"/my-tickets/{world.t_a1.pk}/reply/", {"body": "x"}).status_code
        == 403
    )
