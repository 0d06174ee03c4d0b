"""The main journey end to end, in a real browser: a teacher files feedback on a phone, the
account manager answers and resolves it from the queue without leaving the page, the
teacher rates it, and the school lead sees the scorecard change. Every main page is
checked with axe-core on the way (no serious or critical violations)."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from axe_playwright_python.sync_playwright import Axe
from django.utils import timezone
from playwright.sync_api import expect

from tickets.models import Ticket

from .conftest import DESKTOP, PHONE, save_screenshot

PASSWORD = "correct horse battery staple"
AXE = Axe()

pytestmark = [pytest.mark.xdist_group("browser")]


def check_a11y(page: Any, name: str) -> None:
    results = AXE.run(page)
    bad = [v for v in results.response["violations"] if v["impact"] in ("serious", "critical")]
    report = "\n".join(
        f"{v['id']} ({v['impact']}): {v['help']} at "
        + ", ".join(str(n["target"]) for n in v["nodes"][:5])
        for v in bad
    )
    assert not bad, f"{name}: accessibility violations\n{report}"


def add_history(world: Any) -> None:
    """Six months of answered and rated tickets, and some time on site, so that the
    scorecard, its chart and the screenshots have something to show."""
    from datetime import timedelta

    from django.utils import timezone

    from tickets.services import ticket_create
    from visits.services import time_entry_create

    now = timezone.now()
    plan = [  # (partnership, working hours to first response, rating)
        ("p_a1", 2, 4),
        ("p_a1", 5, 5),
        ("p_a2", 3, 4),
        ("p_a2", 30, 2),
    ]
    for months_ago in range(1, 7):
        for i, (name, answer_hours, rating) in enumerate(plan):
            if (months_ago + i) % 3 == 0:
                answer_hours *= 4  # some months are worse than others
            ticket, _ = ticket_create(
                by=world.a_lead,
                partnership=world.partnerships[name],
                subject=f"Earlier feedback {months_ago}.{i}",
                description="From the term's log.",
            )
            day = timezone.localtime(now - timedelta(days=30 * months_ago + 7 * i))
            # A Tuesday at 09:00, so that the answer comes the same working day or later.
            created = (day - timedelta(days=day.weekday() - 1)).replace(hour=9, minute=0)
            first = created + timedelta(
                hours=answer_hours if answer_hours < 8 else answer_hours * 3
            )
            Ticket.objects.filter(pk=ticket.pk).update(
                created_at=created,
                first_response_due_at=created + timedelta(hours=24),
                first_response_at=first,
                first_response_seconds=answer_hours * 3600,  # in school working time
                sla_used_seconds=(answer_hours + 4) * 3600,
                status="closed",
                outcome="fixed",
                resolved_at=first + timedelta(hours=4),
                closed_at=first + timedelta(hours=5),
                clock_started_at=None,
                resolution_due_at=None,
                rating=rating,
                rated_at=first + timedelta(hours=6),
            )
    for name, hours, who in [("p_a1", 12, "s1_am"), ("p_a2", 6, "s2_agent")]:
        p = world.partnerships[name]
        p.onsite_hours_per_term = hours
        p.save(update_fields=["onsite_hours_per_term"])
        time_entry_create(
            by=world.users[who],
            partnership=p,
            date=timezone.localdate(),
            minutes=150 if name == "p_a1" else 240,
            mode="on_site",
            activity="training",
        )


def assert_fits_a_phone(context_page: Any, browser: Any, urls: list[str]) -> None:
    """The same signed-in user on a 375px phone: no page scrolls sideways (wide tables
    scroll inside their own focusable region instead)."""
    state = context_page.context.storage_state()
    phone = browser.new_context(viewport=PHONE, storage_state=state)
    page = phone.new_page()
    for url in urls:
        page.goto(url)
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["width"], f"{url} is {width}px wide on a phone"
    phone.close()


def nav(page: Any, name: str) -> Any:
    return page.get_by_role("navigation", name="Main").get_by_role("link", name=name, exact=True)


def sign_in(browser: Any, base: str, email: str, *, viewport: dict[str, int]) -> Any:
    context = browser.new_context(viewport=viewport, locale="en-GB")
    page = context.new_page()
    page.goto(f"{base}/")
    expect(page).to_have_url(re.compile(r"/accounts/sign-in/"))
    page.get_by_label("Email").fill(email.upper())  # the login is case-insensitive
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    return page


@pytest.mark.django_db(transaction=True)
def test_feedback_from_a_phone_to_a_better_scorecard(
    browser: Any, live_server: Any, world: Any, shots: list
) -> None:
    base = live_server.url
    add_history(world)

    # The school lead's scorecard before.
    lead = sign_in(browser, base, "a_lead@example.org", viewport=DESKTOP)
    shots.append(lead)
    expect(lead).to_have_url(re.compile(r"/school/scorecard/"))
    acme = lead.get_by_role("columnheader", name="Acme Learning")
    expect(acme).to_be_visible()
    raised_before = lead.locator("a[data-measure=raised]").first.inner_text()
    ratings_before = lead.locator("[data-measure=ratings]").first.inner_text()

    # 1. A teacher files feedback on a phone: one partnership, so no product question.
    teacher = sign_in(browser, base, "a_teacher@example.org", viewport=PHONE)
    shots.append(teacher)
    expect(teacher).to_have_url(re.compile(r"/feedback/"))
    expect(teacher.get_by_label("Which product is it about?")).to_have_count(0)
    teacher.get_by_label("In a few words").fill("Homework won't load on the class iPads")
    teacher.get_by_label("What happened, or what would help?").fill(
        "Since Monday the homework page spins for ever on Year 5's iPads."
    )
    teacher.get_by_label("Problem").check()
    check_a11y(teacher, "file feedback")
    save_screenshot(teacher, "teacher-file-feedback")
    teacher.get_by_role("button", name="Send feedback").click()
    expect(teacher.get_by_text("Your feedback is with Acme Learning")).to_be_visible()
    ticket = Ticket.objects.get(subject="Homework won't load on the class iPads")
    assert ticket.raised_by == world.a_teacher

    # 2. The account manager answers and resolves it from the queue, in place.
    am = sign_in(browser, base, "s1_am@example.org", viewport=DESKTOP)
    shots.append(am)
    expect(am).to_have_url(re.compile(r"/portfolio/"))
    expect(am.get_by_role("link", name="Ashfield Primary")).to_be_visible()
    check_a11y(am, "portfolio")
    save_screenshot(am, "account-manager-portfolio")

    nav(am, "Tickets").click()
    am.get_by_role("link", name=re.compile("Homework won't load")).click()
    panel = am.locator("#ticket-panel")
    expect(panel.get_by_role("heading", name=re.compile("Homework won't load"))).to_be_focused()
    expect(am).to_have_url(re.compile(rf"/tickets/{ticket.pk}/"))
    panel.get_by_label("Assigned to").select_option(label=str(world.s1_am))
    panel.get_by_role("button", name="Save triage").click()
    expect(panel.get_by_text("Ticket triaged.")).to_be_visible()
    panel.get_by_label("Message").fill("Thanks, we're on it: a fix for iPadOS goes out today.")
    panel.get_by_role("button", name="Send").click()
    expect(panel.get_by_text("Reply sent to the school.")).to_be_visible()
    panel.get_by_label("Move to").select_option("resolved")
    panel.get_by_label("Outcome (when resolving)").select_option("fixed")
    panel.get_by_label("What was done, or why it won't change").fill("Fixed in release 4.2.")
    panel.get_by_role("button", name="Move").click()
    expect(panel.get_by_text("Outcome: Fixed")).to_be_visible()
    expect(am.locator(f"#ticket-row-{ticket.pk}").get_by_text("Resolved")).to_be_visible()
    check_a11y(am, "ticket queue")
    save_screenshot(am, "account-manager-ticket-queue")

    am.goto(f"{base}/partnerships/{world.p_a1.pk}/")
    expect(am.get_by_role("heading", name="Timeline")).to_be_visible()
    check_a11y(am, "partnership")
    save_screenshot(am, "account-manager-partnership")
    # A trial phase planned, then evaluated on its evidence.
    am.get_by_role("link", name="Plan a trial phase").click()
    today = timezone.localdate()
    am.get_by_label("Starts").fill(f"{today:%Y-%m-%d}")
    am.get_by_label("Ends").fill(f"{today + timedelta(weeks=6):%Y-%m-%d}")
    am.get_by_label("Intent").fill("Year 5 set homework on the iPads every week.")
    am.get_by_label("Success criteria").fill("Homework set weekly in Year 5 | 4 of 5 weeks")
    check_a11y(am, "plan a phase")
    am.get_by_role("button", name="Plan the phase").click()
    expect(am.get_by_text("phase planned.")).to_be_visible()
    am.get_by_label("Evaluation").select_option("met")
    am.get_by_label("Evidence").fill("Set in 5 of 5 weeks (homework log).")
    am.get_by_role("button", name="Save the evaluation").click()
    expect(am.get_by_text("Evaluation saved.")).to_be_visible()
    expect(am.get_by_role("heading", name=re.compile("1 of 1 evaluated"))).to_be_visible()
    check_a11y(am, "trial phase")
    save_screenshot(am, "account-manager-trial-phase")
    phase_page = am.url.replace(base, "")
    nav(am, "Visits").click()
    am.get_by_role("link", name="Next week").click()
    expect(am.get_by_text("Technical survey").first).to_be_visible()
    check_a11y(am, "visits")
    save_screenshot(am, "account-manager-visits")
    nav(am, "Nudges").click()
    am.get_by_role("link", name=re.compile("Preview the nudge")).first.click()
    expect(am.locator("#preview").get_by_text("Subject: Hello Ivan")).to_be_visible()
    check_a11y(am, "nudges")
    save_screenshot(am, "account-manager-nudges")
    pages = ["/portfolio/", f"/tickets/{ticket.pk}/", f"/partnerships/{world.p_a1.pk}/", phase_page]
    assert_fits_a_phone(am, browser, [base + url for url in [*pages, "/visits/", "/nudges/"]])

    # 3. The teacher sees the reply and the outcome, and rates it.
    nav(teacher, "My tickets").click()
    expect(teacher.get_by_text("Fixed in release 4.2.")).to_be_visible()
    teacher.get_by_role("link", name="Homework won't load on the class iPads").click()
    expect(teacher.get_by_text("a fix for iPadOS goes out today")).to_be_visible()
    teacher.get_by_label("5 – very well").check()
    teacher.get_by_label("Anything to add?").fill("Quick and clear, thank you.")
    check_a11y(teacher, "rate a ticket")
    save_screenshot(teacher, "teacher-rate-ticket")
    teacher.get_by_role("button", name="Send rating").click()
    expect(teacher.get_by_text("Thank you for rating it.")).to_be_visible()
    nav(teacher, "My tickets").click()
    check_a11y(teacher, "my tickets")
    save_screenshot(teacher, "teacher-my-tickets")

    # 4. The school lead's scorecard has changed: one more ticket, one more rating.
    lead.reload()
    raised_after = lead.locator("a[data-measure=raised]").first.inner_text()
    ratings_after = lead.locator("[data-measure=ratings]").first.inner_text()
    assert int(raised_after) == int(raised_before) + 1
    assert int(ratings_after) == int(ratings_before) + 1
    check_a11y(lead, "scorecard")
    save_screenshot(lead, "school-lead-scorecard")
    lead.locator("td[data-measure=rating] a").first.click()
    expect(lead.get_by_role("link", name="Homework won't load on the class iPads")).to_be_visible()
    check_a11y(lead, "drill-down")
    save_screenshot(lead, "school-lead-tickets")

    # Staff contact controls: stop Acme contacting the teacher, in place.
    nav(lead, "Staff contacts").click()
    row = lead.locator(f"#contact-{world.c_a_teacher.pk}")
    row.get_by_role("button", name=re.compile("Stop Acme Learning")).click()
    expect(row.get_by_text("Stopped", exact=True)).to_be_visible()
    expect(row.get_by_role("button", name=re.compile("Allow again"))).to_be_focused()
    check_a11y(lead, "staff contacts")
    save_screenshot(lead, "school-lead-staff-contacts")
    urls = ["/school/scorecard/", "/school/contacts/", "/school/tickets/?rated=1"]
    assert_fits_a_phone(lead, browser, [base + url for url in urls])

    # The trust's read-only roll-up.
    trust = sign_in(browser, base, "trust_lead@example.org", viewport=DESKTOP)
    shots.append(trust)
    expect(trust.get_by_role("heading", name="Ashfield Primary")).to_be_visible()
    check_a11y(trust, "trust")
    save_screenshot(trust, "trust-lead-overview")
