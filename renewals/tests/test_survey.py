"""The value review's staff survey: whom it asks, who may send it, the nudge the ordinary
dispatcher sends (windows, limits), the answer link nobody but the recipient can read,
what each side sees of the answers, and subject access."""

from __future__ import annotations

import json
import re
import uuid
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.core.exceptions import PermissionDenied, ValidationError
from django.test import Client
from django.utils import timezone

from accounts.models import Contact, ErasedAddress
from accounts.privacy_hash import email_hash
from accounts.tests import factories as f
from nudges.dispatch import dispatch_due
from nudges.models import Nudge, OptOut
from nudges.services import held_resend
from nudges.tests.test_dispatch import RecordingSender
from privacy.access import subject_access
from renewals.models import AgreementTerm, SurveyInvitation, ValueReview
from renewals.survey import (
    read_survey_token,
    survey_answer,
    survey_close,
    survey_send,
    survey_summary,
    survey_token,
)

pytestmark = pytest.mark.django_db

LONDON = ZoneInfo("Europe/London")
MONDAY_10 = datetime(2026, 11, 23, 10, tzinfo=LONDON)  # a school day, in the send window
SATURDAY_10 = datetime(2026, 11, 28, 10, tzinfo=LONDON)
LINK = re.compile(r"/survey/([^/\s\"'<>]+)/")


# --- Helpers (also used by test_survey_page.py and test_survey_races.py) ----------------------


def open_review(world: Any, partnership: Any = None) -> ValueReview:
    """The partnership's open value review, with nobody asked yet."""
    p = partnership or world.p_a1
    review = ValueReview.objects.filter(partnership=p, status="open").first()
    if review is None:
        term = AgreementTerm.objects.filter(partnership=p, status="current").first()
        if term is None:
            term = AgreementTerm.objects.create(
                partnership=p,
                supplier_id=p.supplier_id,
                school_id=p.school_id,
                starts_on=date(2025, 12, 1),
                ends_on=date(2026, 11, 30),
                notice_days=60,
            )
        review = ValueReview.objects.create(
            term=term,
            partnership=p,
            supplier_id=p.supplier_id,
            school_id=p.school_id,
            opened_how="school",
        )
    SurveyInvitation.objects.filter(review=review).delete()
    return review


def staff(world: Any, first_name: str, *, tags: str = "", partnership: Any = None) -> Contact:
    """A member of school A's staff linked to the partnership (p_a1 unless said)."""
    p = partnership or world.p_a1
    contact = f.ContactFactory(school=p.school, first_name=first_name, last_name="", tags=tags)
    f.PartnershipContactFactory(partnership=p, contact=contact)
    return contact


def invite(world: Any, contacts: list[Contact], review: ValueReview | None = None) -> list:
    review = review or open_review(world)
    return survey_send(
        by=world.users["a_lead"], review=review, contact_ids=[c.pk for c in contacts]
    )


def tokens_in(text: str) -> list[str]:
    return LINK.findall(text)


def working(text: str) -> list[str]:
    """The survey tokens in ``text`` that open an invitation."""
    return [t for t in tokens_in(text) if read_survey_token(t) is not None]


@pytest.fixture
def quiet(world: Any) -> Any:
    """Only the nudges a test makes are due: the cast's are parked far ahead."""
    Nudge.objects.update(next_attempt_at=MONDAY_10 + timedelta(days=365))
    return world


# --- Whom it asks -----------------------------------------------------------------------------


