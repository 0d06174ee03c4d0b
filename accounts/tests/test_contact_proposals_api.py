"""Suppliers propose contacts; the school's lead confirms. The school's record stays the
school's, and the proposal tells the supplier nothing about what the school holds."""

from __future__ import annotations

import threading

import pytest
from django.core import mail
from django.db import connection, connections

from accounts.models import Contact, ContactProposal, PartnershipContact
from accounts.services import contact_proposal_accept, contact_proposal_decline
from conftest import build_world

URL = "/api/v1/contact-proposals/"


def _propose(world, user, partnership, email, **extra):
    return world.client(user).post(
        URL,
        {"partnership": partnership.pk, "first_name": "Sam", "email": email, **extra},
        format="json",
    )


def _same_shape(body: dict) -> dict:
    """What must not differ between proposing a known and an unknown address."""
    ignore = {"id", "email", "proposed_at"}
    return {k: v for k, v in body.items() if k not in ignore}


def test_proposing_an_address_the_school_holds_answers_exactly_like_a_new_one(world):
    known = _propose(world, "s1_am", world.p_a1, world.c_a_unlinked.email.upper(), tags=["dsl"])
    new = _propose(world, "s1_am", world.p_a1, "brand.new@ashfield.example", tags=["dsl"])
    assert known.status_code == new.status_code == 201, known.json()
    assert _same_shape(known.json()) == _same_shape(new.json())
    assert known.json()["existing_contact"] is None
    assert known.json()["status"] == "pending"
    body = known.content.decode()
    assert world.c_a_unlinked.last_name not in body
    # Nothing is linked, so the supplier still cannot read the school's record.
    assert (
        world.client("s1_am").get(f"/api/v1/contacts/{world.c_a_unlinked.pk}/").status_code == 404
    )
    # ...and it is no contact: not listed, not nudgeable, in no audience.
    listed = world.client("s1_am").get("/api/v1/contacts/").json()["results"]
    assert "brand.new@ashfield.example" not in {c["email"] for c in listed}
    assert not Contact.objects.filter(email="brand.new@ashfield.example").exists()


def test_the_school_lead_sees_link_to_existing_and_accepting_links_the_schools_record(world):
    existing = world.c_a_dsl  # the school's record, linked to s2 (cp_a1 proposes it for s1)
    lead = world.client("a_lead")
    body = lead.get(f"{URL}{world.cp_a1.pk}/").json()
    assert body["existing_contact"] == {"id": existing.pk, "name": str(existing)}
    response = lead.post(f"{URL}{world.cp_a1.pk}/accept/")
    assert response.status_code == 200, response.json()
    assert response.json()["status"] == "accepted"
    assert response.json()["contact"] == existing.pk
    assert PartnershipContact.objects.filter(partnership=world.p_a1, contact=existing).exists()
    existing.refresh_from_db()
    assert existing.first_name == "Dina"  # the school's record, not the proposed name
    # Now s1 sees the person, and the status.
    s1 = world.client("s1_am")
    assert s1.get(f"/api/v1/contacts/{existing.pk}/").status_code == 200
    assert s1.get(f"{URL}{world.cp_a1.pk}/").json()["status"] == "accepted"
    assert mail.outbox == []  # nobody is emailed


def test_accepting_a_new_address_creates_the_contact_with_the_suggested_details(world):
    proposal = _propose(
        world,
        "s2_am",
        world.p_b2,
        "new.it@beacon.example",
        last_name="Reid",
        job_title="Network manager",
        tags=["it_lead"],
    ).json()
    assert world.client("b_lead").get(f"{URL}{proposal['id']}/").json()["existing_contact"] is None
    response = world.client("b_lead").post(f"{URL}{proposal['id']}/accept/")
    assert response.status_code == 200
    contact = Contact.objects.get(pk=response.json()["contact"])
    assert (contact.school, contact.job_title, contact.tag_list) == (
        world.school_b,
        "Network manager",
        ["it_lead"],
    )
    assert PartnershipContact.objects.filter(partnership=world.p_b2, contact=contact).exists()


def test_a_declined_proposal_shows_the_supplier_the_reason(world):
    response = world.client("a_lead").post(
        f"{URL}{world.cp_a1.pk}/decline/", {"reason": "Please go through the office."}
    )
    assert response.status_code == 200
    seen = world.client("s1_admin").get(f"{URL}{world.cp_a1.pk}/").json()
    assert (seen["status"], seen["decline_reason"]) == ("declined", "Please go through the office.")
    assert not PartnershipContact.objects.filter(
        partnership=world.p_a1, contact=world.c_a_dsl
    ).exists()
    assert world.client("s2_am").get(f"{URL}{world.cp_a2.pk}/").json()["decline_reason"] == (
        "Nora has left the school."
    )


@pytest.mark.parametrize("user", ["s1_am", "s1_admin", "s1_agent", "trust_lead"])
def test_only_the_schools_lead_accepts_or_declines(world, user):
    for verb in ("accept", "decline"):
        response = world.client(user).post(f"{URL}{world.cp_a1.pk}/{verb}/")
        assert response.status_code == 403, (user, verb, response.status_code)
    world.cp_a1.refresh_from_db()
    assert world.cp_a1.status == "pending"


def test_other_suppliers_and_teachers_never_see_a_proposal(world):
    for user in ("s2_am", "a_teacher", "b_lead"):
        assert world.client(user).get(f"{URL}{world.cp_a1.pk}/").status_code == 404
        response = world.client(user).post(f"{URL}{world.cp_a1.pk}/accept/")
        assert response.status_code == 404


