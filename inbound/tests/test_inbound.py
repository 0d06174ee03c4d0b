"""Replies by email, end to end: a ticket or nudge email goes out with its own Reply-To;
the recipient's mail app answers it; Inbound Parse posts the answer to the webhook; the
reply lands where the supplier will see it, or is refused and nothing changes."""

from __future__ import annotations

import io
from datetime import datetime, timedelta
from email.utils import getaddresses
from zoneinfo import ZoneInfo

import pytest
from django.core import mail
from django.utils import timezone
from PIL import Image

from accounts.models import Stage
from inbound.models import InboundEmail
from nudges.dispatch import dispatch_due
from nudges.models import Nudge, NudgeReply
from nudges.outbox import OutboxBatchSender
from nudges.replies import resume
from partnership_crm.reply_tokens import reply_address
from tests.fakes import inbound_parse as fake
from tickets import services as ticket_services
from tickets.models import Status, TicketMessage

MONDAY_10 = datetime(2026, 11, 23, 10, tzinfo=ZoneInfo("Europe/London"))  # in term
URL = "/webhooks/sendgrid/inbound/inbound-test-secret/"


def post(client, message, *, secret_url=URL, raw=False):
    content_type, body = fake.parse_post(message, raw=raw)
    return client.generic("POST", secret_url, body, content_type=content_type)


def _resolve(world, ticket):
    ticket_services.ticket_transition(
        ticket=ticket, by=world.users["s1_am"], status="resolved", outcome="fixed"
    )
    ticket.refresh_from_db()


def _reply_to_of(email) -> str:
    return getaddresses(email.reply_to)[0][1]


def _jpeg() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (400, 300), (200, 30, 30)).save(out, "JPEG")
    return out.getvalue()


@pytest.fixture
def resolved_t_a1(world, django_capture_on_commit_callbacks):
    ticket = world.t_a1
    with django_capture_on_commit_callbacks(execute=True):
        _resolve(world, ticket)
    return ticket


def test_a_teacher_answering_the_resolved_email_from_outlook_reopens_the_ticket(
    world, client, resolved_t_a1, django_capture_on_commit_callbacks
):
    resolved_email = [m for m in mail.outbox if m.subject.startswith("Resolved:")][-1]
    reply_to = _reply_to_of(resolved_email)
    assert reply_to.startswith("reply+") and reply_to.endswith("@reply.test")
    teacher = world.users["a_teacher"]
    mail.outbox.clear()
    message = fake.outlook_reply(
        f"Amy Teacher <{teacher.email}>", reply_to, resolved_email.subject, "Still broken."
    )
    with django_capture_on_commit_callbacks(execute=True):
        response = post(client, message)
    assert response.status_code == 200 and response.json()["status"] == "accepted"
    resolved_t_a1.refresh_from_db()
    assert resolved_t_a1.status == Status.IN_PROGRESS and resolved_t_a1.reopen_count == 1
    said = TicketMessage.objects.filter(ticket=resolved_t_a1).latest("id")
    # The quoted original is gone; the sign-off stays.
    assert said.body.startswith("Still broken.") and "original email" not in said.body
    assert said.channel == "email" and said.reopened and not said.is_internal
    # The account manager hears of it, and can answer by email in turn.
    (to_supplier,) = mail.outbox
    assert to_supplier.to == [world.users["s1_am"].email]
    assert to_supplier.subject.startswith("Reopened:")
    assert _reply_to_of(to_supplier).startswith("reply+")


def test_the_same_message_posted_twice_is_stored_once(world, client, resolved_t_a1):
    reply_to = reply_address("ticket", resolved_t_a1.pk, world.users["a_teacher"].pk)
    message = fake.gmail_reply(world.users["a_teacher"].email, reply_to, "Resolved", "Thanks!")
    for _ in range(2):
        response = post(client, message)
    assert response.json()["status"] == "duplicate"
    assert TicketMessage.objects.filter(ticket=resolved_t_a1, channel="email").count() == 1
    assert InboundEmail.objects.count() == 1