def test_by_default_the_trial_cohort_is_asked(world: Any) -> None:
    review = open_review(world)
    made = survey_send(by=world.users["a_lead"], review=review)
    assert [i.contact for i in made] == [world.c_a_teacher]  # ph_a1's cohort
    [inv] = made
    assert inv.school_id == world.school_a.pk and inv.answered_at is None
    nudge = inv.nudge
    assert nudge.occurrence == f"survey:{inv.pk}"
    assert nudge.created_by == world.users["a_lead"]
    assert (nudge.supplier_id, nudge.partnership_id) == (world.s1.pk, world.p_a1.pk)
    assert nudge.status == Nudge.Status.SCHEDULED
    assert abs(nudge.due_at - timezone.now()) < timedelta(minutes=1)
    assert nudge.next_attempt_at == nudge.due_at
    assert nudge.subject == "Would you notice if we no longer had {{ product_name }}?"
    # No working link is ever stored with the nudge.
    assert (
        "{{ survey_url }}" in nudge.body_text and working(nudge.body_text + nudge.body_html) == []
    )


def test_a_stakeholder_tag_asks_the_linked_staff_with_it(world: Any) -> None:
    review = open_review(world)
    digital = staff(world, "Dee", tags=",digital_leader,teacher,")
    also = staff(world, "Eve", tags=",digital_leader,")
    f.ContactFactory(school=world.school_a, tags=",digital_leader,")  # not linked to p_a1
    staff(world, "Fay", tags=",teacher,")
    made = survey_send(by=world.users["a_lead"], review=review, tag="digital_leader")
    assert {i.contact_id for i in made} == {digital.pk, also.pk}
    with pytest.raises(ValidationError) as err:
        survey_send(by=world.users["a_lead"], review=review, tag="headteacher")
    assert "tag" in err.value.message_dict


def test_named_people_must_be_staff_linked_to_the_partnership(world: Any) -> None:
    review = open_review(world)
    one, two = staff(world, "Gil"), staff(world, "Hal")
    made = invite(world, [one, two], review)
    assert sorted(i.contact_id for i in made) == sorted([one.pk, two.pk])
    for outsider in (world.c_b_teacher, world.c_a_unlinked, world.c_a_dsl):
        with pytest.raises(ValidationError) as err:
            invite(world, [outsider], review)
        assert "contact_ids" in err.value.message_dict
    with pytest.raises(ValidationError):
        survey_send(by=world.users["a_lead"], review=review, contact_ids=[])


def test_opted_out_and_erased_people_are_left_out(world: Any) -> None:
    review = open_review(world)
    keep = staff(world, "Ida")
    other_supplier_only = staff(world, "Jo")
    OptOut.objects.create(contact=other_supplier_only, supplier=world.s2, source="link")
    everyone = staff(world, "Kit")
    OptOut.objects.create(contact=everyone, supplier=None, source="link")
    this_supplier = staff(world, "Lu")
    OptOut.objects.create(contact=this_supplier, supplier=world.s1, source="school_lead")
    pseudonymised = staff(world, "Mo")
    Contact.objects.filter(pk=pseudonymised.pk).update(erased_at=timezone.now())
    hashed = staff(world, "Ned")
    ErasedAddress.objects.create(email_hash=email_hash(hashed.email))
    people = [keep, other_supplier_only, everyone, this_supplier, pseudonymised, hashed]
    made = invite(world, people, review)
    assert sorted(i.contact_id for i in made) == sorted([keep.pk, other_supplier_only.pk])
    # c_a_it is linked to p_a1 with the IT lead tag, but a_lead stopped s1 nudging them.
    assert survey_send(by=world.users["a_lead"], review=review, tag="it_lead") == []


def test_a_second_send_asks_only_the_people_not_yet_asked(world: Any) -> None:
    review = open_review(world)
    first, second = staff(world, "Oli"), staff(world, "Pat")
    invite(world, [first], review)
    again = invite(world, [first, second], review)
    assert [i.contact_id for i in again] == [second.pk]
    assert SurveyInvitation.objects.filter(review=review).count() == 2
    assert Nudge.objects.filter(occurrence__startswith="survey:").count() == 2
    assert invite(world, [first, second], review) == []


# --- Who may send it --------------------------------------------------------------------------


@pytest.mark.parametrize("user", ["s1_admin", "s1_am", "s1_agent", "a_teacher", "b_lead", "s2_am"])
def test_only_the_schools_leads_send_the_survey(world: Any, user: str) -> None:
    review = open_review(world)
    with pytest.raises(PermissionDenied):
        survey_send(by=world.users[user], review=review)
    assert not SurveyInvitation.objects.filter(review=review).exists()


