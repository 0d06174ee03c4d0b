"""A school lead subscribes the school to a term-dates calendar URL. Each check shows what
the calendar would change; nothing reaches the school's clock until the lead applies it.
Our server fetches only public addresses, never follows a redirect, and reads at most a
bounded size."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from django.core.exceptions import ValidationError

from accounts.models import ClosureDay, Term
from termfeeds.models import TermDateFeed
from termfeeds.services import subscribe
from termfeeds.tasks import check_term_feeds

PAGE = "/school/term-dates/"


def ics(*events: tuple[str, str, str]) -> bytes:
    body = "".join(
        "BEGIN:VEVENT\r\n"
        f"UID:{summary}-{start}@la.example\r\nDTSTAMP:20260101T000000Z\r\n"
        f"SUMMARY:{summary}\r\nDTSTART;VALUE=DATE:{start}\r\nDTEND;VALUE=DATE:{end}\r\n"
        "END:VEVENT\r\n"
        for summary, start, end in events
    )
    return f"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//LA//Terms//EN\r\n{body}END:VCALENDAR\r\n".encode()


AUTUMN_2027 = ("Autumn Term 2027", "20270902", "20271218")  # DTEND exclusive: ends 17 Dec
INSET = ("INSET day", "20270901", "20270902")


class Calendar:
    """A loopback web server publishing one calendar (changeable), or a redirect."""

    def __init__(self) -> None:
        self.body = ics(AUTUMN_2027, INSET)
        self.redirect = ""
        calendar = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if calendar.redirect:
                    self.send_response(302)
                    self.send_header("Location", calendar.redirect)
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Type", "text/calendar")
                self.end_headers()
                self.wfile.write(calendar.body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/terms.ics"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def calendar(settings: Any) -> Iterator[Calendar]:
    settings.TERM_FEED_ALLOW_PRIVATE_HOSTS = True  # the test's server is on loopback
    c = Calendar()
    yield c
    c.stop()


def test_the_lead_reads_the_changes_then_applies_them(world: Any, login: Any, calendar: Calendar):
    school = world.school_a
    terms_before = Term.objects.filter(school=school).count()
    lead = login("a_lead")
    done = lead.post(PAGE, {"action": "subscribe", "url": calendar.url}, follow=True)
    page = done.content.decode()
    assert "Read the changes below" in page
    assert "New term Autumn Term 2027: Thu 2 Sep 2027 to Fri 17 Dec 2027" in page
    assert "New closure: Wed 1 Sep 2027, INSET day" in page
    # Shown, not applied.
    assert Term.objects.filter(school=school).count() == terms_before
    assert not ClosureDay.objects.filter(school=school, date=date(2027, 9, 1)).exists()

    applied = lead.post(PAGE, {"action": "feed-apply"}, follow=True).content.decode()
    assert "Applied 2 change(s)" in applied
    assert Term.objects.filter(school=school, starts_on=date(2027, 9, 2)).exists()
    assert ClosureDay.objects.get(school=school, date=date(2027, 9, 1)).kind == "inset"

    # The next day's check finds nothing new; then the LA moves the end of term.
    assert check_term_feeds() == 1
    assert "Your dates match the calendar" in lead.get(PAGE).content.decode()
    calendar.body = ics(("Autumn Term 2027", "20270902", "20271221"), INSET)
    check_term_feeds()
    page = lead.get(PAGE).content.decode()
    assert "becomes Autumn Term 2027 to Mon 20 Dec 2027" in page
    assert Term.objects.get(school=school, starts_on=date(2027, 9, 2)).ends_on == date(2027, 12, 17)
    lead.post(PAGE, {"action": "feed-ignore"})
    check_term_feeds()  # the same calendar again: not shown again
    assert "Apply these changes" not in lead.get(PAGE).content.decode()


def test_only_public_addresses_are_fetched(world: Any, login: Any) -> None:
    lead = world.users["a_lead"]
    for url, why in [
        ("http://127.0.0.1/admin/", "not a public address"),
        ("https://example.org:8443/t.ics", "standard ports"),
        ("http://169.254.169.254/latest/meta-data/", "not a public address"),
        ("http://10.0.0.5/terms.ics", "not a public address"),
        ("file:///etc/passwd", "http:// or https://"),
        ("https://user:pw@example.org/t.ics", "user name or password"),
    ]:
        with pytest.raises(ValidationError) as refused:
            subscribe(school=world.school_a, url=url, by=lead)
        assert why in str(refused.value), url
    assert not TermDateFeed.objects.exists()
    answer = login("a_lead").post(PAGE, {"action": "subscribe", "url": "http://localhost/x.ics"})
    assert answer.status_code == 422 and "not a public address" in answer.content.decode()


def test_a_redirect_is_not_followed(world: Any, calendar: Calendar) -> None:
    calendar.redirect = "http://10.0.0.5/internal.ics"
    feed = subscribe(school=world.school_a, url=calendar.url, by=world.users["a_lead"])
    assert "redirects to http://10.0.0.5/internal.ics" in feed.error
    assert feed.pending_changes == []


def test_another_schools_lead_and_teachers_cannot_touch_the_subscription(
    world: Any, login: Any, calendar: Calendar
) -> None:
    subscribe(school=world.school_a, url=calendar.url, by=world.users["a_lead"])
    other = login("b_lead").post(f"{PAGE}?school={world.school_a.pk}", {"action": "feed-apply"})
    assert other.status_code == 404
    assert login("a_teacher").post(PAGE, {"action": "feed-apply"}).status_code == 403
    assert TermDateFeed.objects.get().pending_changes  # still waiting for its own lead
