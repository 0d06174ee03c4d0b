"""Photos on tickets in a real browser: a teacher replies from a phone with a photo and
sees it (the image really loads through the scoped download view); the account manager
sees it in the queue and answers with an internal file, in place (htmx, multipart)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import expect

from tickets.models import TicketAttachment
from tickets.tests.files import jpeg_bytes, pdf_bytes

from .conftest import DESKTOP, PHONE, save_screenshot
from .test_journey import check_a11y, sign_in

pytestmark = [pytest.mark.xdist_group("browser")]


def _loaded(page: Any, image: Any) -> bool:
    """The image was fetched and decoded (it loads lazily: scrolled to first)."""
    handle = image.element_handle()
    handle.scroll_into_view_if_needed()
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=handle)
    return True


@pytest.mark.django_db(transaction=True)
def test_a_photo_from_a_phone_shows_on_both_sides(
    browser: Any, live_server: Any, world: Any, shots: list
) -> None:
    base = live_server.url
    teacher = sign_in(browser, base, "a_teacher@example.org", viewport=PHONE)
    shots.append(teacher)
    teacher.goto(f"{base}/my-tickets/{world.t_a1.pk}/")
    teacher.get_by_label("Reply to the supplier").fill("This is what the screen shows.")
    teacher.get_by_label("Photos or files").set_input_files(
        [{"name": "IMG_2041.JPG", "mimeType": "image/jpeg", "buffer": jpeg_bytes((400, 300))}]
    )
    teacher.get_by_role("button", name="Send reply").click()
    expect(teacher.get_by_text("Reply sent.")).to_be_visible()
    photo = teacher.get_by_role("img", name="IMG_2041.jpg")
    expect(photo).to_be_visible()
    assert _loaded(teacher, photo)
    check_a11y(teacher, "a ticket with a photo")
    save_screenshot(teacher, "teacher-ticket-with-photo")

    am = sign_in(browser, base, "s1_am@example.org", viewport=DESKTOP)
    shots.append(am)
    am.goto(f"{base}/tickets/?status=")
    am.get_by_role("link", name=re.compile(f"Ticket {world.t_a1.subject[-4:]}")).first.click()
    panel = am.locator("#ticket-panel")
    expect(am).to_have_url(re.compile(rf"/tickets/{world.t_a1.pk}/"))
    seen = panel.get_by_role("img", name="IMG_2041.jpg")
    expect(seen).to_be_visible()
    assert _loaded(am, seen)
    panel.get_by_label("Message").fill("Their proxy log, for us.")
    panel.get_by_label("Internal note (your team only)").check()
    panel.get_by_label("Photos or files").set_input_files(
        [{"name": "proxy.pdf", "mimeType": "application/pdf", "buffer": pdf_bytes()}]
    )
    panel.get_by_role("button", name="Send").click()
    expect(panel.get_by_text("Internal note added.")).to_be_visible()
    expect(panel.get_by_role("link", name="proxy.pdf")).to_be_visible()
    check_a11y(am, "the queue's ticket with files")
    save_screenshot(am, "account-manager-ticket-with-files")
    assert TicketAttachment.objects.get(name="proxy.pdf").message.is_internal


@pytest.mark.django_db(transaction=True)
def test_a_teacher_reopens_a_resolved_ticket_from_a_phone_with_a_photo(
    browser: Any, live_server: Any, world: Any, shots: list
) -> None:
    from tickets.services import ticket_transition

    ticket_transition(ticket=world.t_a1, by=world.s1_am, status="resolved", outcome="fixed")
    base = live_server.url
    teacher = sign_in(browser, base, "a_teacher@example.org", viewport=PHONE)
    shots.append(teacher)
    teacher.goto(f"{base}/my-tickets/{world.t_a1.pk}/")
    teacher.get_by_label("Reply to the supplier").fill("Still frozen after the update.")
    teacher.get_by_label("Photos or files").set_input_files(
        [{"name": "IMG_2042.JPG", "mimeType": "image/jpeg", "buffer": jpeg_bytes((300, 400))}]
    )
    teacher.get_by_role("button", name="Reopen it with this message").click()
    expect(teacher.get_by_text("Reopened: the supplier has been told.")).to_be_visible()
    photo = teacher.get_by_role("img", name="IMG_2042.jpg")
    assert _loaded(teacher, photo)
    save_screenshot(teacher, "teacher-reopens-with-photo")

    # The account manager finds it back in the open queue, with the reason and the photo.
    am = sign_in(browser, base, "s1_am@example.org", viewport=DESKTOP)
    shots.append(am)
    am.goto(f"{base}/tickets/")
    am.get_by_role("link", name=re.compile(f"Ticket {world.t_a1.subject[-4:]}")).first.click()
    panel = am.locator("#ticket-panel")
    expect(panel.get_by_text("Still frozen after the update.")).to_be_visible()
    expect(panel.get_by_text("reopened", exact=False).first).to_be_visible()
    assert _loaded(am, panel.get_by_role("img", name="IMG_2042.jpg"))
    save_screenshot(am, "account-manager-sees-reopened-ticket")