def test_the_trust_lead_may_send_it(world: Any) -> None:
    review = open_review(world)
    assert len(survey_send(by=world.users["trust_lead"], review=review)) == 1


def test_a_decided_review_sends_no_survey(world: Any) -> None:
    review = open_review(world)
    ValueReview.objects.filter(pk=review.pk).update(status="decided", decision="renew")
    with pytest.raises(ValidationError) as err:
        survey_send(by=world.users["a_lead"], review=review)
    assert "review" in err.value.message_dict


def test_the_leads_message_is_checked(world: Any) -> None:
    review = open_review(world)
    for bad in ("x" * 1001, "Hi {% load evil %}", "Go to {{ survey_url }}"):
        with pytest.raises(ValidationError) as err:
            survey_send(by=world.users["a_lead"], review=review, message=bad)
        assert "message" in err.value.message_dict
    [inv] = survey_send(
        by=world.users["a_lead"], review=review, message="Please answer <b>by Friday</b>."
    )
    assert "Please answer <b>by Friday</b>." in inv.nudge.body_text
    assert "Please answer &lt;b&gt;by Friday&lt;/b&gt;." in inv.nudge.body_html


# --- Sent by the dispatcher -------------------------------------------------------------------


def test_the_dispatcher_sends_it_with_the_working_link_but_stores_a_stand_in(quiet: Any) -> None:
    world = quiet
    sender = RecordingSender()
    with time_machine.travel(MONDAY_10, tick=False):
        [inv] = survey_send(by=world.users["a_lead"], review=open_review(world), message="Ta!")
        stats = dispatch_due(sender=sender)
    assert stats.sent == 1
    _, [email] = sender.batches[0]
    assert email.nudge_id == inv.nudge_id and email.to_email == world.c_a_teacher.email
    assert email.subject == "Would you notice if we no longer had Acme Maths?"
    assert "Hello Ann," in email.text and "Ta!" in email.text
    assert "Unsubscribe: " in email.text and "/unsubscribe/" in email.html
    [token] = working(email.text)
    assert read_survey_token(token) == inv and working(email.html) == [token]
    assert 'href="http://' in email.html and f"/survey/{token}/" in email.html
    nudge = Nudge.objects.get(pk=inv.nudge_id)
    assert nudge.status == Nudge.Status.SENT
    stored = nudge.rendered_subject + nudge.rendered_text + nudge.rendered_html
    assert "/survey/personal-link-sent-only-to-the-recipient/" in nudge.rendered_text
    assert working(stored) == [] and token not in stored


def test_a_held_survey_email_sent_again_still_carries_the_working_link(quiet: Any) -> None:
    world = quiet
    with time_machine.travel(MONDAY_10, tick=False):
        [inv] = survey_send(by=world.users["a_lead"], review=open_review(world))
        dispatch_due(sender=RecordingSender())
        Nudge.objects.filter(pk=inv.nudge_id).update(status=Nudge.Status.HELD)
        held_resend(nudge=Nudge.objects.get(pk=inv.nudge_id), by=world.users["s1_admin"])
        again = RecordingSender()
        dispatch_due(sender=again)
    _, [email] = again.batches[0]
    assert [read_survey_token(t) for t in working(email.text)] == [inv]


def test_the_survey_email_waits_for_the_weekly_limit_like_any_nudge(quiet: Any) -> None:
    world = quiet
    with time_machine.travel(MONDAY_10, tick=False):
        Nudge.objects.create(
            supplier=world.s1,
            school=world.school_a,
            partnership=world.p_a1,
            contact=world.c_a_teacher,
            occurrence="manual:earlier",
            due_at=MONDAY_10 - timedelta(days=2),
            next_attempt_at=MONDAY_10 - timedelta(days=2),
            status=Nudge.Status.SENT,
            sent_at=MONDAY_10 - timedelta(days=2),
        )
        [inv] = survey_send(by=world.users["a_lead"], review=open_review(world))
        sender = RecordingSender()
        stats = dispatch_due(sender=sender)
    assert (stats.sent, stats.postponed, sender.batches) == (0, 1, [])
    nudge = Nudge.objects.get(pk=inv.nudge_id)
    assert nudge.status == Nudge.Status.SCHEDULED
    assert nudge.status_reason == "held back by the limit on emails to a member of staff each week"
    assert nudge.next_attempt_at > MONDAY_10 + timedelta(days=4)


