"""Who reads which audit entries, the filters, the page, and a constant query count."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from accounts.models import Contact
from accounts.tests import factories as f
from nudges.models import NudgeTemplate


def _entries(world: Any, who: str, **params: Any) -> list[dict[str, Any]]:
    world.users[who].__dict__.pop("_crm_scope", None)
    response = world.client(who).get("/api/v1/audit-trail/", {"page_size": 200, **params})
    assert response.status_code == 200, response.content
    return response.json()["results"]


def _keys(entries: list[dict[str, Any]]) -> set[tuple[str, int]]:
    return {(e["kind"], e["object_id"]) for e in entries}


@pytest.fixture
def template(world: Any) -> NudgeTemplate:
    return NudgeTemplate.objects.create(
        supplier=world.s1, name="Acme check-in", subject="Hello", body_text="Hi {first_name}"
    )


def test_a_school_lead_reads_their_school_s_records_and_no_supplier_only_ones(world, template):
    keys = _keys(_entries(world, "a_lead"))
    assert ("ticket", world.t_a1.pk) in keys and ("ticket", world.t_a2.pk) in keys
    assert ("partnership", world.p_a1.pk) in keys
    assert ("contact", world.c_a_dsl.pk) in keys
    # Nothing of school B, and no supplier's template.
    assert ("ticket", world.t_b2.pk) not in keys
    assert ("partnership", world.p_b2.pk) not in keys
    assert ("contact", world.c_b_it.pk) not in keys
    assert not any(kind == "nudge_template" for kind, _ in keys)


def test_a_trust_lead_reads_the_trust_s_schools_like_their_lead(world: Any) -> None:
    keys = _keys(_entries(world, "trust_lead"))
    assert ("ticket", world.t_a1.pk) in keys
    assert ("ticket", world.t_b2.pk) not in keys  # Beacon is not in the trust


def test_a_supplier_admin_reads_only_their_supplier_s_records(world, template) -> None:
    s1 = _keys(_entries(world, "s1_admin"))
    assert ("ticket", world.t_a1.pk) in s1 and ("nudge_template", template.pk) in s1
    assert ("ticket", world.t_a2.pk) not in s1  # Brightboard's, at the same school
    s2 = _keys(_entries(world, "s2_admin"))
    assert ("ticket", world.t_a2.pk) in s2 and ("ticket", world.t_b2.pk) in s2
    assert ("ticket", world.t_a1.pk) not in s2
    assert ("nudge_template", template.pk) not in s2
    assert ("partnership", world.p_a1.pk) not in s2
    # Contacts: only those linked to the supplier's partnerships.
    assert ("contact", world.c_a_it.pk) in s1 and ("contact", world.c_a_dsl.pk) not in s1


def test_a_supplier_never_reads_a_contact_s_tags_or_a_change_to_them(world: Any) -> None:
    contact = Contact.objects.get(pk=world.c_a_it.pk)
    contact.tags = ",dsl,it_lead,"
    contact.save()
    contact.job_title = "Network manager"
    contact.save()
    entries = [e for e in _entries(world, "s1_admin", kind="contact", id=contact.pk)]
    fields = {c["field"] for e in entries for c in e["changes"]}
    assert "job_title" in fields and "tags" not in fields
    assert all(e["action"] != "changed" or e["changes"] for e in entries)
    lead = _entries(world, "a_lead", kind="contact", id=contact.pk)
    assert any(c["field"] == "tags" for e in lead for c in e["changes"])


@pytest.mark.parametrize("user", ["a_teacher", "b_teacher", "s1_am", "s1_agent", "outsider"])
def test_teachers_account_managers_agents_and_outsiders_read_nothing(world, user) -> None:
    assert _entries(world, user) == []


def test_one_ticket_s_history_shows_who_changed_its_outcome_and_when(world: Any) -> None:
    agent = world.users["s1_agent"]
    api = world.client("s1_agent")
    url = f"/api/v1/tickets/{world.t_a1.pk}/transition/"
    assert api.post(url, {"status": "in_progress"}, format="json").status_code == 200
    response = api.post(url, {"status": "resolved", "outcome": "fixed"}, format="json")
    assert response.status_code == 200, response.content
    entries = _entries(world, "a_lead", kind="ticket", id=world.t_a1.pk)
    assert {e["object_id"] for e in entries} == {world.t_a1.pk}
    newest = entries[0]
    assert newest["who"] == agent.full_name
    outcome = {c["field"]: c for c in newest["changes"]}["outcome"]
    assert (outcome["before"], outcome["after"]) == (None, "Fixed")  # the choice's label
    assert entries[-1]["action"] == "created"
    # Newest first.
    assert [e["when"] for e in entries] == sorted((e["when"] for e in entries), reverse=True)

    client = Client()
    client.force_login(world.users["a_lead"])
    html = client.get(f"/audit/?kind=ticket&id={world.t_a1.pk}").content.decode()
    assert "Fixed" in html and agent.full_name in html and "History of ticket" in html


def test_filters_by_user_partnership_and_dates(world: Any) -> None:
    edit = world.client("a_lead").patch(
        f"/api/v1/contacts/{world.c_a_it.pk}/", {"job_title": "Network manager"}, format="json"
    )
    assert edit.status_code == 200, edit.content
    by_lead = _entries(world, "a_lead", user=world.users["a_lead"].pk)
    assert _keys(by_lead) == {("contact", world.c_a_it.pk)}
    assert by_lead[0]["who"] == world.users["a_lead"].full_name
    on_p_a1 = _entries(world, "a_lead", partnership=world.p_a1.pk)
    assert ("ticket", world.t_a1.pk) in _keys(on_p_a1)
    assert ("ticket", world.t_a2.pk) not in _keys(on_p_a1)
    assert _entries(world, "a_lead", date_to="2000-01-01") == []


@pytest.mark.parametrize(
    "params",
    [
        {"kind": "pupil"},
        {"id": "3"},
        {"kind": "ticket", "id": "x"},
        {"date_from": "yesterday"},
        {"date_from": "2026-02-01", "date_to": "2026-01-01"},
        {"page": "0"},
        {"page_size": "500"},
    ],
)
def test_bad_filters_answer_400_with_the_field(world: Any, params: dict[str, str]) -> None:
    response = world.client("a_lead").get("/api/v1/audit-trail/", params)
    assert response.status_code == 400
    assert set(response.json()) & (set(params) | {"id", "date_to"})


def test_the_trail_is_read_only(world: Any) -> None:
    response = world.client("a_lead").post("/api/v1/audit-trail/", {})
    assert response.status_code == 405


def test_pages_are_newest_first_with_a_capped_count(world: Any) -> None:
    first = world.client("a_lead").get("/api/v1/audit-trail/", {"page_size": 2}).json()
    assert len(first["results"]) == 2 and first["next"] and first["count"] > 2
    second = world.client("a_lead").get(first["next"]).json()
    assert second["previous"]
    assert first["results"][-1]["when"] >= second["results"][0]["when"]


def test_the_page_refuses_roles_without_a_trail_and_fits_a_phone(world: Any) -> None:
    client = Client()
    client.force_login(world.users["a_teacher"])
    assert client.get("/audit/").status_code == 403
    client.force_login(world.users["a_lead"])
    html = client.get("/audit/").content.decode()
    assert "<table" not in html  # cards, not a wide table, at 375px
    assert 'class="held-list"' in html


def _more_changes(world: Any, n: int) -> None:
    from tickets.services import ticket_create

    for i in range(n):
        ticket, _ = ticket_create(
            by=world.users["a_teacher"], partnership=world.p_a1, subject="New", description="D"
        )
        ticket.subject = f"Changed {i}"
        ticket.assignee = world.users["s1_agent"]
        ticket.save()
        contact = f.ContactFactory(school=world.school_a)
        f.PartnershipContactFactory(partnership=world.p_a1, contact=contact)


def _count(world: Any, user: str) -> tuple[int, int]:
    world.users[user].__dict__.pop("_crm_scope", None)
    with CaptureQueriesContext(connection) as ctx:
        results = _entries(world, user)
    return len(ctx.captured_queries), len(results)


@pytest.mark.parametrize("user", ["a_lead", "s1_admin"])
def test_the_query_count_does_not_grow_with_the_entries(world: Any, user: str) -> None:
    _more_changes(world, 2)
    few, few_rows = _count(world, user)
    _more_changes(world, 20)
    many, many_rows = _count(world, user)
    assert many_rows > few_rows + 40
    assert many == few, (few, many)


def test_a_cohort_change_shows_who_joined_the_phase(world: Any) -> None:
    phase = world.ph_a1
    response = world.client("s1_am").patch(
        f"/api/v1/trial-phases/{phase.pk}/",
        {"cohort": [world.c_a_teacher.pk, world.c_a_it.pk]},
        format="json",
    )
    assert response.status_code == 200, response.content
    entries = _entries(world, "a_lead", kind="trial_phase", id=phase.pk)
    cohort = [c for e in entries for c in e["changes"] if c["field"] == "cohort"]
    assert cohort, entries
    ivan = str(Contact.objects.get(pk=world.c_a_it.pk))
    assert ivan in cohort[0]["after"] and ivan not in (cohort[0]["before"] or "")
    assert entries[0]["who"] == world.users["s1_am"].full_name


@pytest.mark.parametrize(
    ("user", "shown"),
    [
        ("a_lead", True),
        ("trust_lead", True),
        ("s1_admin", True),
        ("s1_am", False),
        ("a_teacher", False),
    ],
)
def test_the_trail_is_in_the_navigation_of_those_who_read_it(world, user, shown) -> None:
    client = Client()
    client.force_login(world.users[user])
    html = client.get("/audit/" if shown else "/", follow=True).content.decode()
    assert "<nav" in html
    assert ('href="/audit/"' in html) is shown
