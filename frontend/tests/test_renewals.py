"""The renewals pages: each side's list of agreements, setting a term, the value review
(one page for both sides), the staff survey sent from it, the school lead's decision with
its confirm step, the governors' pack as a PDF, the portfolio's renewal column, and the
partnership's timeline."""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.models import Stage
from accounts.tests import factories as f
from renewals.models import AgreementTerm, SurveyInvitation, ValueReview
from renewals.pdf import SECTIONS, pack_html
from renewals.services import review_open, term_save
from tickets.models import Ticket
from tickets.services import ticket_create

pytestmark = pytest.mark.django_db

LEADS_OF = {"p_a1": "a_lead", "p_a2": "a_lead", "p_b2": "b_lead"}


def _term(world: Any, name: str = "p_a1", *, notice_in: int = 30, value: str = "4800.00"):
    """The partnership's current term, its notice date ``notice_in`` days from today."""
    today = timezone.localdate()
    return term_save(
        by=world.users[LEADS_OF[name]],
        partnership=world.partnerships[name],
        starts_on=today - timedelta(days=300),
        ends_on=today + timedelta(days=notice_in + 60),
        notice_days=60,
        annual_value=Decimal(value),
    )


def _review(world: Any, name: str = "p_a1", **kw: Any) -> ValueReview:
    term = _term(world, name, **kw)
    existing = ValueReview.objects.filter(term=term).first()
    return existing or review_open(by=world.users[LEADS_OF[name]], term=term)


def _text(response: Any) -> str:
    return re.sub(r"\s+", " ", response.content.decode())


def _nav(html: str) -> str:
    return html.split('aria-label="Main"', 1)[1].split("</nav>", 1)[0]


# --- The lists -------------------------------------------------------------------------------


def test_the_school_lead_sees_their_renewals_soonest_notice_first_due_ones_marked(world, login):
    _term(world, "p_a2", notice_in=200)  # not due: beyond RENEWAL_DUE_WEEKS
    _term(world, "p_a1", notice_in=20)  # due
    _term(world, "p_b2", notice_in=5)  # another school's
    html = _text(login("a_lead").get("/school/renewals/"))
    assert "Beacon Academy" not in html
    acme, bright = html.index("Acme Learning"), html.index("Brightboard")
    assert acme < bright  # the soonest notice date first
    cards = html.split('class="card renewal-card')[1:]
    assert " is-due" in cards[0] and ">due</span>" in cards[0]
    assert "is-due" not in cards[1] and ">due</span>" not in cards[1]
    assert "£4,800" in cards[0]
    assert "Open the review" in cards[0]


def test_the_trust_lead_sees_the_trusts_schools_renewals(world, login):
    _term(world, "p_a1")
    _term(world, "p_b2")
    html = _text(login("trust_lead").get("/school/renewals/"))
    assert "Acme Learning" in html and "Beacon Academy" not in html
    assert "Renewals" in _nav(html)


def test_teachers_have_no_renewals(world, login):
    review = _review(world)
    teacher = login("a_teacher")
    assert "Renewals" not in _nav(teacher.get("/my-tickets/").content.decode())
    assert teacher.get("/school/renewals/").status_code in (403, 404)
    assert teacher.get(f"/renewals/reviews/{review.pk}/").status_code in (403, 404)
    assert teacher.get(f"/renewals/reviews/{review.pk}/pack.pdf").status_code in (403, 404)
    assert teacher.get(f"/renewals/partnerships/{world.p_a1.pk}/").status_code in (403, 404)


@pytest.mark.parametrize("who", ["b_lead", "s2_am", "s2_admin"])
def test_a_review_outside_ones_scope_is_not_found(world, login, who):
    review = _review(world)
    client = login(who)
    assert client.get(f"/renewals/reviews/{review.pk}/").status_code == 404
    assert client.get(f"/renewals/reviews/{review.pk}/pack.pdf").status_code == 404
    assert client.get(f"/renewals/partnerships/{world.p_a1.pk}/").status_code == 404
    response = client.post(f"/renewals/reviews/{review.pk}/decide/", {"decision": "end"})
    assert response.status_code in (403, 404)
    review.refresh_from_db()
    assert review.status == ValueReview.Status.OPEN


