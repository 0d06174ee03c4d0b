"""School and trust leads: the scorecard and its drill-down, the trend chart, staff
contact controls and the trust's read-only roll-up."""

from __future__ import annotations

import re
from datetime import timedelta

from django.utils import timezone

from nudges.models import OptOut
from tickets.models import Ticket
from tickets.services import ticket_rate, ticket_transition


def _figures(html: str) -> dict[str, str]:
    return dict(re.findall(r'data-measure="(\w+)">(?:<a [^>]*>)?([\d.]+)', html))


def test_the_scorecard_puts_the_schools_suppliers_side_by_side(world, login):
    html = login("a_lead").get("/school/scorecard/").content.decode()
    assert "Suppliers at Ashfield Primary" in html
    assert "Acme Learning" in html and "Brightboard" in html
    assert "<svg" in html and "First responses within target, by month" in html
    assert "Beacon Academy" not in html


def test_each_figure_links_to_the_tickets_behind_it(world, login):
    client = login("a_lead")
    resolved = ticket_transition(
        ticket=world.t_a1, by=world.s1_am, status="resolved", outcome="fixed"
    )
    ticket_rate(ticket=resolved, by=world.a_teacher, rating=2)
    html = client.get("/school/scorecard/").content.decode()
    links = re.findall(r'href="(/school/tickets/\?[^"]+)"', html)
    assert links
    for link in links:
        page = client.get(link.replace("&amp;", "&"))
        assert page.status_code == 200
    rated = [x for x in links if "rated=1" in x and f"supplier={world.s1.pk}" in x]
    page = client.get(rated[0].replace("&amp;", "&")).content.decode()
    assert "Ticket t_a1" in page and "Ticket t_a2" not in page and "rated" in page


def test_the_scorecard_changes_when_a_ticket_is_rated(world, login):
    client = login("a_lead")
    before = client.get("/school/scorecard/").content.decode()
    assert 'data-measure="rating">—' in before.replace("\n", "")
    resolved = ticket_transition(
        ticket=world.t_a1, by=world.s1_am, status="resolved", outcome="fixed"
    )
    ticket_rate(ticket=resolved, by=world.a_teacher, rating=4)
    after = client.get("/school/scorecard/").content.decode()
    assert "4.0 / 5" in after
    assert _figures(after)["ratings"] == "1"


def test_first_response_figures_match_their_drill_down(world, login):
    # t_a1 was answered at once (on time); make t_a2's answer late.
    Ticket.objects.filter(pk=world.t_a2.pk).update(
        first_response_at=world.t_a2.first_response_due_at + timedelta(hours=1)
    )
    client = login("a_lead")
    on_time = client.get(
        "/school/tickets/", {"supplier": world.s1.pk, "first_response": "on_time"}
    ).content.decode()
    late = client.get(
        "/school/tickets/", {"supplier": world.s2.pk, "first_response": "late"}
    ).content.decode()
    assert "Ticket t_a1" in on_time and "Ticket t_a2" in late
    html = client.get("/school/scorecard/").content.decode()
    assert "100%" in html and "0%" in html


def test_drill_down_filters_are_scoped(world, login):
    client = login("a_lead")
    page = client.get("/school/tickets/", {"supplier": world.s2.pk}).content.decode()
    assert "Ticket t_a2" in page and "Ticket t_b2" not in page
    assert client.get("/school/tickets/", {"school": world.school_b.pk}).status_code == 404
    month = timezone.localdate().strftime("%Y-%m")
    assert "Ticket t_a1" in client.get("/school/tickets/", {"month": month}).content.decode()
    assert (
        client.get(
            "/school/tickets/", {"month": "13-2026", "since": "x", "first_response": "?"}
        ).status_code
        == 200
    )


def test_staff_contact_controls_show_who_contacts_whom(world, login):
    html = login("a_lead").get("/school/contacts/").content.decode()
    row = html.split(f'id="contact-{world.c_a_it.pk}"')[1].split("</tr>")[0]
    assert "Stopped" in row and "Allow again" in row  # a_lead's stop of Acme
    dsl = html.split(f'id="contact-{world.c_a_dsl.pk}"')[1].split("</tr>")[0]
    assert "Linked" in dsl and "1 scheduled" in dsl and "Stop Brightboard contacting" in dsl


def test_a_lead_stops_a_supplier_contacting_someone_and_lifts_it(world, login):
    client = login("a_lead")
    htmx = {"HTTP_HX_REQUEST": "true"}
    response = client.post(
        "/school/contacts/stop/", {"contact": world.c_a_dsl.pk, "supplier": world.s2.pk}, **htmx
    )
    assert response.status_code == 200
    assert b"Brightboard will no longer contact" in response.content
    record = OptOut.objects.get(contact=world.c_a_dsl, supplier=world.s2)
    assert record.source == "school_lead"
    world.n_a2.refresh_from_db()
    assert world.n_a2.status == "skipped"  # what was scheduled is not sent
    lifted = client.post(f"/school/contacts/lift/{record.pk}/", **htmx)
    assert lifted.status_code == 200 and b"may contact" in lifted.content
    assert not OptOut.objects.filter(pk=record.pk).exists()


def test_contact_controls_refuse_what_the_role_may_not_do(world, login):
    stop = {"contact": world.c_a_dsl.pk, "supplier": world.s2.pk}
    assert login("trust_lead").post("/school/contacts/stop/", stop).status_code == 403
    assert login("b_lead").post("/school/contacts/stop/", stop).status_code == 404
    assert login("a_lead").post("/school/contacts/stop/", {"contact": "x"}).status_code == 404
    assert login("s2_am").post("/school/contacts/stop/", stop).status_code == 403
    # A person's own opt-out is theirs to lift, not the lead's (403, not a 500).
    own = OptOut.objects.create(contact=world.c_a_unlinked, supplier=None, source="link")
    assert login("a_lead").post(f"/school/contacts/lift/{own.pk}/").status_code == 403
    assert login("b_lead").post(f"/school/contacts/lift/{world.oo_a1.pk}/").status_code == 404


def test_the_trust_sees_its_schools_read_only(world, login):
    html = login("trust_lead").get("/trust/").content.decode()
    assert "Oak Trust" in html and "Ashfield Primary" in html
    assert "Beacon Academy" not in html
    contacts = (
        login("trust_lead").get(f"/school/contacts/?school={world.school_a.pk}").content.decode()
    )
    assert (
        "You can read this" in contacts
        and "contact-stop" not in contacts
        and "/school/contacts/stop/" not in contacts
    )