def test_the_survey_email_waits_for_the_schools_send_window(quiet: Any) -> None:
    world = quiet
    with time_machine.travel(SATURDAY_10, tick=False):
        [inv] = survey_send(by=world.users["a_lead"], review=open_review(world))
        stats = dispatch_due(sender=RecordingSender())
    assert (stats.sent, stats.postponed) == (0, 1)
    nudge = Nudge.objects.get(pk=inv.nudge_id)
    assert nudge.status_reason == "waiting for the school's send window"
    assert nudge.next_attempt_at.astimezone(LONDON).date() == date(2026, 11, 30)


def test_sent_through_sendgrids_sdk_to_the_loopback_fake(quiet: Any, settings: Any) -> None:
    from nudges.sendgrid import SendGridBatchSender
    from tests.fakes.sendgrid import FakeSendGrid

    world = quiet
    settings.NUDGE_FROM_EMAIL = "nudges@crm.example.org"  # the fake wants a dotted domain
    with FakeSendGrid(api_key="SG.test-key") as fake:
        sender = SendGridBatchSender(
            api_key="SG.test-key", host=fake.host, sleep=lambda s: None, timeout=5.0
        )
        with time_machine.travel(MONDAY_10, tick=False):
            [inv] = survey_send(by=world.users["a_lead"], review=open_review(world))
            stats = dispatch_due(sender=sender)
        assert stats.sent == 1
        [delivery] = fake.deliveries
    assert delivery.to_email == world.c_a_teacher.email
    assert delivery.subject == "Would you notice if we no longer had Acme Maths?"
    assert [read_survey_token(t) for t in working(delivery.text or "")] == [inv]


def test_a_supplier_reading_the_nudge_never_gets_a_working_link(quiet: Any) -> None:
    world = quiet
    with time_machine.travel(MONDAY_10, tick=False):
        [inv] = survey_send(by=world.users["a_lead"], review=open_review(world))
        pages = Client()
        pages.force_login(world.users["s1_am"])
        # Before it is sent, the preview renders it as the dispatcher would.
        before = pages.get(f"/nudges/{inv.nudge_id}/preview/")
        assert before.status_code == 200 and "Acme Maths" in before.content.decode()
        sender = RecordingSender()
        dispatch_due(sender=sender)
    [sent_token] = working(sender.batches[0][1][0].text)
    seen = [before.content.decode()]
    for user in ("s1_am", "s1_admin", "s1_agent"):
        api = world.client(user)
        seen.append(json.dumps(api.get(f"/api/v1/nudges/{inv.nudge_id}/").json()))
        seen.append(json.dumps(api.get("/api/v1/nudges/", {"partnership": world.p_a1.pk}).json()))
        pages.force_login(world.users[user])
        seen.append(pages.get(f"/nudges/{inv.nudge_id}/preview/").content.decode())
        seen.append(pages.get("/nudges/").content.decode())
        seen.append(json.dumps(subject_access(by=world.users[user], contact=world.c_a_teacher)))
    everything = "\n".join(seen)
    assert "personal-link-sent-only-to-the-recipient" in everything
    assert sent_token not in everything and working(everything) == []


def test_decided_reviews_cancel_their_unsent_survey_emails(world: Any) -> None:
    review = open_review(world)
    [inv] = survey_send(by=world.users["a_lead"], review=review)
    assert survey_close(review=review) == 1
    assert Nudge.objects.get(pk=inv.nudge_id).status == Nudge.Status.CANCELLED