def test_the_suppliers_managers_see_their_portfolios_renewals(world, login):
    _term(world, "p_a1")
    _term(world, "p_b2")
    for who in ("s1_am", "s1_admin"):
        response = login(who).get("/supplier/renewals/")
        html = _text(response)
        assert response.status_code == 200
        assert "Ashfield Primary" in html and "Beacon Academy" not in html
        assert "Renewals" in _nav(html)
    agent = login("s1_agent")
    assert "Renewals" not in _nav(agent.get("/portfolio/").content.decode())
    assert agent.get("/supplier/renewals/").status_code == 403


# --- Setting the term ------------------------------------------------------------------------


@pytest.mark.parametrize("who", ["a_lead", "s1_am"])
def test_either_side_sets_the_term_with_errors_listed_and_linked(world, login, who):
    client = login(who)
    url = f"/renewals/partnerships/{world.p_a1.pk}/"
    bad = client.post(
        url, {"starts_on": "2026-09-01", "ends_on": "2026-08-01", "notice_days": "90"}
    )
    assert bad.status_code == 422
    html = _text(bad)
    summary = html.split('class="form-errors"', 1)[1].split("</div>", 1)[0]
    assert 'href="#id_ends_on"' in summary and "must end after it starts" in summary
    assert not AgreementTerm.objects.filter(partnership=world.p_a1, status="current").exists() or (
        AgreementTerm.objects.get(partnership=world.p_a1, status="current").ends_on.isoformat()
        != "2026-08-01"
    )
    too_long = client.post(url, {"starts_on": "x", "ends_on": "", "notice_days": "99999"})
    assert too_long.status_code == 422
    ok = client.post(
        url,
        {
            "starts_on": "2026-09-01",
            "ends_on": "2027-08-31",
            "notice_days": "60",
            "annual_value": "3600",
        },
    )
    assert ok.status_code == 302
    term = AgreementTerm.objects.get(partnership=world.p_a1, status="current")
    assert (term.ends_on.isoformat(), term.notice_on.isoformat()) == ("2027-08-31", "2027-07-02")
    assert term.annual_value == Decimal("3600")
    page = _text(client.get(url))
    assert "2 Jul 2027" in page and "£3,600" in page


def test_a_support_agent_reads_the_agreement_but_cannot_set_it(world, login):
    _term(world)
    client = login("s1_agent")
    url = f"/renewals/partnerships/{world.p_a1.pk}/"
    page = client.get(url)
    assert page.status_code == 200 and "Save the term" not in page.content.decode()
    response = client.post(
        url, {"starts_on": "2026-09-01", "ends_on": "2027-08-31", "notice_days": "60"}
    )
    assert response.status_code == 403


# --- The review page -------------------------------------------------------------------------


def test_both_sides_see_every_section_with_its_definition(world, login):
    review = _review(world)
    for who in ("a_lead", "s1_am"):
        html = _text(login(who).get(f"/renewals/reviews/{review.pk}/"))
        for _, heading in SECTIONS:
            assert f">{heading}</h2>" in html, (who, heading)
        assert "Of resolved tickets, the share whose outcome was anything but" in html
        assert "Staff of the school sent at least one nudge by the supplier" in html


def test_a_share_of_a_handful_of_tickets_is_shown_as_a_count(world, login):
    review = _review(world)
    now = timezone.now()
    for i, outcome in enumerate(["fixed", "wont_change"]):
        t, _ = ticket_create(
            by=world.a_teacher, partnership=world.p_a1, subject=f"Small {i}", description="x"
        )
        Ticket.objects.filter(pk=t.pk).update(
            status="resolved", resolved_at=now, outcome=outcome, outcome_reason=f"Done {i}"
        )
    html = _text(login("a_lead").get(f"/renewals/reviews/{review.pk}/"))
    acted = html.split('data-figure="acted_on"', 1)[1].split("</div>", 1)[0]
    assert "1 of 2" in acted and "%" not in acted
    assert "You said:</strong> Small 0" in html and "Done 1" in html


def test_the_review_pages_queries_do_not_grow_with_tickets(world, login):
    review = _review(world)
    client = login("a_lead")
    url = f"/renewals/reviews/{review.pk}/"

    def count() -> int:
        with CaptureQueriesContext(connection) as ctx:
            assert client.get(url).status_code == 200
        return len(ctx.captured_queries)

    few = count()
    now = timezone.now()
    for i in range(12):
        t, _ = ticket_create(
            by=world.a_teacher, partnership=world.p_a1, subject=f"More {i}", description="x"
        )
        if i % 2:
            Ticket.objects.filter(pk=t.pk).update(
                status="resolved", resolved_at=now, outcome="fixed", rating=4, rated_at=now
            )
    assert count() == few


