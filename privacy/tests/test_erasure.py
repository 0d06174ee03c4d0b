"""Erasing a person leaves no trace of their name or address in any table, keeps what the
reports count, and stops anyone adding or emailing them again."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection
from django.http import Http404
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from knox.models import AuthToken

from accounts.models import ContactProposal, ErasedAddress, Membership, SupplierContactNote
from accounts.privacy_hash import email_hash
from accounts.services import (
    contact_create,
    contact_proposal_accept,
    contact_proposal_create,
    contact_update,
)
from accounts.tests import factories as f
from inbound.models import InboundEmail
from nudges.models import Nudge, NudgeEvent, NudgeReply, OptOut, Suppression
from privacy.erasure import erase_contact, erase_person
from privacy.models import Erasure
from reports.scorecards import academic_year, scorecard
from tickets.models import Ticket, TicketMessage
from tickets.services import ticket_create, ticket_post_message, ticket_transition
from visits.models import CalendarFeed

EMAIL = "zebedee.q@ashfield.example"
NEEDLES = ("zebedee", "quartermaine", EMAIL, "zebedee.q")
PASSWORD = "a long enough passphrase 42"


def _person(world: Any) -> dict[str, Any]:
    """Zebedee Quartermaine, a teacher at school A with a sign-in, who has written and been
    written to through every channel the product has."""
    a, s1 = world.school_a, world.s1
    user = f.UserFactory(email=EMAIL, full_name="Zebedee Quartermaine")
    user.set_password(PASSWORD)
    user.save()
    f.MembershipFactory(user=user, organisation=a, role="teacher")
    contact = contact_create(
        by=world.users["a_lead"],
        partnership=world.p_a1,
        first_name="Zebedee",
        last_name="Quartermaine",
        email=EMAIL,
        job_title="Head of Zebedee Quartermaine studies",
        tags=["teacher"],
    )
    contact.user = user
    contact.save()
    contact = contact_update(
        contact=contact, by=world.users["a_lead"], job_title="Zebedee's maths lead"
    )
    ticket, _ = ticket_create(
        by=user,
        partnership=world.p_a1,
        subject="Zebedee Quartermaine cannot sign in",
        description="My address zebedee.q@ashfield.example is refused. Zebedee",
    )
    ticket_post_message(ticket=ticket, by=user, body="Still broken, Zebedee Q")
    ticket_post_message(ticket=ticket, by=world.users["s1_am"], body="Hi Zebedee, we are on it")
    ticket_post_message(
        ticket=ticket,
        by=world.users["s1_agent"],
        body="Internal: Quartermaine again",
        is_internal=True,
    )
    ticket_transition(
        ticket=ticket,
        by=world.users["s1_am"],
        status="resolved",
        outcome="fixed",
        outcome_reason="Reset Zebedee's account",
    )
    ticket.refresh_from_db()
    base = timezone.now() - timedelta(days=1)
    sent = Nudge.objects.create(
        supplier=s1,
        school=a,
        partnership=world.p_a1,
        contact=contact,
        occurrence="manual:z1",
        due_at=base,
        next_attempt_at=base,
        status="sent",
        sent_at=base,
        rendered_subject="Hello Zebedee",
        rendered_text="Dear Zebedee Quartermaine, how is it going?",
        rendered_html="<p>Dear Zebedee Quartermaine</p>",
    )
    scheduled = Nudge.objects.create(
        supplier=s1,
        school=a,
        partnership=world.p_a1,
        contact=contact,
        occurrence="manual:z2",
        subject="Zebedee, a quick one",
        body_text="Hi Zebedee",
        due_at=timezone.now() + timedelta(days=3),
        next_attempt_at=timezone.now() + timedelta(days=3),
    )
    NudgeEvent.objects.create(
        nudge=sent,
        sg_event_id="z-ev-1",
        event="delivered",
        email=EMAIL,
        occurred_at=base,
        reason="250 OK for zebedee.q@ashfield.example",
    )
    reply = NudgeReply.objects.create(
        nudge=sent,
        supplier=s1,
        partnership=world.p_a1,
        contact=contact,
        subject="Re: Hello Zebedee",
        body="Thanks, Zebedee Quartermaine",
    )
    InboundEmail.objects.create(
        dedup_key="<z1@mail>",
        message_id="<z1@mail>",
        sender=EMAIL,
        recipient="reply+abc@in.example",
        subject="Re: Zebedee's ticket",
        status="accepted",
        nudge_reply=reply,
    )
    OptOut.objects.create(
        contact=contact,
        supplier=s1,
        source="school_lead",
        note="Zebedee asked us to stop",
        created_by=world.users["a_lead"],
    )
    Suppression.objects.create(email=EMAIL, reason="bounce", detail="550 zebedee.q unknown")
    proposal = contact_proposal_create(
        by=world.users["s2_am"],
        partnership=world.p_a2,
        first_name="Zebedee",
        last_name="Quartermaine",
        email=EMAIL,
    )
    SupplierContactNote.objects.create(supplier=s1, contact=contact, body="Zebedee prefers calls")
    from axes.models import AccessAttempt, AccessLog

    AccessLog.objects.create(username=EMAIL, ip_address="10.0.0.1", user_agent="test")
    AccessAttempt.objects.create(
        username=EMAIL,
        ip_address="10.0.0.2",
        user_agent="test",
        get_data="",
        post_data=f"username={EMAIL}",
        failures_since_start=1,
    )
    LogEntry.objects.create(
        user=world.users["a_lead"],
        content_type=ContentType.objects.get_for_model(contact),
        object_id=str(contact.pk),
        object_repr=str(contact),
        action_flag=CHANGE,
        change_message="[]",
    )
    CalendarFeed.objects.create(user=user, token_hash="z" * 64)
    _, token = AuthToken.objects.create(user=user)
    browser = Client()
    signed_in = browser.post("/accounts/sign-in/", {"username": EMAIL, "password": PASSWORD})
    assert signed_in.status_code == 302, signed_in.content[:300]
    return {
        "user": user,
        "contact": contact,
        "ticket": ticket,
        "sent": sent,
        "scheduled": scheduled,
        "proposal": proposal,
        "token": token,
        "browser": browser,
    }


def _figures(world: Any) -> list[Any]:
    period = academic_year(timezone.localdate())
    out = []
    for who in ("a_lead", "s1_admin", "s2_admin"):
        card = scorecard(
            user=world.users[who],
            period=period,
            group=["supplier_id", "school_id"],
            with_monthly=False,
        )
        out.append(sorted(card["rows"], key=lambda r: (r["supplier_id"], r["school_id"])))
    return out


def _traces() -> list[str]:
    """Every value in every column of every table holding one of the needles."""
    found = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names(cursor):
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")
            columns = [c[0] for c in cursor.description]
            for row in cursor.fetchall():
                for column, value in zip(columns, row, strict=True):
                    if isinstance(value, dict | list):
                        value = json.dumps(value)
                    elif isinstance(value, bytes | memoryview):
                        value = bytes(value).decode("utf-8", "replace")
                    if not isinstance(value, str):
                        continue
                    low = value.lower()
                    for needle in NEEDLES:
                        if needle in low:
                            found.append(f"{table}.{column}: {value[:80]!r}")
    return found


@pytest.mark.django_db(transaction=False)
def test_erasure_leaves_no_trace_keeps_the_figures_and_refuses_the_address(world: Any) -> None:
    z = _person(world)
    assert _traces(), "the scan must see the person before the erasure"
    before = _figures(world)

    erasure = erase_contact(by=world.users["a_lead"], contact=z["contact"])

    leftovers = _traces()
    assert leftovers == [], leftovers
    assert _figures(world) == before

    contact = z["contact"]
    contact.refresh_from_db()
    assert str(contact) == f"Erased person #{contact.pk}"
    assert contact.erased_at is not None
    # The rows reports count stay; the ticket keeps its status and times.
    ticket = Ticket.objects.get(pk=z["ticket"].pk)
    assert ticket.status == "resolved" and ticket.resolved_at == z["ticket"].resolved_at
    assert TicketMessage.objects.filter(ticket=ticket).count() == 3
    assert Nudge.objects.get(pk=z["sent"].pk).status == "sent"
    assert Nudge.objects.get(pk=z["scheduled"].pk).status == "cancelled"
    assert not SupplierContactNote.objects.filter(contact=contact).exists()
    # The audit trail says who erased and why; the Erasure row holds counts, no name.
    last = contact.history.order_by("-history_date", "-history_id").first()
    assert last.history_change_reason.startswith("erased at the school's request by ")
    assert erasure.contact_id == contact.pk and erasure.by == world.users["a_lead"]
    assert erasure.counts["tickets.TicketMessage"] >= 2
    assert Erasure.objects.count() == 1

    # Suppression replaced by the keyed hash; nobody can add the address back.
    assert not Suppression.objects.filter(email=EMAIL).exists()
    assert ErasedAddress.objects.filter(email_hash=email_hash(EMAIL)).exists()
    with pytest.raises(ValidationError) as refused:
        contact_create(
            by=world.users["a_lead"], school=world.school_a, first_name="Z", email=EMAIL.upper()
        )
    assert "erased" in str(refused.value)
    with pytest.raises(ValidationError):
        contact_proposal_create(
            by=world.users["s2_am"], partnership=world.p_b2, first_name="Z", email=EMAIL
        )
    proposal = ContactProposal.objects.get(pk=z["proposal"].pk)
    assert proposal.status == "declined"
    # A proposal that slipped in (written around the service) is refused on accepting.
    slipped = ContactProposal.objects.create(
        partnership=world.p_b2, first_name="Z", email=EMAIL, proposed_by=world.users["s2_am"]
    )
    with pytest.raises(ValidationError) as refused:
        contact_proposal_accept(proposal=slipped, by=world.users["b_lead"])
    assert "erased" in str(refused.value)

    # The person can no longer sign in, by page or API token; the session is gone.
    user = z["user"]
    user.refresh_from_db()
    assert not user.is_active and not user.has_usable_password()
    assert not Membership.objects.filter(user=user).exists()
    assert not AuthToken.objects.filter(user=user).exists()
    assert not CalendarFeed.objects.filter(user=user).exists()
    again = Client().post("/accounts/sign-in/", {"username": EMAIL, "password": PASSWORD})
    assert again.status_code != 302
    refused = Client().post("/api/v1/auth/token/", {"email": EMAIL, "password": PASSWORD})
    assert refused.status_code in (400, 401)
    assert z["browser"].get(reverse("my-tickets")).status_code == 302
    api = Client(HTTP_AUTHORIZATION=f"Token {z['token']}")
    assert api.get("/api/v1/me/").status_code == 401


def test_an_accepted_proposal_of_an_erased_address_is_refused(world: Any) -> None:
    z = _person(world)
    # A proposal made before the erasure of someone at school B with the same address.
    pending = contact_proposal_create(
        by=world.users["s2_am"], partnership=world.p_b2, first_name="Zed", email=EMAIL
    )
    erase_contact(by=world.users["a_lead"], contact=z["contact"])
    pending.refresh_from_db()
    # The erasure declined every pending proposal of the address, at any supplier.
    assert pending.status == "declined"


def test_only_the_school_lead_or_the_operator_erases(world: Any) -> None:
    contact = world.c_a_it
    for who in ("s1_admin", "s1_am", "trust_lead"):
        with pytest.raises(PermissionDenied):
            erase_contact(by=world.users[who], contact=contact)
    for who in ("a_teacher", "b_lead", "s2_admin", "outsider"):
        with pytest.raises(Http404):
            erase_contact(by=world.users[who], contact=contact)
    contact.refresh_from_db()
    assert contact.erased_at is None
    operator = f.UserFactory(email="ops@example.org", is_superuser=True, is_staff=True)
    erase_contact(by=operator, contact=contact)
    contact.refresh_from_db()
    assert contact.erased_at is not None
    with pytest.raises(ValidationError):
        erase_contact(by=operator, contact=contact)


def test_erase_person_erases_every_record_of_the_address(world: Any) -> None:
    z = _person(world)
    other = f.ContactFactory(school=world.school_b, first_name="Zebedee", email=EMAIL)
    operator = f.UserFactory(email="ops@example.org", is_superuser=True, is_staff=True)
    with pytest.raises(PermissionDenied):
        erase_person(by=world.users["a_lead"], email=EMAIL)
    erase_person(by=operator, email=EMAIL.upper())
    for c in (z["contact"], other):
        c.refresh_from_db()
        assert c.erased_at is not None and EMAIL not in c.email
    assert _traces() == []