def test_a_gmail_reply_on_an_open_ticket_is_a_public_message(world, client):
    ticket = world.t_a1
    reply_to = reply_address("ticket", ticket.pk, world.users["a_teacher"].pk)
    message = fake.gmail_reply(world.users["a_teacher"].email, reply_to, "Re", "Yes, Tuesday.")
    assert post(client, message).json()["status"] == "accepted"
    said = TicketMessage.objects.filter(ticket=ticket).latest("id")
    assert (said.body, said.channel, said.author) == (
        "Yes, Tuesday.",
        "email",
        world.users["a_teacher"],
    )


def test_the_raw_mime_mode_of_parse_is_read_too(world, client):
    ticket = world.t_a1
    reply_to = reply_address("ticket", ticket.pk, world.users["a_teacher"].pk)
    message = fake.gmail_reply(world.users["a_teacher"].email, reply_to, "Re", "Raw and fine.")
    assert post(client, message, raw=True).json()["status"] == "accepted"
    assert TicketMessage.objects.filter(ticket=ticket, body="Raw and fine.").exists()


@pytest.mark.parametrize(
    "problem",
    ["forged_from", "another_ticket", "expired", "tampered", "not_a_reply_address"],
)
def test_bad_tokens_and_forged_senders_are_refused_and_change_nothing(
    world, client, problem, caplog
):
    ticket, teacher = world.t_a1, world.users["a_teacher"]
    sender = teacher.email
    reply_to = reply_address("ticket", ticket.pk, teacher.pk)
    if problem == "forged_from":
        sender = "someone@elsewhere.example"
    elif problem == "another_ticket":
        # A genuine token for a ticket a_teacher cannot see (school B's).
        reply_to = reply_address("ticket", world.t_b2.pk, teacher.pk)
    elif problem == "expired":
        reply_to = reply_address(
            "ticket", ticket.pk, teacher.pk, today=timezone.localdate() - timedelta(days=400)
        )
    elif problem == "tampered":
        local, domain = reply_to.split("@")
        reply_to = f"{local[:-1]}{'a' if local[-1] != 'a' else 'b'}@{domain}"
    else:
        reply_to = "support@reply.test"
    before = TicketMessage.objects.count()
    response = post(client, fake.gmail_reply(sender, reply_to, "Re", "Let me in."))
    assert response.status_code == 200 and response.json()["status"] == "refused"
    assert TicketMessage.objects.count() == before
    assert InboundEmail.objects.get().status == "refused"
    assert "inbound refused" in caplog.text


def test_a_wrong_secret_is_404_and_stores_nothing(world, client):
    reply_to = reply_address("ticket", world.t_a1.pk, world.users["a_teacher"].pk)
    message = fake.gmail_reply(world.users["a_teacher"].email, reply_to, "Re", "Hi")
    response = post(client, message, secret_url="/webhooks/sendgrid/inbound/guess/")
    assert response.status_code == 404
    assert not InboundEmail.objects.exists()


def test_a_post_that_is_not_an_email_is_a_clear_400(client, db):
    response = client.post(URL, {"text": "hello"})
    assert response.status_code == 400 and "from" in response.json()["detail"]


def test_a_reply_to_an_ended_partnership_is_refused_and_the_sender_is_told(world, client):
    p = world.t_a1.partnership
    p.stage = Stage.ENDED
    p.save(update_fields=["stage"])
    teacher = world.users["a_teacher"]
    reply_to = reply_address("ticket", world.t_a1.pk, teacher.pk)
    before = TicketMessage.objects.count()
    response = post(client, fake.gmail_reply(teacher.email, reply_to, "Re", "Hello?"))
    assert response.json() == {"status": "refused", "reason": "the partnership has ended"}
    assert TicketMessage.objects.count() == before
    (notice,) = mail.outbox
    assert notice.to == [teacher.email] and "has ended" in notice.body


def test_an_out_of_office_is_recorded_but_reopens_nothing(world, client, resolved_t_a1):
    teacher = world.users["a_teacher"]
    reply_to = reply_address("ticket", resolved_t_a1.pk, teacher.pk)
    response = post(client, fake.out_of_office(teacher.email, reply_to, "Resolved"))
    assert response.json()["status"] == "auto_reply"
    resolved_t_a1.refresh_from_db()
    assert resolved_t_a1.status == Status.RESOLVED


# --- Nudges ----------------------------------------------------------------------------