def test_a_decided_proposal_is_decided_once(world):
    lead = world.client("a_lead")
    response = lead.post(f"{URL}{world.cp_a2.pk}/accept/")  # declined already
    assert response.status_code == 400 and "declined" in response.json()["status"][0]


def test_support_agents_and_school_staff_cannot_propose(world):
    assert _propose(world, "s1_agent", world.p_a1, "x@ashfield.example").status_code == 403
    assert _propose(world, "a_lead", world.p_a1, "x@ashfield.example").status_code == 403


def test_bad_input_is_a_field_error(world):
    response = world.client("s1_am").post(
        URL, {"partnership": world.p_a1.pk, "email": "not-an-address", "tags": ["boss"]}
    )
    assert response.status_code == 400
    assert {"email", "first_name", "tags"} <= set(response.json())
    # Another supplier's partnership is like a missing one.
    response = _propose(world, "s1_am", world.p_a2, "x@ashfield.example")
    assert response.status_code == 400 and "does not exist" in str(response.json()["partnership"])


def test_the_same_address_is_proposed_once_while_pending(world):
    assert _propose(world, "s1_am", world.p_a1, "twice@ashfield.example").status_code == 201
    again = _propose(world, "s1_am", world.p_a1, "Twice@ashfield.example")
    assert again.status_code == 400 and "email" in again.json()


def test_a_linked_contact_need_not_be_proposed(world):
    response = _propose(world, "s1_am", world.p_a1, world.c_a_it.email)
    assert response.status_code == 400 and "already a contact" in response.json()["email"][0]


def test_the_school_lead_lists_pending_proposals_for_the_school(world):
    body = world.client("a_lead").get(URL, {"status": "pending"}).json()
    assert [row["id"] for row in body["results"]] == [world.cp_a1.pk]
    assert body["results"][0]["supplier_name"] == "Acme Learning"


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("second", ["accept", "decline"])
def test_accept_racing_another_decision_has_exactly_one_outcome(second: str) -> None:
    if connection.vendor != "postgresql":
        pytest.skip("the race is only real with two PostgreSQL connections")
    world = build_world()
    lead, proposal = world.users["a_lead"], world.proposals["cp_a1"]
    start = threading.Barrier(2)
    outcomes: list[str] = []
    errors: list[BaseException] = []

    def decide(verb: str) -> None:
        from django.core.exceptions import ValidationError

        try:
            start.wait(timeout=10)
            if verb == "accept":
                contact_proposal_accept(proposal=proposal, by=lead)
            else:
                contact_proposal_decline(proposal=proposal, by=lead, reason="No")
            outcomes.append(verb)
        except ValidationError as exc:
            outcomes.append(f"refused: {exc.message_dict['status'][0]}")
        except BaseException as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=decide, args=(v,)) for v in ("accept", second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert not errors, errors
    done = [o for o in outcomes if not o.startswith("refused")]
    assert len(done) == 1 and len(outcomes) == 2, outcomes
    stored = ContactProposal.objects.get(pk=proposal.pk)
    assert stored.status == {"accept": "accepted", "decline": "declined"}[done[0]]
    links = PartnershipContact.objects.filter(partnership=world.p_a1, contact=world.c_a_dsl)
    assert links.count() == (1 if stored.status == "accepted" else 0)


@pytest.mark.django_db(transaction=True)
def test_two_suppliers_proposals_of_one_new_address_accepted_at_once_make_one_contact() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("the race is only real with two PostgreSQL connections")
    from accounts.services import contact_proposal_create

    world = build_world()
    lead = world.users["a_lead"]
    proposals = [
        contact_proposal_create(
            by=world.users[who], partnership=p, first_name="Lee", email="lee.new@ashfield.example"
        )
        for who, p in (("s1_am", world.p_a1), ("s2_am", world.p_a2))
    ]
    start = threading.Barrier(2)
    errors: list[BaseException] = []

    def accept(proposal: ContactProposal) -> None:
        try:
            start.wait(timeout=10)
            contact_proposal_accept(proposal=proposal, by=lead)
        except BaseException as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=accept, args=(p,)) for p in proposals]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert not errors, errors
    [contact] = Contact.objects.filter(school=world.school_a, email="lee.new@ashfield.example")
    linked = set(contact.partnership_links.values_list("partnership_id", flat=True))
    assert linked == {world.p_a1.pk, world.p_a2.pk}
    assert {
        p.contact_id for p in ContactProposal.objects.filter(pk__in=[x.pk for x in proposals])
    } == {contact.pk}


def test_the_leads_list_costs_the_same_queries_for_one_proposal_or_many(world):
    from django.db import connection as conn
    from django.test.utils import CaptureQueriesContext

    from accounts.services import contact_proposal_create

    def count() -> tuple[int, int]:
        with CaptureQueriesContext(conn) as queries:
            body = world.client("a_lead").get(URL, {"status": "pending"}).json()
        return len(queries), body["count"]

    few, n_few = count()
    for i in range(6):
        email = world.c_a_it.email if i == 0 else f"extra{i}@ashfield.example"
        contact_proposal_create(
            by=world.users["s2_am"], partnership=world.p_a2, first_name="E", email=email
        )
    many, n_many = count()
    assert (n_few, n_many) == (1, 7)
    assert many == few
    rows = world.client("a_lead").get(URL, {"status": "pending"}).json()["results"]
    linked = [r for r in rows if r["existing_contact"]]
    assert {r["existing_contact"]["id"] for r in linked} == {world.c_a_it.pk, world.c_a_dsl.pk}
