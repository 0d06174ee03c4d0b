"""The survey's one page, from the email link, signed out: the form, the answer, a second
answer refused, a closed review, a forged link; CSRF on the form; bad input is a form
error, never a 500."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.test import Client

from renewals.models import SurveyInvitation, ValueReview
from renewals.survey import survey_send, survey_token
from renewals.tests.test_survey import open_review

pytestmark = pytest.mark.django_db


@pytest.fixture
def invitation(world: Any) -> SurveyInvitation:
    [inv] = survey_send(by=world.users["a_lead"], review=open_review(world))
    return inv


def _client() -> Client:
    return Client(enforce_csrf_checks=True)


def _csrf(client: Client, url: str) -> str:
    html = client.get(url).content.decode()
    return re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html).group(1)


def test_the_form_opens_signed_out_and_shows_only_the_question(
    world: Any, invitation: SurveyInvitation
) -> None:
    url = f"/survey/{survey_token(invitation)}/"
    response = _client().get(url)
    assert response.status_code == 200
    html = response.content.decode()
    assert "<h1>Would you notice if we no longer had Acme Maths?</h1>" in html
    assert "Ashfield Primary" in html and "Acme Learning" in html
    assert 'name="viewport" content="width=device-width, initial-scale=1"' in html
    for value, label in [
        ("not_at_all", "Not at all"),
        ("a_little", "A little"),
        ("a_lot", "A lot"),
    ]:
        assert f'type="radio" name="notice" value="{value}" required' in html and label in html
    assert html.count('maxlength="1000"') == 2
    assert 'name="csrfmiddlewaretoken"' in html
    # Nothing about the person or anyone else: no name, address or other staff.
    contact = invitation.contact
    assert contact.email not in html and contact.last_name not in html
    assert "Sign out" not in html
    assert response["X-Robots-Tag"] == "noindex, nofollow"
    assert response["Referrer-Policy"] == "same-origin"
    assert "no-cache" in response["Cache-Control"] or "no-store" in response["Cache-Control"]


def test_answering_then_answering_again(world: Any, invitation: SurveyInvitation) -> None:
    url = f"/survey/{survey_token(invitation)}/"
    client = _client()
    csrf = _csrf(client, url)
    answer = {
        "csrfmiddlewaretoken": csrf,
        "notice": "a_lot",
        "uses": "Starters every lesson",
        "change": "A dark mode",
    }
    response = client.post(url, answer)
    assert response.status_code == 200
    assert "<h1>Thank you</h1>" in response.content.decode()
    invitation.refresh_from_db()
    assert (invitation.notice, invitation.uses, invitation.change) == (
        "a_lot",
        "Starters every lesson",
        "A dark mode",
    )
    assert invitation.answered_at is not None
    again = client.post(url, {**answer, "notice": "not_at_all"})
    assert again.status_code == 200
    assert "You have already answered" in again.content.decode()
    assert "You have already answered" in client.get(url).content.decode()
    invitation.refresh_from_db()
    assert invitation.notice == "a_lot"


def test_without_the_forms_csrf_token_nothing_is_taken(
    world: Any, invitation: SurveyInvitation
) -> None:
    response = _client().post(f"/survey/{survey_token(invitation)}/", {"notice": "a_lot"})
    assert response.status_code == 403
    invitation.refresh_from_db()
    assert invitation.answered_at is None


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({}, "Choose one: not at all, a little or a lot."),
        ({"notice": "enormously"}, "Select a valid choice"),
        ({"notice": "a_lot", "uses": "u" * 1001}, "at most 1000 characters"),
        ({"notice": "a_lot", "change": "x\x00y"}, "Null characters are not allowed"),
    ],
)
def test_a_bad_answer_is_a_form_error(
    world: Any, invitation: SurveyInvitation, data: dict, message: str
) -> None:
    url = f"/survey/{survey_token(invitation)}/"
    client = _client()
    response = client.post(url, {"csrfmiddlewaretoken": _csrf(client, url), **data})
    assert response.status_code == 422
    assert message in response.content.decode()
    invitation.refresh_from_db()
    assert invitation.answered_at is None


def test_a_decided_review_has_closed(world: Any, invitation: SurveyInvitation) -> None:
    url = f"/survey/{survey_token(invitation)}/"
    client = _client()
    csrf = _csrf(client, url)
    ValueReview.objects.filter(pk=invitation.review_id).update(status="decided", decision="renew")
    assert "This review has closed" in client.get(url).content.decode()
    response = client.post(url, {"csrfmiddlewaretoken": csrf, "notice": "a_lot"})
    assert response.status_code == 200 and "This review has closed" in response.content.decode()
    invitation.refresh_from_db()
    assert invitation.answered_at is None


@pytest.mark.parametrize(
    "token",
    [
        "personal-link-sent-only-to-the-recipient",
        "eyJpIjoxLCJuIjoiMCJ9:1abc:forged",
        "x" * 4000,
        "%C0%AF",
        "a:b:c",
    ],
)
def test_a_forged_or_damaged_link_is_a_404(world: Any, invitation: SurveyInvitation, token: str):
    client = _client()
    response = client.get(f"/survey/{token}/")
    assert response.status_code == 404
    assert "This link is not valid" in response.content.decode()
    assert client.post(f"/survey/{token}/", {"notice": "a_lot"}).status_code in (403, 404)


def test_an_altered_link_opens_nothing(world: Any, invitation: SurveyInvitation) -> None:
    token = survey_token(invitation)
    altered = token[:-1] + ("A" if token[-1] != "A" else "B")
    response = Client().post(f"/survey/{altered}/", {"notice": "a_lot"})
    assert response.status_code == 404
    invitation.refresh_from_db()
    assert invitation.answered_at is None


# --- On a phone, in a real browser ------------------------------------------------------------

CHROMIUM = "/usr/bin/chromium"


@pytest.mark.xdist_group("browser")
@pytest.mark.django_db(transaction=True)
def test_answered_on_a_375px_phone(live_server: Any, monkeypatch: Any, tmp_path: Any) -> None:
    """Signed out, from the email link, on a phone: nothing scrolls sideways, the three
    answers are big enough to tap, and the answer is taken. Skips without Debian's
    Chromium (tests/browser/conftest.py says how to install it)."""
    import os

    if not os.path.exists(CHROMIUM):
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true: Chromium is not installed at {CHROMIUM}", pytrace=False)
        pytest.skip(f"Chromium is not installed at {CHROMIUM}")
    from axe_playwright_python.sync_playwright import Axe
    from playwright.sync_api import sync_playwright

    from conftest import build_world

    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    world = build_world()
    [inv] = survey_send(by=world.users["a_lead"], review=open_review(world))
    url = f"{live_server.url}/survey/{survey_token(inv)}/"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM)
        page = browser.new_page(viewport={"width": 375, "height": 812}, locale="en-GB")
        page.goto(url)
        assert page.evaluate("document.documentElement.scrollWidth") <= 375
        choice = page.get_by_label("A little", exact=True)
        box = page.locator("label.notice-choice").nth(1).bounding_box()
        assert box is not None and box["height"] >= 44 and box["width"] >= 300
        violations = Axe().run(page).response["violations"]
        assert violations == [], [v["id"] for v in violations]
        if os.environ.get("SAVE_SCREENSHOTS") == "1":
            page.screenshot(path=str(tmp_path / "survey-form.png"), full_page=True)
        choice.check()
        page.get_by_label("What do you use it for?").fill("Starters on the board")
        page.get_by_role("button", name="Send my answer").click()
        page.get_by_role("heading", name="Thank you").wait_for()
        assert page.evaluate("document.documentElement.scrollWidth") <= 375
        if os.environ.get("SAVE_SCREENSHOTS") == "1":
            page.screenshot(path=str(tmp_path / "survey-thanks.png"), full_page=True)
            print(tmp_path)
        browser.close()
    inv.refresh_from_db()
    assert (inv.notice, inv.uses) == ("a_little", "Starters on the board")
