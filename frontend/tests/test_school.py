"""School and trust leads: the scorecard and its drill-down, the trend chart, staff
contact controls and the trust's read-only roll-up."""

from __future__ import annotations

import re
from datetime import timedelta

from django.utils import timezone
from django.utils.html import escape

from nudges.models import OptOut
from tickets.models import Ticket
from tickets.services import ticket_rate, ticket_transition


def _figures(html: str) -> dict[str, list[str]]:
    """Each measure's value per supplier column, left to right (suppliers by name)."""
    out: dict[str, list[str]] = {}
    for name, value in re.findall(r'data-measure="(\w+)">(?:<a [^>]*>)?([\d.]+)', html):
        out.setdefault(name, []).append(value)
    return out


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
    assert _figures(after)["ratings"] == ["1", "0"]  # Acme Learning, Brightboard


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
            "/school/tickets/",
            {"month": "9999-12", "since": "x", "first_response": "?", "page": "-1"},
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


def test_a_lead_stops_every_supplier_contacting_someone_and_lifts_it(world, login):
    client = login("a_lead")
    before = client.get("/school/contacts/").content.decode()
    # As the page writes it (a name like O'Donnell is HTML-escaped).
    assert f"Stop all: every supplier contacting {escape(world.c_a_dsl)}" in before
    # A missing supplier is not "every supplier": that is asked for explicitly.
    vague = client.post("/school/contacts/stop/", {"contact": world.c_a_dsl.pk, "supplier": ""})
    assert vague.status_code == 404
    assert not OptOut.objects.filter(contact=world.c_a_dsl).exists()
    response = client.post(
        "/school/contacts/stop/",
        {"contact": world.c_a_dsl.pk, "every": "1"},
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 200
    assert b"No supplier will contact" in response.content and b"All stopped" in response.content
    record = OptOut.objects.get(contact=world.c_a_dsl, supplier=None)
    assert record.source == "school_lead"
    world.n_a2.refresh_from_db()
    assert world.n_a2.status == "skipped"
    # Without JavaScript: the same form posts and comes back to the row.
    again = client.post("/school/contacts/stop/", {"contact": world.c_a_dsl.pk, "every": "1"})
    assert again.status_code == 302
    assert OptOut.objects.filter(contact=world.c_a_dsl, supplier=None).count() == 1
    lifted = client.post(f"/school/contacts/lift/{record.pk}/", HTTP_HX_REQUEST="true")
    assert b"Suppliers may contact" in lifted.content
    assert not OptOut.objects.filter(contact=world.c_a_dsl, supplier=None).exists()
    # A trust lead reads the controls but cannot stop anyone.
    assert (
        login("trust_lead")
        .post("/school/contacts/stop/", {"contact": world.c_a_dsl.pk, "every": "1"})
        .status_code
        == 403
    )


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


def test_the_page_shows_the_apis_figures(world, login):
    """One definition: the page's figures are the API's /scorecards/ for the same period."""
    Ticket.objects.filter(pk=world.t_a2.pk).update(
        first_response_at=world.t_a2.first_response_due_at + timedelta(hours=1)
    )
    resolved = ticket_transition(
        ticket=world.t_a1, by=world.s1_am, status="resolved", outcome="fixed"
    )
    ticket_rate(ticket=resolved, by=world.a_teacher, rating=5)
    client = login("a_lead")
    html = client.get("/school/scorecard/").content.decode()
    since = re.search(r"since=(\d{4}-\d{2}-\d{2})", html).group(1)
    api = client.get(
        "/api/v1/scorecards/",
        {"school": world.school_a.pk, "from": since},
        HTTP_ACCEPT="application/json",
    ).json()
    rows = sorted(api["rows"], key=lambda r: r["supplier_name"])
    page = _figures(html)
    assert page["raised"] == [str(r["tickets_raised"]) for r in rows]
    assert page["late"] == [str(r["first_responses_late"]) for r in rows] == ["0", "1"]
    assert page["ratings"] == [str(r["ratings"]) for r in rows] == ["1", "0"]


def test_late_resolved_and_reopened_drill_downs_hold_the_counted_tickets(world, login):
    Ticket.objects.filter(pk=world.t_a2.pk).update(
        first_response_at=world.t_a2.first_response_due_at + timedelta(hours=1)
    )
    resolved = ticket_transition(
        ticket=world.t_a1, by=world.s1_am, status="resolved", outcome="fixed"
    )
    ticket_transition(
        ticket=resolved, by=world.a_teacher, status="in_progress", reason="Not fixed"
    )  # reopened
    client = login("a_lead")
    html = client.get("/school/scorecard/").content.decode().replace("&amp;", "&")
    late = re.findall(r'href="(/school/tickets/\?[^"]*first_response=late)"', html)
    reopened = re.findall(r'href="(/school/tickets/\?[^"]*reopened=1)"', html)
    assert len(late) == 2 and len(reopened) == 1
    brightboard_late = client.get(next(u for u in late if f"supplier={world.s2.pk}" in u))
    assert "Ticket t_a2" in brightboard_late.content.decode()
    acme_reopened = client.get(reopened[0]).content.decode()
    assert "Ticket t_a1" in acme_reopened and "reopened at least once" in acme_reopened
    ticket_transition(ticket=world.t_a2, by=world.s2_am, status="resolved", outcome="fixed")
    resolved = client.get("/school/tickets/", {"resolved": "1"}).content.decode()
    assert "Ticket t_a2" in resolved and "Ticket t_a1" not in resolved  # t_a1 was reopened


def test_the_trust_sees_each_supplier_across_its_schools(world, login):
    from accounts.tests import factories as f
    from tickets.services import ticket_create

    second = f.SchoolFactory(name="Birch Juniors", trust=world.school_a.trust)
    teacher = f.UserFactory()
    f.MembershipFactory(user=teacher, organisation=second, role="teacher")
    p = f.PartnershipFactory(supplier=world.s2, school=second)
    ticket_create(by=teacher, partnership=p, subject="Ticket t_c1", description="x")
    html = login("trust_lead").get("/trust/").content.decode()
    across = html.split('id="overall-h"')[1].split("</section>")[0]
    birch = html.split("Birch Juniors</a></h2>")[1].split("</section>")[0]

    def raised(part, supplier):
        cell = re.search(supplier + r'</th>\s*<td class="num"><a [^>]*>(\d+)<', part)
        return int(cell.group(1)) if cell else None

    # Brightboard: t_a2 at Ashfield and t_c1 at Birch; Acme: t_a1 at Ashfield only.
    assert raised(across, "Brightboard") == 2 and raised(across, "Acme Learning") == 1
    assert raised(birch, "Brightboard") == 1 and raised(birch, "Acme Learning") is None
    # The trust-wide figure opens the trust's tickets, and only those.
    link = re.search(r'Brightboard</th>\s*<td class="num"><a href="([^"]+)"', across).group(1)
    assert f"trust={world.school_a.trust_id}" in link
    tickets = login("trust_lead").get(link.replace("&amp;", "&")).content.decode()
    assert "Ticket t_c1" in tickets and "Ticket t_a2" in tickets and "Ticket t_a1" not in tickets
    assert login("a_lead").get(link.replace("&amp;", "&")).status_code == 404
    assert "Beacon Academy" not in html


def _scorecard_queries(client, url):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as ctx:
        assert client.get(url).status_code == 200
    return len(ctx.captured_queries)


def test_scorecard_and_trust_queries_do_not_grow_with_suppliers(world, login):
    from accounts.tests import factories as f
    from tickets.services import ticket_create

    lead, trust = login("a_lead"), login("trust_lead")
    lead.get("/school/scorecard/")  # the cross-supplier benchmark is cached (15 minutes)
    few = (_scorecard_queries(lead, "/school/scorecard/"), _scorecard_queries(trust, "/trust/"))
    for i in range(6):
        supplier = f.SupplierFactory()
        for school in (world.school_a, world.school_b):
            p = f.PartnershipFactory(supplier=supplier, school=school)
            teacher = world.a_teacher if school == world.school_a else world.b_teacher
            ticket_create(by=teacher, partnership=p, subject=f"More {i}", description="x")
    many = (_scorecard_queries(lead, "/school/scorecard/"), _scorecard_queries(trust, "/trust/"))
    assert many == few


def test_across_the_trust_a_school_ahead_does_not_hide_one_behind(world, login):
    """Brightboard is behind at Ashfield and well ahead at Birch: summed, the hours look
    fine; the trust-wide row says at how many schools it is behind."""
    from accounts.tests import factories as f
    from visits.services import time_entry_create

    today = timezone.localdate()
    birch = f.SchoolFactory(name="Birch Juniors", trust=world.school_a.trust)
    p_birch = f.PartnershipFactory(supplier=world.s2, school=birch, onsite_hours_per_term=2)
    for school in (world.school_a, birch):
        school.terms.create(
            name="This term",
            starts_on=today - timedelta(days=40),
            ends_on=today + timedelta(days=40),
        )
    world.p_a2.onsite_hours_per_term = 10
    world.p_a2.save(update_fields=["onsite_hours_per_term"])
    time_entry_create(
        by=world.s2_am,
        partnership=p_birch,
        date=today,
        minutes=600,
        mode="on_site",
        activity="training",
    )
    html = login("trust_lead").get("/trust/").content.decode()
    across = html.split('id="overall-h"')[1].split("</section>")[0]
    brightboard = across.split("Brightboard</th>")[1].split("</tr>")[0]
    assert "10 / 12 h" in brightboard  # summed: ahead of the ~6 h expected by now
    assert "behind at 1 school" in brightboard
    ashfield = html.split("Ashfield Primary</a></h2>")[1].split("</section>")[0]
    assert 'badge warn">behind</span>' in ashfield.split("Brightboard</th>")[1].split("</tr>")[0]


def test_the_school_lead_sees_each_change_to_a_completed_visits_time(world, login):
    """Acme's 2-hour training visit, completed, then its time raised to 10 hours and an
    hour-long one deleted, each with a reason: Ashfield's lead (and the trust's) reads
    both on the scorecard, beside Acme's hours; Beacon's lead does not."""
    from visits.models import TimeEntry
    from visits.services import visit_complete, visit_create

    entries = []
    for hours_ago, length in ((30, 2), (6, 1)):
        start = timezone.now() - timedelta(hours=hours_ago)
        visit = visit_create(
            by=world.s1_am,
            partnership=world.p_a1,
            kind="training",
            starts_at=start,
            ends_at=start + timedelta(hours=length),
            attendees=[world.s1_am],
        )
        visit_complete(visit=visit, by=world.s1_am)
        entries.append(TimeEntry.objects.get(visit=visit, mode="on_site"))
    api = world.client("s1_am")
    raised = api.patch(
        f"/api/v1/time-entries/{entries[0].pk}/",
        {"minutes": 600, "reason": "Stayed for <b>INSET</b>"},
        format="json",
    )
    assert raised.status_code == 200
    gone = api.delete(f"/api/v1/time-entries/{entries[1].pk}/", {"reason": "Logged twice"})
    assert gone.status_code == 204

    html = login("a_lead").get("/school/scorecard/").content.decode()
    section = html[html.index('id="corrections-h"') : html.index('id="trend-h"')]
    assert section.count("data-correction=") == 2
    assert escape("Stayed for <b>INSET</b>") in section and "<b>INSET" not in section
    assert "Logged twice" in section and "deleted" in section
    assert "2 h 00 min on site" in section and "10 h 00 min on site" in section
    assert "1 h 00 min on site" in section
    assert "2 changes to on-site time" in html
    trust = login("trust_lead").get(f"/school/scorecard/?school={world.school_a.pk}")
    assert "Logged twice" in trust.content.decode()
    other = login("b_lead").get("/school/scorecard/").content.decode()
    assert "Logged twice" not in other and "data-correction=" not in other


def test_the_median_supplier_column_says_when_it_was_computed(world, login):
    """Five suppliers with tickets: the anonymised median column appears, with the time
    of the cached computation it shows."""
    import time_machine

    from accounts.tests import factories as f
    from tickets.services import ticket_create

    for i in range(3):
        p = f.PartnershipFactory(school=world.school_a)
        ticket_create(by=world.a_teacher, partnership=p, subject=f"More {i}", description="x")
    at = timezone.now().replace(hour=10, minute=7)
    with time_machine.travel(at, tick=False):
        first = login("a_lead").get("/school/scorecard/").content.decode()
    with time_machine.travel(at + timedelta(minutes=5), tick=False):
        again = login("a_lead").get("/school/scorecard/").content.decode()
    stamp = f"as of {timezone.localtime(at):%-d %b, %H:%M}"
    assert "Median supplier" in first and "of 5, anonymised" in first
    assert stamp in first and stamp in again  # the same computation, five minutes on
