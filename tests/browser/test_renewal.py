"""The renewal end to end, in a real browser: the school lead opens the value review from
their renewals and sends the staff survey, two members of staff answer it on a phone from
their email link (no sign-in), the lead decides through the confirm step, and the account
manager sees the decision at once and downloads the governors' pack as a PDF. The review
page is checked with axe-core and for sideways scrolling on a 375px phone.

SAVE_SCREENSHOTS=1 writes the review at both widths for the school lead, the supplier's
view, and the pack's first page (the pack's HTML as Chromium draws it at A4 width: the
machine has no PDF rasteriser; the PDF itself is checked by frontend/tests/test_renewals.py).
"""

from __future__ import annotations

import os
import re
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from accounts.tests import factories as f
from renewals.models import SurveyInvitation, ValueReview
from renewals.pdf import pack_html
from renewals.survey import survey_token
from tickets.models import Ticket
from tickets.services import ticket_create

from .conftest import DESKTOP, PHONE, SCREENSHOTS, save_screenshot
from .test_journey import add_history, check_a11y, nav, sign_in

pytestmark = [pytest.mark.xdist_group("browser")]

A4 = {"width": 794, "height": 1123}  # 210 × 297 mm at 96 px per inch


def _fits(page: Any) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"{page.url} is {width}px wide on a phone"