@pytest.fixture
def rule_nudge(world, settings):
    """n_b2 as a rule's nudge (rule_s2 to Ben, b_teacher), sent through the outbox."""
    n = world.n_b2
    n.rule = world.rule_s2
    n.occurrence = "phase_ends:1"
    n.save(update_fields=["rule", "occurrence"])
    NudgeReply.objects.all().delete()  # only this test's replies from here on
    return n


def test_a_nudge_goes_out_with_the_contacts_own_reply_address(world, rule_nudge, tmp_path):
    Nudge.objects.exclude(pk=rule_nudge.pk).update(next_attempt_at=MONDAY_10 + timedelta(days=9))
    Nudge.objects.filter(pk=rule_nudge.pk).update(next_attempt_at=MONDAY_10)
    dispatch_due(now=MONDAY_10, sender=OutboxBatchSender(tmp_path))
    rule_nudge.refresh_from_db()
    assert rule_nudge.status == Nudge.Status.SENT, rule_nudge.status_reason
    (written,) = tmp_path.glob("*.eml")
    assert reply_address("nudge", rule_nudge.pk, rule_nudge.contact_id) in written.read_text()


def test_an_iphone_reply_to_a_nudge_stops_that_rule_for_that_person_until_resumed(
    world, client, rule_nudge, django_capture_on_commit_callbacks, tmp_path
):
    later = Nudge.objects.create(
        supplier_id=rule_nudge.supplier_id,
        school_id=rule_nudge.school_id,
        partnership=rule_nudge.partnership,
        contact=rule_nudge.contact,
        rule=world.rule_s2,
        template=rule_nudge.template,
        occurrence="phase_ends:2",
        due_at=timezone.now(),
        next_attempt_at=timezone.now(),
    )
    ben = rule_nudge.contact
    reply_to = reply_address("nudge", rule_nudge.pk, ben.pk)
    message = fake.iphone_reply(ben.email, reply_to, "Pilot ends", "Can we talk?", _jpeg())
    with django_capture_on_commit_callbacks(execute=True):
        assert post(client, message).json()["status"] == "accepted"
    reply = NudgeReply.objects.get()
    assert (reply.body, reply.is_stopping) == ("Can we talk?", True)
    later.refresh_from_db()
    assert later.status == Nudge.Status.SKIPPED and "replied" in later.status_reason
    # The account manager is told, and answering goes straight to Ben.
    (told,) = mail.outbox
    assert told.to == [world.users["s2_am"].email] and "Can we talk?" in told.body
    assert told.reply_to == [ben.email]
    # Planned again while stopped: the dispatcher skips it.
    again = Nudge.objects.create(
        supplier_id=later.supplier_id,
        school_id=later.school_id,
        partnership=later.partnership,
        contact=ben,
        rule=world.rule_s2,
        template=later.template,
        occurrence="phase_ends:3",
        due_at=MONDAY_10,
        next_attempt_at=MONDAY_10,
    )
    dispatch_due(now=MONDAY_10, sender=OutboxBatchSender(tmp_path))
    again.refresh_from_db()
    assert again.status == Nudge.Status.SKIPPED and "replied" in again.status_reason
    # The account manager resumes it: the next one may go.
    assert resume(reply=reply, by=world.users["s2_am"]) == 1
    assert not NudgeReply.objects.get().is_stopping


def test_an_out_of_office_to_a_nudge_stops_nothing_and_tells_nobody(world, client, rule_nudge):
    ben = rule_nudge.contact
    reply_to = reply_address("nudge", rule_nudge.pk, ben.pk)
    assert post(client, fake.out_of_office(ben.email, reply_to, "Pilot")).json()["status"] == (
        "auto_reply"
    )
    reply = NudgeReply.objects.get()
    assert reply.is_auto and not reply.is_stopping
    assert mail.outbox == []


def test_a_nudge_token_does_not_work_for_another_contact(world, client, rule_nudge):
    # Bob (c_b_it) is at the same school; a token naming Ben's nudge with Bob as recipient
    # is refused even from Bob's own address.
    bob = world.contacts["c_b_it"]
    reply_to = reply_address("nudge", rule_nudge.pk, bob.pk)
    response = post(client, fake.gmail_reply(bob.email, reply_to, "Re", "Me too"))
    assert response.json()["status"] == "refused"
    assert not NudgeReply.objects.exists()


