"""Supplier-written HTML is sanitised with nh3 wherever a nudge's HTML part is produced:
hostile markup never reaches the stored rendered_html or what the sender is handed, while
ordinary links and formatting survive."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import time_machine
from django.test import Client

from nudges.dispatch import dispatch_due
from nudges.models import Nudge
from nudges.sanitise import removed, sanitise_html
from nudges.templating import render_email
from nudges.tests.test_dispatch import MONDAY_10, RecordingSender, _due

HOSTILE = (
    '<p onclick="steal()" style="width:expression(alert(1))">Hello {{ first_name }},</p>'
    "<script>alert('x')</script><style>p { color: red }</style>"
    '<p>See <a href="javascript:alert(1)">this</a> and '
    '<a href="https://acme.example/guide" title="Guide">the guide</a> or '
    '<a href="mailto:help@acme.example">write</a>.</p>'
    '<img src="x" onerror="alert(1)">'
    '<img src="https://tracker.example/open.gif" width="1" height="1">'
    '<img src="https://tracker.example/o.gif" width="0">'
    '<img src="data:image/png;base64,iVBORw0KGgo=" alt="inline">'
    '<img src="https://cdn.acme.example/logo.png" alt="Acme" width="120" height="40">'
    "<ul><li><strong>Bold</strong> and <em>em</em></li></ul>"
    '<table><tr><td colspan="2">Cell</td></tr></table>'
)
BAD = [
    "<script",
    "alert",
    "<style",
    "onclick",
    "onerror",
    "expression(",
    'style="width',  # (our own unsubscribe footer keeps its style)
    "javascript:",
    "tracker.example",
    "data:",
]


def assert_safe_and_kept(html: str) -> None:
    for bad in BAD:
        assert bad not in html, bad
    assert '<a href="https://acme.example/guide" title="Guide" rel="noopener noreferrer">' in html
    assert '<a href="mailto:help@acme.example" rel="noopener noreferrer">write</a>' in html
    assert (
        '<img src="https://cdn.acme.example/logo.png" alt="Acme" width="120" height="40">' in html
    )
    assert "<li><strong>Bold</strong> and <em>em</em></li>" in html
    assert '<td colspan="2">Cell</td>' in html
    assert "the guide" in html and "this" in html  # the text of a dropped link stays


def test_hostile_markup_goes_and_ordinary_formatting_stays() -> None:
    assert_safe_and_kept(sanitise_html(HOSTILE))


def test_with_image_hosts_set_only_the_senders_own_images_stay(settings: Any) -> None:
    settings.NUDGE_IMAGE_HOSTS = ["images.acme.example"]
    html = sanitise_html(
        '<img src="https://images.acme.example/a.png" alt="ours">'
        '<img src="https://cdn.acme.example/logo.png" alt="theirs">'
    )
    assert html == '<img src="https://images.acme.example/a.png" alt="ours">'


def test_the_author_is_told_what_was_removed() -> None:
    notes = " | ".join(removed(HOSTILE))
    for words in ("<script>", "<style>", "on...", "style attributes", "javascript:", "pixels"):
        assert words in notes, words
    assert removed("<p>Hi <a href='https://acme.example'>there</a></p>") == []


def test_the_rendered_email_is_sanitised_and_keeps_our_unsubscribe_footer() -> None:
    r = render_email(
        "Hi",
        "Hello",
        HOSTILE,
        {"first_name": "<b>Ann</b>", "unsubscribe_url": "https://crm.example/u/tok/"},
    )
    assert_safe_and_kept(r.html)
    assert "Hello &lt;b&gt;Ann&lt;/b&gt;," in r.html  # the value escaped, not markup
    assert '<a href="https://crm.example/u/tok/">Unsubscribe</a>' in r.html


@pytest.mark.django_db
def test_what_is_stored_and_sent_has_none_of_it(world: Any) -> None:
    Nudge.objects.update(next_attempt_at=MONDAY_10 + timedelta(days=365))
    world.tpl_s1.body_html = HOSTILE
    world.tpl_s1.save()
    nudge = _due(world)
    sender = RecordingSender()
    with time_machine.travel(MONDAY_10, tick=False):
        dispatch_due(sender=sender)
    _, [email] = sender.batches[0]
    assert_safe_and_kept(email.html)
    nudge.refresh_from_db()
    assert nudge.status == "sent"
    assert_safe_and_kept(nudge.rendered_html)
    assert "Hello Ann," in nudge.rendered_html


@pytest.mark.django_db
def test_the_preview_page_shows_the_html_part_as_sent_in_a_sandbox(world: Any) -> None:
    world.tpl_s1.body_html = HOSTILE
    world.tpl_s1.save()
    client = Client()
    client.force_login(world.s1_am)
    recipient = f"{world.p_a1.pk}:{world.c_a_teacher.pk}"
    page = client.get("/nudges/preview/", {"template": world.tpl_s1.pk, "recipient": recipient})
    assert page.status_code == 200
    html = page.content.decode()
    frame = html.split("<iframe", 1)[1].split("</iframe>", 1)[0]
    assert frame.startswith(" sandbox ")  # no scripts, no same origin
    srcdoc = frame.split('srcdoc="', 1)[1].split('"', 1)[0]
    from html import unescape

    sent = unescape(srcdoc)
    assert_safe_and_kept(sent)
    assert "Hello Ann," in sent
    assert "<script" not in html.split("<iframe", 1)[1].split("</details>", 1)[0]


@pytest.mark.django_db
def test_saving_a_template_through_the_api_says_what_will_be_removed(world: Any) -> None:
    client = world.client("s1_am")
    r = client.post(
        "/api/v1/nudge-templates/",
        {"name": "Risky", "subject": "Hi", "body_text": "Hi", "body_html": HOSTILE},
        format="json",
    )
    assert r.status_code == 201, r.content
    assert any("pixels" in note for note in r.json()["html_removed"])
    ok = client.patch(
        f"/api/v1/nudge-templates/{r.json()['id']}/",
        {"body_html": "<p>Hi <a href='https://acme.example'>there</a></p>"},
        format="json",
    )
    assert ok.status_code == 200 and ok.json()["html_removed"] == []