# --- Answering (the service; the page is in test_survey_page.py) ------------------------------


def test_an_answer_is_taken_once_and_checked(world: Any) -> None:
    [inv] = survey_send(by=world.users["a_lead"], review=open_review(world))
    token = survey_token(inv)
    for bad in (
        {"notice": "very"},
        {"notice": "a_lot", "uses": "u" * 1001},
        {"notice": "a_lot", "change": "c" * 1001},
        {"notice": "a_lot", "uses": "nul\x00"},
    ):
        with pytest.raises(ValidationError) as err:
            survey_answer(token=token, **bad)
        assert set(err.value.message_dict) <= {"notice", "uses", "change"}
    done = survey_answer(token=token, notice="a_little", uses="  Homework  ", change="")
    assert (done.notice, done.uses, done.change) == ("a_little", "Homework", "")
    assert done.answered_at is not None
    with pytest.raises(ValidationError) as err:
        survey_answer(token=token, notice="a_lot", uses="Changed my mind")
    assert err.value.code == "already_answered"
    inv.refresh_from_db()
    assert (inv.notice, inv.uses) == ("a_little", "Homework")


def test_a_decided_review_takes_no_answers(world: Any) -> None:
    review = open_review(world)
    [inv] = survey_send(by=world.users["a_lead"], review=review)
    ValueReview.objects.filter(pk=review.pk).update(status="decided", decision="end")
    with pytest.raises(ValidationError) as err:
        survey_answer(token=survey_token(inv), notice="a_lot")
    assert err.value.code == "closed"
    inv.refresh_from_db()
    assert inv.answered_at is None


def test_forged_or_altered_tokens_open_nothing(world: Any) -> None:
    from django.core import signing

    [inv] = survey_send(by=world.users["a_lead"], review=open_review(world))
    token = survey_token(inv)
    assert read_survey_token(token) == inv
    forged = [
        token[:-2] + ("AA" if not token.endswith("AA") else "BB"),
        signing.dumps({"i": inv.pk, "n": inv.nonce.hex}, salt="nudges.unsubscribe"),
        signing.dumps({"i": inv.pk, "n": uuid.uuid4().hex}, salt="renewals.survey"),
        signing.dumps({"i": "x", "n": "y"}, salt="renewals.survey"),
        "",
        "x" * 5000,
    ]
    assert [read_survey_token(t) for t in forged] == [None] * len(forged)
    with pytest.raises(ValidationError) as err:
        survey_answer(token=forged[0], notice="a_lot")
    assert err.value.code == "invalid"
    # An erased person's link opens nothing either.
    Contact.objects.filter(pk=inv.contact_id).update(erased_at=timezone.now())
    assert read_survey_token(token) is None


# --- What each side sees ----------------------------------------------------------------------

ANSWERS = [
    ("Quinn", "a_lot", "Zebra homework", "More reports"),
    ("Rhea", "a_lot", "apple starters", ""),
    ("Sol", "a_little", "", "Faster login"),
    ("Tam", "not_at_all", "Marking", "bring back paper"),
    ("Uma", "a_lot", "Quizzes", ""),
]


def _answered(world: Any, n: int) -> ValueReview:
    review = open_review(world)
    people = [staff(world, name) for name, *_ in ANSWERS]
    made = invite(world, people, review)
    for inv, (_, notice, uses, change) in list(zip(made, ANSWERS, strict=True))[:n]:
        survey_answer(token=survey_token(inv), notice=notice, uses=uses, change=change)
    return review