def test_the_account_manager_sees_the_reply_and_resumes_the_rule_through_the_api(
    world, client, rule_nudge
):
    ben = rule_nudge.contact
    reply_to = reply_address("nudge", rule_nudge.pk, ben.pk)
    post(client, fake.gmail_reply(ben.email, reply_to, "Pilot", "Busy till half term."))
    reply = NudgeReply.objects.get()
    listing = world.client("s2_am").get("/api/v1/nudge-replies/", {"partnership": world.p_b2.pk})
    [row] = listing.json()["results"]
    assert (row["body"], row["stopping"], row["stopped_rule_name"]) == (
        "Busy till half term.",
        True,
        "Pilot ends",
    )
    # Ben sees what he wrote; his school's lead and the other supplier do not.
    assert world.client("b_teacher").get(f"/api/v1/nudge-replies/{reply.pk}/").status_code == 200
    for outsider in ("b_lead", "s1_am"):
        r = world.client(outsider).get(f"/api/v1/nudge-replies/{reply.pk}/")
        assert r.status_code == 404, outsider
    # An agent may read it but only an account manager or admin resumes the rule.
    url = f"/api/v1/nudge-replies/{reply.pk}/resume/"
    assert world.client("s2_agent").post(url).status_code == 403
    resumed = world.client("s2_am").post(url)
    assert resumed.status_code == 200 and resumed.json()["stopping"] is False


def test_an_iphone_reply_to_a_ticket_email_brings_its_photo(world, client, resolved_t_a1):
    teacher = world.users["a_teacher"]
    reply_to = reply_address("ticket", resolved_t_a1.pk, teacher.pk)
    message = fake.iphone_reply(teacher.email, reply_to, "Resolved", "Still this:", _jpeg())
    assert post(client, message).json()["status"] == "accepted"
    said = TicketMessage.objects.filter(ticket=resolved_t_a1).latest("id")
    assert said.reopened and said.body == "Still this:"
    [photo] = said.attachments.all()
    assert (photo.name, photo.content_type) == (
        "IMG_0042.jpg",
        "image/jpeg",
    )  # named by its content
    # The teacher, and the supplier's staff, open it through the checked download.
    for reader in ("a_teacher", "s1_am"):
        url = f"/api/v1/tickets/{resolved_t_a1.pk}/attachments/{photo.pk}/"
        r = world.client(reader).get(url)
        assert r.status_code == 200 and r["X-Content-Type-Options"] == "nosniff", reader


def test_a_disguised_file_in_an_email_is_left_out_and_the_sender_told(
    world, client, django_capture_on_commit_callbacks
):
    ticket, teacher = world.t_a1, world.users["a_teacher"]
    reply_to = reply_address("ticket", ticket.pk, teacher.pk)
    message = fake.iphone_reply(teacher.email, reply_to, "Re", "See attached.", _jpeg())
    message.add_attachment(
        b"MZ\x90\x00" + b"\x00" * 5000, maintype="image", subtype="jpeg", filename="cat.jpg"
    )
    with django_capture_on_commit_callbacks(execute=True):
        assert post(client, message).json()["status"] == "accepted"
    said = TicketMessage.objects.filter(ticket=ticket).latest("id")
    assert [a.name for a in said.attachments.all()] == ["IMG_0042.jpg"]
    told = [m for m in mail.outbox if m.to == [teacher.email]]
    assert told and "cat.jpg" in told[0].body


def test_a_saved_reply_can_be_received_from_the_command_line(world, tmp_path):
    from django.core.management import CommandError, call_command

    teacher = world.users["a_teacher"]
    reply_to = reply_address("ticket", world.t_a1.pk, teacher.pk)
    eml = tmp_path / "reply.eml"
    eml.write_bytes(fake.gmail_reply(teacher.email, reply_to, "Re", "From my laptop.").as_bytes())
    call_command("receive_email", str(eml))
    assert TicketMessage.objects.filter(ticket=world.t_a1, body="From my laptop.").exists()
    forged = tmp_path / "forged.eml"
    forged.write_bytes(fake.gmail_reply("x@elsewhere.example", reply_to, "Re", "No").as_bytes())
    with pytest.raises(CommandError, match="refused"):
        call_command("receive_email", str(forged))