# --- Survey and decision ---------------------------------------------------------------------


def test_the_school_lead_sends_the_survey_from_the_page(world, login):
    review = _review(world)
    newcomer = f.ContactFactory(school=world.school_a, first_name="Nia", tags=",teacher,")
    f.PartnershipContactFactory(partnership=world.p_a1, contact=newcomer)
    client = login("a_lead")
    url = f"/renewals/reviews/{review.pk}/survey/"
    response = client.post(url, {"audience": "tag", "tag": "", "message": ""})
    assert response.status_code == 422
    assert 'href="#id_tag"' in _text(response)
    before = set(SurveyInvitation.objects.filter(review=review).values_list("pk", flat=True))
    response = client.post(
        url, {"audience": "tag", "tag": "teacher", "message": "Five minutes, please."}
    )
    assert response.status_code == 302
    new = SurveyInvitation.objects.filter(review=review).exclude(pk__in=before)
    assert [i.contact_id for i in new] == [newcomer.pk]
    assert new[0].nudge_id is not None  # sent as a nudge, within the send windows
    invited = SurveyInvitation.objects.filter(review=review).count()
    page = _text(client.get(f"/renewals/reviews/{review.pk}/"))
    assert f"0 of {invited} staff asked have answered" in page


def test_answers_are_named_for_the_school_and_withheld_from_the_supplier(world, login):
    from renewals.survey import survey_answer, survey_send, survey_token

    review = _review(world)
    invitation = (
        SurveyInvitation.objects.filter(review=review).first()
        or survey_send(by=world.a_lead, review=review, contact_ids=[world.c_a_teacher.pk])[0]
    )
    survey_answer(
        token=survey_token(invitation), notice="a_lot", uses="Homework every week", change="Faster"
    )
    school = _text(login("a_lead").get(f"/renewals/reviews/{review.pk}/"))
    assert "Homework every week" in school and invitation.contact.first_name in school
    supplier = _text(login("s1_am").get(f"/renewals/reviews/{review.pk}/"))
    assert "Homework every week" not in supplier
    assert "1 of 1 staff asked have answered" in supplier
    assert "so that nobody" in supplier
    assert "Ask the staff" not in supplier


def test_the_school_lead_decides_through_a_confirm_step_and_the_supplier_sees_it(world, login):
    review = _review(world)
    client = login("a_lead")
    url = f"/renewals/reviews/{review.pk}/"
    page = client.get(url).content.decode()
    form = page.split('action="/renewals/reviews/', 1)[1]
    assert 'name="decision"' in form
    assert not re.search(r'name="decision"[^>]*checked', page)  # nothing preselected

    empty = client.post(f"{url}decide/", {"decision_reason": "Because"})
    assert empty.status_code == 422
    assert 'href="#id_decision"' in _text(empty)

    answers = {"decision": "renew_with_changes", "decision_reason": "Staff use it daily."}
    missing = client.post(f"{url}decide/", answers)
    assert missing.status_code == 422 and "Say which changes were agreed" in _text(missing)

    answers["changes_agreed"] = "Two more on-site hours a term."
    check = client.post(f"{url}decide/", answers)
    assert check.status_code == 200 and "Check the decision" in _text(check)
    review.refresh_from_db()
    assert review.status == ValueReview.Status.OPEN  # nothing recorded yet

    done = client.post(f"{url}decide/", {**answers, "confirmed": "True", "action": "confirm"})
    assert done.status_code == 302
    review.refresh_from_db()
    assert (review.status, review.decision, review.decided_by) == (
        "decided",
        "renew_with_changes",
        world.a_lead,
    )
    assert review.next_term is not None and review.figures["tickets"]["tickets_raised"] >= 1

    supplier = _text(login("s1_am").get(url))
    assert "Renew with changes" in supplier and "Staff use it daily." in supplier
    assert str(world.a_lead) in supplier and "Two more on-site hours a term." in supplier
    assert "Record the decision" not in supplier
    listed = _text(login("s1_am").get("/supplier/renewals/"))
    recent = listed.split(f'id="decided-{review.pk}"', 1)[1].split("</li>", 1)[0]
    assert "Decided: Renew with changes" in recent and "Staff use it daily." in recent


def test_the_supplier_cannot_decide(world, login):
    review = _review(world)
    response = login("s1_am").post(
        f"/renewals/reviews/{review.pk}/decide/",
        {"decision": "end", "decision_reason": "x", "confirmed": "True", "action": "confirm"},
    )
    assert response.status_code == 403
    review.refresh_from_db()
    assert review.status == ValueReview.Status.OPEN


