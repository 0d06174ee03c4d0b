"""Subject access: every record kind in the export, checked against the database, as each
role may see it; a constant number of queries whatever the number of rows."""

from __future__ import annotations

import json
from datetime import timedelta
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.db import connection
from django.http import Http404
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.services import contact_update
from accounts.tests import factories as f
from nudges.models import Nudge, NudgeEvent
from privacy.access import subject_access
from tickets.models import TicketMessage
from tickets.services import ticket_create, ticket_post_message


def _tickets(world: Any, n: int) -> None:
    teacher = world.users["a_teacher"]
    for i in range(n):
        ticket, _ = ticket_create(
            by=teacher, partnership=world.p_a1, subject=f"Extra {i}", description="More"
        )
        ticket_post_message(ticket=ticket, by=teacher, body=f"My message {i}")


def _ids(rows: list[dict[str, Any]]) -> set[int]:
    return {r["id"] for r in rows}


def test_the_school_lead_gets_every_kind_but_suppliers_internal_data(world: Any) -> None:
    contact = world.c_a_teacher
    teacher = world.users["a_teacher"]
    contact_update(contact=contact, by=world.users["a_lead"], job_title="Year 4")
    data = subject_access(by=world.users["a_lead"], contact=contact)
    assert data["version"] == 1 and data["requested_by"]["id"] == world.users["a_lead"].pk
    assert [c["id"] for c in data["contacts"]] == [contact.pk]
    assert data["contacts"][0]["tags"] == ",teacher,"
    assert {r["partnership_id"] for r in data["partnership_links"]} == {world.p_a1.pk}
    assert _ids(data["tickets_raised"]) == {world.t_a1.pk}
    written = set(
        TicketMessage.objects.filter(author=teacher, is_internal=False).values_list("id", flat=True)
    )
    assert _ids(data["messages_written"]) == written
    assert data["user_account"]["email"] == teacher.email
    assert {m["role"] for m in data["memberships"]} == {"teacher"}
    # Audit entries: the contact's own history rows, and the changes the person made.
    own = [e for e in data["audit_entries"] if e["model"] == "accounts.Contact"]
    assert len(own) == contact.history.count() and own[-1]["values"]["job_title"] == "Year 4"
    assert data["supplier_notes"] == []
    json.dumps(data)  # serialisable as it is


def test_the_school_lead_sees_nudges_events_opt_outs_replies_and_visits(world: Any) -> None:
    contact = world.c_a_it
    NudgeEvent.objects.create(
        nudge=world.n_a1, sg_event_id="e1", event="delivered", occurred_at=timezone.now()
    )
    data = subject_access(by=world.users["a_lead"], contact=contact)
    assert _ids(data["nudges"]) == set(
        Nudge.objects.filter(contact=contact).values_list("id", flat=True)
    )
    assert [e["event"] for e in data["nudge_events"]] == ["delivered"]
    assert _ids(data["opt_outs"]) == {world.oo_a1.pk}
    # Replies are the person's correspondence with the supplier, not the school's record.
    assert data["replies_and_stops"] == []
    assert _ids(data["visits_attended"]) == {world.v_a1.pk}
    # Supplier s1's note about this person is s1's, not the school's.
    assert data["supplier_notes"] == []


def test_a_supplier_gets_only_what_it_holds(world: Any) -> None:
    contact = world.c_a_it
    data = subject_access(by=world.users["s1_admin"], contact=contact)
    assert data["scope"] == "supplier"
    assert "tags" not in data["contacts"][0]
    assert _ids(data["supplier_notes"]) == {world.cn_s1_it.pk}
    assert {n["supplier__name"] for n in data["nudges"]} == {"Acme Learning"}
    assert data["user_account"] is None
    assert _ids(data["replies_and_stops"]) == {world.nr_a1.pk}
    # Another supplier that does not work with this person: not found.
    with pytest.raises(Http404):
        subject_access(by=world.users["s2_admin"], contact=contact)
    # s2's proposal of c_a_dsl's address and s2's note are not s1's.
    dsl = subject_access(by=world.users["s2_admin"], contact=world.c_a_dsl)
    assert _ids(dsl["supplier_notes"]) == {world.cn_s2_dsl.pk}
    assert world.cp_a1.pk not in _ids(dsl["proposals"])
    school = subject_access(by=world.users["a_lead"], contact=world.c_a_dsl)
    assert world.cp_a1.pk in _ids(school["proposals"])


def test_other_schools_and_teachers_get_404_for_someone_else(world: Any) -> None:
    for who in ("b_lead", "b_teacher", "a_teacher", "outsider"):
        with pytest.raises(Http404):
            subject_access(by=world.users[who], contact=world.c_a_it)
    own = subject_access(by=world.users["a_teacher"], contact=world.c_a_teacher)
    assert own["contacts"][0]["id"] == world.c_a_teacher.pk


def test_queries_do_not_grow_with_the_rows(world: Any) -> None:
    contact = world.c_a_teacher
    lead = world.users["a_lead"]
    subject_access(by=lead, contact=contact)
    with CaptureQueriesContext(connection) as small:
        subject_access(by=lead, contact=contact)
    _tickets(world, 15)
    with CaptureQueriesContext(connection) as big:
        data = subject_access(by=lead, contact=contact)
    assert len(data["tickets_raised"]) == 16
    assert len(big) == len(small)


def test_the_operator_command_exports_across_schools(world: Any, tmp_path: Any) -> None:
    email = world.c_a_teacher.email
    f.ContactFactory(school=world.school_b, first_name="Ann", email=email)
    out = tmp_path / "export.json"
    call_command("subject_access", "--email", email, "--output", str(out), stdout=StringIO())
    data = json.loads(out.read_text())
    assert {c["school_id"] for c in data["contacts"]} == {world.school_a.pk, world.school_b.pk}
    assert data["scope"] == "operator"
    assert _ids(data["tickets_raised"]) == {world.t_a1.pk}


def test_a_visit_in_the_past_and_future_both_listed(world: Any) -> None:
    from visits.services import visit_create

    start = timezone.now() - timedelta(days=30)
    past = visit_create(
        by=world.users["s1_am"],
        partnership=world.p_a1,
        kind="training",
        starts_at=start,
        ends_at=start + timedelta(hours=1),
        attendees=[world.users["s1_am"]],
        contacts=[world.c_a_it],
    )
    data = subject_access(by=world.users["a_lead"], contact=world.c_a_it)
    assert _ids(data["visits_attended"]) == {world.v_a1.pk, past.pk}