def test_below_five_answers_the_supplier_sees_only_how_many(world: Any) -> None:
    review = _answered(world, 4)
    for user in ("s1_am", "s1_agent", "s1_admin"):
        seen = survey_summary(review, user=world.users[user])
        assert (seen["invited"], seen["answered"]) == (5, 4)
        assert seen["withheld"] is True and seen["counts"] is None
        assert seen["uses"] == [] and seen["changes"] == [] and seen["answers"] == []
        assert "from 5 answers" in seen["withheld_reason"]
    lead = survey_summary(review, user=world.users["a_lead"])
    assert lead["withheld"] is False
    assert lead["counts"] == {"not_at_all": 1, "a_little": 1, "a_lot": 2}
    assert [(a["name"], a["notice"]) for a in lead["answers"]] == [
        ("Quinn", "a_lot"),
        ("Rhea", "a_lot"),
        ("Sol", "a_little"),
        ("Tam", "not_at_all"),
    ]


def test_from_five_answers_the_supplier_sees_counts_and_words_without_names(world: Any) -> None:
    review = _answered(world, 5)
    seen = survey_summary(review, user=world.users["s1_am"])
    assert seen["withheld"] is False and (seen["answered"], seen["counted"]) == (5, 5)
    assert seen["note"] == ""
    assert seen["counts"] == {"not_at_all": 1, "a_little": 1, "a_lot": 3}
    # Sorted, not in the order people were asked (which would tie words to the nudges).
    assert seen["uses"] == ["apple starters", "Marking", "Quizzes", "Zebra homework"]
    assert seen["changes"] == ["bring back paper", "Faster login", "More reports"]
    assert seen["answers"] == []
    dumped = json.dumps(seen, default=str)
    contact_ids = SurveyInvitation.objects.filter(review=review).values_list("contact_id", "id")
    for name, *_ in ANSWERS:
        assert name not in dumped
    assert all(f'"contact": {c}' not in dumped and f'"invitation": {i}' not in dumped
               for c, i in contact_ids)  # fmt: skip
    trust = survey_summary(review, user=world.users["trust_lead"])
    assert {a["name"] for a in trust["answers"]} == {name for name, *_ in ANSWERS}
    assert trust["question"] == "Would you notice if we no longer had Acme Maths?"


def test_the_suppliers_figures_grow_five_answers_at_a_time(world: Any) -> None:
    """Otherwise comparing the figures before and after one more answer would show it."""
    review = _answered(world, 5)
    before = survey_summary(review, user=world.users["s1_am"])
    [sixth] = invite(world, [staff(world, "Vera")], review)
    survey_answer(token=survey_token(sixth), notice="not_at_all", uses="Sixth words")
    seen = survey_summary(review, user=world.users["s1_am"])
    assert (seen["answered"], seen["counted"]) == (6, 5)
    assert {k: seen[k] for k in ("counts", "uses", "changes")} == {
        k: before[k] for k in ("counts", "uses", "changes")
    }
    assert "first 5 of 6 answers" in seen["note"] and "Sixth words" not in json.dumps(seen)
    lead = survey_summary(review, user=world.users["a_lead"])
    assert lead["counted"] == 6 and "Sixth words" in lead["uses"]
    assert lead["counts"]["not_at_all"] == 2


@pytest.mark.parametrize("user", ["a_teacher", "b_lead", "s2_am", "outsider"])
def test_nobody_else_sees_the_answers(world: Any, user: str) -> None:
    review = _answered(world, 5)
    with pytest.raises(PermissionDenied):
        survey_summary(review, user=world.users[user])


# --- Subject access ---------------------------------------------------------------------------


def test_subject_access_includes_the_persons_survey_answers(world: Any) -> None:
    [inv] = survey_send(by=world.users["a_lead"], review=open_review(world))
    survey_answer(token=survey_token(inv), notice="a_lot", uses="Times tables", change="Dark mode")
    for asker in ("a_lead", "trust_lead", "a_teacher"):  # a_teacher is Ann, the person
        [row] = subject_access(by=world.users[asker], contact=world.c_a_teacher)["survey_answers"]
        assert (row["notice"], row["uses"], row["change"]) == ("a_lot", "Times tables", "Dark mode")
        assert row["review__supplier__name"] == "Acme Learning"
    supplier = subject_access(by=world.users["s1_am"], contact=world.c_a_teacher)
    assert supplier["survey_answers"] == []