def test_ending_at_renewal_ends_the_partnership_and_shows_on_the_timeline(world, login):
    review = _review(world)
    login("a_lead").post(
        f"/renewals/reviews/{review.pk}/decide/",
        {
            "decision": "end",
            "decision_reason": "Nobody would notice.",
            "confirmed": "True",
            "action": "confirm",
        },
    )
    world.p_a1.refresh_from_db()
    assert world.p_a1.stage == Stage.ENDED
    html = _text(login("s1_am").get(f"/partnerships/{world.p_a1.pk}/"))
    assert "Value review opened" in html
    assert "Renewal decided: End — Nobody would notice." in html
    assert "Agreement and renewal" in html


# --- The pack --------------------------------------------------------------------------------


def _pdf_text(html: str) -> str:
    from weasyprint import HTML

    document = HTML(string=html).render()
    words = []
    for page in document.pages:
        stack = [page._page_box]
        while stack:
            box = stack.pop()
            if hasattr(box, "text"):
                words.append(box.text)
            stack.extend(reversed(getattr(box, "children", [])))
    return " ".join(words)


@pytest.mark.parametrize("who", ["a_lead", "s1_am"])
def test_the_pack_downloads_as_a_pdf_with_every_section(world, login, who):
    review = _review(world)
    response = login(who).get(f"/renewals/reviews/{review.pk}/pack.pdf")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert re.fullmatch(
        r'attachment; filename="value-review-ashfield-primary-\d{4}-\d\d-\d\d-to-\d{4}-\d\d-\d\d\.pdf"',
        response["Content-Disposition"],
    )
    body = response.content
    assert body.startswith(b"%PDF-") and b"%%EOF" in body[-1024:]
    text = _pdf_text(pack_html(review, user=world.users[who]))
    text = re.sub(r"\s+", " ", text)
    for _, heading in [*SECTIONS, ("definitions", "Definitions")]:
        assert heading in text, heading
    assert "Ashfield Primary" in text and "Acme Learning" in text


def test_the_pack_fetches_nothing(world, monkeypatch):
    from renewals import pdf

    review = _review(world)
    fetched: list[str] = []
    original = pdf._refuse

    def spy(url: str, *a: Any, **k: Any) -> Any:
        fetched.append(url)
        return original(url)

    monkeypatch.setattr(pdf, "_refuse", spy)
    html = pack_html(review, user=world.a_lead).replace(
        "</body>",
        '<img src="http://127.0.0.1:9/x.png"><link rel="stylesheet" href="file:///etc/passwd"></body>',
    )
    monkeypatch.setattr(pdf, "pack_html", lambda *a, **k: html)
    assert pdf.review_pdf(review, user=world.a_lead).startswith(b"%PDF-")
    assert fetched and all(not u.startswith("data:") for u in fetched)
    with pytest.raises(ValueError):
        original("http://127.0.0.1:9/x.png")


# --- The portfolio ---------------------------------------------------------------------------


def test_the_portfolio_shows_and_sorts_by_renewal(world, login):
    _term(world, "p_a1", notice_in=150)  # not due
    zed = f.SchoolFactory(name="Zed Academy")
    p = f.PartnershipFactory(supplier=world.s1, school=zed, account_manager=world.s1_am)
    today = timezone.localdate()
    term_save(
        by=world.s1_am,
        partnership=p,
        starts_on=today - timedelta(days=100),
        ends_on=today + timedelta(days=70),
        notice_days=60,
    )
    client = login("s1_am")
    by_school = _text(client.get("/portfolio/?mine=0"))
    assert by_school.index("Ashfield Primary") < by_school.index("Zed Academy")
    by_renewal = _text(client.get("/portfolio/?mine=0&sort=renewal"))
    assert by_renewal.index("Zed Academy") < by_renewal.index("Ashfield Primary")
    zed_row = by_renewal.split("Zed Academy", 1)[1].split("</tr>", 1)[0]
    assert f">{today + timedelta(days=10):%-d %b %Y}</a>" in zed_row
    assert ">due</span>" in zed_row
    ash_row = by_renewal.split("Ashfield Primary</a>", 1)[1].split("</tr>", 1)[0]
    assert f">{today + timedelta(days=150):%-d %b %Y}</a>" in ash_row
    assert ">due</span>" not in ash_row