@pytest.mark.django_db(transaction=True)
def test_a_value_review_from_survey_to_decision(
    browser: Any, live_server: Any, world: Any, shots: list
) -> None:
    base = live_server.url
    add_history(world)
    review: ValueReview = world.rv_a1
    term = review.term
    term.onsite_hours_per_term = 12  # as the partnership promises since add_history
    term.save(update_fields=["onsite_hours_per_term"])
    now = timezone.now()
    for days, subject, outcome, reason in [
        (12, "Homework won't load on the Year 5 iPads", "fixed", "Fixed in release 4.2."),
        (30, "Could the reports show reading age?", "wont_change", "Not in this product."),
    ]:
        ticket, _ = ticket_create(
            by=world.a_teacher, partnership=world.p_a1, subject=subject, description="x"
        )
        Ticket.objects.filter(pk=ticket.pk).update(
            created_at=now - timedelta(days=days + 2),
            status="resolved",
            resolved_at=now - timedelta(days=days),
            outcome=outcome,
            outcome_reason=reason,
        )
    # Two more of Acme Maths' teachers at Ashfield, to be asked by their tag.
    for first in ("Maya", "Tom"):
        contact = f.ContactFactory(school=world.school_a, first_name=first, tags=",teacher,")
        f.PartnershipContactFactory(partnership=world.p_a1, contact=contact)

    # 1. The school lead opens the review from their renewals and asks the teachers.
    lead = sign_in(browser, base, "a_lead@example.org", viewport=DESKTOP)
    shots.append(lead)
    nav(lead, "Renewals").click()
    expect(lead.get_by_role("heading", name="Renewals", exact=True)).to_be_visible()
    lead.get_by_role("link", name="Open the review of Acme Learning").click()
    expect(lead).to_have_url(re.compile(rf"/renewals/reviews/{review.pk}/$"))
    expect(lead.get_by_role("heading", name="Tickets raised and acted on")).to_be_visible()
    said = lead.locator("#you_said")
    expect(said.get_by_text("Homework won't load on the Year 5 iPads")).to_be_visible()
    expect(said.get_by_text("Not in this product.")).to_be_visible()
    lead.get_by_text("Ask the staff").click()
    lead.get_by_label("Staff with a stakeholder tag").check()
    lead.get_by_label("Which tag").select_option("teacher")
    lead.get_by_label("A line from you").fill("Five minutes, please: it decides next year.")
    lead.get_by_role("button", name="Send the survey").click()
    expect(lead.get_by_text("The survey goes to 2 members of staff")).to_be_visible()

    # 2. Each answers on a phone from the link in their email, without signing in.
    asked = SurveyInvitation.objects.filter(review=review, contact__first_name__in=["Maya", "Tom"])
    answers = {"Maya": ("A lot", "Homework every week"), "Tom": ("A little", "Times tables")}
    for invitation in asked.select_related("contact"):
        notice, uses = answers[invitation.contact.first_name]
        phone = browser.new_context(viewport=PHONE, locale="en-GB")
        staff = phone.new_page()
        shots.append(staff)
        staff.goto(f"{base}/survey/{survey_token(invitation)}/")
        staff.get_by_label(notice, exact=True).check()
        staff.get_by_label("What do you use it for?").fill(uses)
        staff.get_by_label("What should change?").fill("Quicker log-in")
        _fits(staff)
        staff.get_by_role("button", name="Send my answer").click()
        expect(staff.get_by_role("heading", name="Thank you")).to_be_visible()
        phone.close()

    # 3. The lead sees each answer by name, and decides through the confirm step.
    lead.reload()
    expect(lead.get_by_text("2 of 3 staff asked have answered")).to_be_visible()
    expect(lead.get_by_text("Homework every week")).to_be_visible()
    expect(lead.locator(".answers").get_by_text("Maya", exact=False)).to_be_visible()
    expect(lead.get_by_label("Renew", exact=True)).not_to_be_checked()  # nothing preselected
    check_a11y(lead, "value review (school lead)")
    save_screenshot(lead, "school-lead-value-review-1280")

    state = lead.context.storage_state()
    phone = browser.new_context(viewport=PHONE, storage_state=state, locale="en-GB")
    small = phone.new_page()
    shots.append(small)
    small.goto(f"{base}/renewals/reviews/{review.pk}/")
    _fits(small)
    save_screenshot(small, "school-lead-value-review-375")
    phone.close()

    lead.get_by_label("Renew with changes").check()
    lead.get_by_label("Why").fill("Staff would notice: Year 5 set homework on it every week.")
    lead.get_by_label("Changes agreed").fill("Two more on-site hours a term.")
    lead.get_by_role("button", name="Check the decision").click()
    expect(lead.get_by_role("heading", name="Check the decision")).to_be_visible()
    review.refresh_from_db()
    assert review.status == ValueReview.Status.OPEN  # not until confirmed
    lead.get_by_role("button", name="Record the decision").click()
    expect(lead.get_by_text("The decision is recorded")).to_be_visible()
    review.refresh_from_db()
    assert (review.status, review.decision) == ("decided", "renew_with_changes")

    # 4. The account manager sees the decision at once, who made it and why.
    am = sign_in(browser, base, "s1_am@example.org", viewport=DESKTOP)
    shots.append(am)
    nav(am, "Renewals").click()
    card = am.locator(f"#decided-{review.pk}")
    expect(card.get_by_text("Decided: Renew with changes")).to_be_visible()
    card.get_by_role("link", name=re.compile("See the review")).click()
    decision = am.locator("#decision")
    expect(decision.get_by_text("Renew with changes")).to_be_visible()
    expect(decision.get_by_text(str(world.a_lead))).to_be_visible()
    expect(decision.get_by_text("Year 5 set homework on it every week.")).to_be_visible()
    expect(decision.get_by_text("Two more on-site hours a term.")).to_be_visible()
    # Two answers: the supplier sees neither words nor names yet.
    expect(am.get_by_text("Homework every week")).to_have_count(0)
    expect(am.get_by_text("so that nobody's answer can be told apart")).to_be_visible()
    check_a11y(am, "value review (supplier)")
    save_screenshot(am, "supplier-value-review-1280")

    # 5. The pack downloads as a PDF.
    href = am.get_by_role("link", name="Download the pack (PDF)").get_attribute("href")
    response = am.request.get(f"{base}{href}")
    assert response.status == 200
    assert response.headers["content-type"] == "application/pdf"
    assert "attachment" in response.headers["content-disposition"]
    assert response.body().startswith(b"%PDF-")

    # 6. The timeline keeps the review and the decision.
    am.goto(f"{base}/partnerships/{world.p_a1.pk}/")
    expect(am.get_by_text("Value review opened")).to_be_visible()
    expect(
        am.get_by_text(re.compile("Renewal decided: Renew with changes — Staff would"))
    ).to_be_visible()

    if os.environ.get("SAVE_SCREENSHOTS") == "1":
        review.refresh_from_db()
        pack = browser.new_page(viewport=A4)
        pack.set_content(pack_html(review, user=world.a_lead))
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        pack.screenshot(path=str(SCREENSHOTS / "value-review-pack.png"))
        pack.close()
