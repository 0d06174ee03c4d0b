"""The private iCalendar feed of a user's visits, and its management API."""

from __future__ import annotations

import hashlib
import io
import re
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlparse
from zoneinfo import ZoneInfo

import pytest
import time_machine
from dateutil import tz
from django.conf import settings
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from icalendar import Calendar
from knox.models import AuthToken
from rest_framework.test import APIClient

from accounts.models import Membership
from tests.tenancy import EXPECTED
from visits.models import CalendarFeed, Visit
from visits.services import visit_cancel, visit_create

API = "/api/v1/me/calendar-feed/"
LONDON = ZoneInfo("Europe/London")
HOST = urlparse(settings.SITE_URL).hostname


def _subscribe(world: Any, user: str) -> str:
    response = world.client(user).post(API)
    assert response.status_code == 201, response.content
    return response.json()["url"]


def _fetch(url: str) -> Any:
    return Client().get(urlparse(url).path)


def _calendar(url: str) -> Calendar:
    response = _fetch(url)
    assert response.status_code == 200, response.status_code
    return Calendar.from_ical(response.content)


def _events(url: str) -> dict[str, Any]:
    return {str(e["uid"]): e for e in _calendar(url).walk("VEVENT")}


def _uid(visit: Visit) -> str:
    return f"visit-{visit.pk}@{HOST}"


def _visit(world: Any, starts_at: datetime, who: str = "s1_agent", **kwargs: Any) -> Visit:
    """A visit of p_a1 (Acme Learning at Ashfield Primary), attended by ``who``."""
    kwargs.setdefault("kind", "training")
    return visit_create(
        by=world.s1_am,
        partnership=world.p_a1,
        starts_at=starts_at,
        ends_at=starts_at + timedelta(hours=1),
        attendees=[world.users[who]],
        **kwargs,
    )


def test_creating_a_feed_returns_its_url_once_and_get_never_shows_it(world: Any) -> None:
    client = world.client("a_lead")
    assert client.get(API).json() == {
        "exists": False,
        "created_at": None,
        "last_fetched_at": None,
    }

    created = client.post(API)
    assert created.status_code == 201
    assert created["Cache-Control"] == "no-store"
    body = created.json()
    prefix = f"{settings.SITE_URL}/calendar/"
    assert body["url"].startswith(prefix) and body["url"].endswith("/visits.ics")
    assert body["webcal_url"] == "webcal://" + body["url"].split("://", 1)[1]
    secret = body["url"][len(prefix) : -len("/visits.ics")]
    assert len(secret) >= 43

    shown = client.get(API)
    assert shown.json()["exists"] is True
    assert secret not in shown.content.decode()
    stored = CalendarFeed.objects.get(user=world.a_lead)
    assert stored.token_hash == hashlib.sha256(secret.encode()).hexdigest()
    assert secret not in str(CalendarFeed.objects.filter(pk=stored.pk).values().get())


def test_the_feed_api_works_with_an_api_token(world: Any) -> None:
    _, token = AuthToken.objects.create(user=world.s1_am)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    url = client.post(API).json()["url"]
    assert client.get(API).json()["exists"] is True
    assert _uid(world.v_a1) in _events(url)


def test_anonymous_access_to_the_feed_api_is_refused(world: Any) -> None:
    client = APIClient()
    for method in ("get", "post", "delete"):
        assert getattr(client, method)(API).status_code in (401, 403), method
    assert not CalendarFeed.objects.exists()


def test_the_feed_parses_and_has_a_london_timezone_and_one_event_per_visible_visit(
    world: Any,
) -> None:
    url = _subscribe(world, "a_lead")
    before = timezone.now().replace(microsecond=0)
    response = _fetch(url)
    after = timezone.now()
    assert response["Content-Type"] == "text/calendar; charset=utf-8"
    assert response["Cache-Control"] == "private, max-age=300"
    assert "filename=" in response["Content-Disposition"]

    cal = Calendar.from_ical(response.content)
    assert str(cal["version"]) == "2.0"
    assert str(cal["method"]) == "PUBLISH"
    assert str(cal["x-wr-calname"]) == "Partnership CRM visits"
    assert cal["prodid"]
    assert [str(tz["tzid"]) for tz in cal.walk("VTIMEZONE")] == ["Europe/London"]

    events = {str(e["uid"]): e for e in cal.walk("VEVENT")}
    assert set(events) == {_uid(world.v_a1), _uid(world.v_a2)}
    survey = events[_uid(world.v_a1)]
    assert str(survey["summary"]) == "Technical survey: Ashfield Primary (Acme Learning)"
    assert str(survey["location"]).startswith("Ashfield Primary")
    assert str(survey["status"]) == "CONFIRMED"
    assert survey.decoded("dtstart") == world.v_a1.starts_at
    assert survey["dtstart"].params["TZID"] == "Europe/London"
    assert survey.decoded("dtend") == world.v_a1.ends_at
    assert survey.decoded("sequence") == 0
    # RFC 5545: with a METHOD, DTSTAMP is when the feed was made (whole seconds); it
    # matched the visit's change time only when both fell in the same second.
    assert before <= survey.decoded("dtstamp") <= after
    changed = world.v_a1.updated_at.replace(microsecond=0)  # iCalendar has whole seconds
    assert survey.decoded("last-modified") == changed
    training = events[_uid(world.v_a2)]
    assert str(training["summary"]) == "Training: Ashfield Primary (Brightboard)"


def test_times_are_london_wall_clock_times_on_both_sides_of_the_october_2026_clock_change(
    world: Any,
) -> None:
    # The clocks go back at 02:00 on Sunday 25 October 2026: 10:00 in London is 09:00 UTC
    # on the Friday before (BST) and 10:00 UTC on the Tuesday after (GMT).
    before = _visit(world, datetime(2026, 10, 23, 10, 0, tzinfo=LONDON))
    after = _visit(world, datetime(2026, 10, 27, 10, 0, tzinfo=LONDON))
    assert before.starts_at == datetime(2026, 10, 23, 9, 0, tzinfo=UTC)
    assert after.starts_at == datetime(2026, 10, 27, 10, 0, tzinfo=UTC)
    url = _subscribe(world, "s1_agent")

    with time_machine.travel(datetime(2026, 10, 1, 12, 0, tzinfo=UTC), tick=False):
        response = _fetch(url)
    text = response.content.decode()
    assert "DTSTART;TZID=Europe/London:20261023T100000" in text
    assert "DTSTART;TZID=Europe/London:20261027T100000" in text
    assert "DTEND;TZID=Europe/London:20261027T110000" in text

    events = {str(e["uid"]): e for e in Calendar.from_ical(response.content).walk("VEVENT")}
    for visit, utc_hour in ((before, 9), (after, 10)):
        start = events[_uid(visit)].decoded("dtstart")
        assert (start.hour, start.minute) == (10, 0)
        assert start.tzinfo.key == "Europe/London"
        assert start.astimezone(UTC).hour == utc_hour
    # The VTIMEZONE carries the change itself, so clients need no zone database.
    [tz] = Calendar.from_ical(response.content).walk("VTIMEZONE")
    [standard] = tz.walk("STANDARD")
    assert standard.to_ical().decode().splitlines()[1:3] == [
        "DTSTART:19701025T020000",  # 02:00 BST, the local time before the change
        "RRULE:FREQ=YEARLY;BYDAY=-1SU;BYMONTH=10",  # 25 October in 2026
    ]


# --- VTIMEZONE, read by a second, strict parser (python-dateutil's tzical) -----------------


def _tzical(body: bytes, tzid: str) -> Any:
    """The zone as dateutil's RFC 5545 VTIMEZONE reader understands it: only the
    VTIMEZONE blocks, as tzical refuses anything else."""
    text = body.decode().replace("\r\n", "\n")
    blocks = re.findall(r"BEGIN:VTIMEZONE\n.*?END:VTIMEZONE\n", text, flags=re.DOTALL)
    assert blocks, text[:500]
    return tz.tzical(io.StringIO("".join(blocks))).get(tzid)


def _offset(zone: Any, instant: datetime) -> timedelta:
    return instant.astimezone(zone).utcoffset()


def test_the_feeds_vtimezone_is_read_right_by_a_strict_parser_at_both_clock_changes(
    world: Any,
) -> None:
    _visit(world, datetime(2026, 3, 27, 10, 0, tzinfo=LONDON))
    url = _subscribe(world, "s1_agent")
    with time_machine.travel(datetime(2026, 3, 1, 12, 0, tzinfo=UTC), tick=False):
        body = _fetch(url).content
    text = body.decode()
    assert "BEGIN:DAYLIGHT\r\nDTSTART:19700329T010000\r\n" in text
    assert "TZOFFSETFROM:+0000\r\nTZOFFSETTO:+0100\r\nEND:DAYLIGHT" in text
    assert "BEGIN:STANDARD\r\nDTSTART:19701025T020000\r\n" in text
    assert "TZOFFSETFROM:+0100\r\nTZOFFSETTO:+0000\r\nEND:STANDARD" in text

    london = _tzical(body, "Europe/London")
    second = timedelta(seconds=1)
    # BST starts at 01:00 UTC on the last Sunday of March (29 March 2026, 28 March 2027).
    for spring in (
        datetime(2026, 3, 29, 1, 0, tzinfo=UTC),
        datetime(2027, 3, 28, 1, 0, tzinfo=UTC),
    ):
        assert _offset(london, spring - second) == timedelta(0)
        assert _offset(london, spring) == timedelta(hours=1)
        assert _offset(london, spring + timedelta(minutes=30)) == timedelta(hours=1)
    # ... and ends at 01:00 UTC on the last Sunday of October (25 October 2026).
    autumn = datetime(2026, 10, 25, 1, 0, tzinfo=UTC)
    assert _offset(london, autumn - second) == timedelta(hours=1)
    assert (autumn - second).astimezone(london).hour == 1  # 01:59:59 BST
    assert _offset(london, autumn) == timedelta(0)
    assert autumn.astimezone(london).hour == 1  # 01:00 GMT, the hour repeated
    # Wall-clock times as a client reads the events' DTSTART;TZID=Europe/London:
    assert datetime(2026, 3, 29, 0, 59, tzinfo=london).utcoffset() == timedelta(0)
    assert datetime(2026, 3, 29, 2, 0, tzinfo=london).utcoffset() == timedelta(hours=1)
    assert datetime(2026, 10, 25, 2, 0, tzinfo=london).utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    ("zone", "years"),
    [
        ("Europe/London", (2025, 2028)),
        ("America/New_York", (2025, 2028)),  # second Sunday of March, first of November
        ("Australia/Sydney", (2025, 2028)),  # summer time across the new year
        ("America/Sao_Paulo", (2017, 2021)),  # summer time abolished in 2019: RDATEs
        ("Asia/Kolkata", (2025, 2028)),  # no changes at all
    ],
)
def test_every_instant_of_the_window_has_the_zone_databases_offset(
    zone: str, years: tuple[int, int]
) -> None:
    from visits.feeds import _transitions, vtimezone

    body = vtimezone(zone, *years).to_ical()
    parsed = _tzical(body, zone)
    real = ZoneInfo(zone)
    instants = [
        datetime(years[0], 1, 1, tzinfo=UTC) + timedelta(hours=5 * n)
        for n in range((years[1] - years[0] + 1) * 365 * 24 // 5)
    ]
    for change in _transitions(zone, *years):
        instants += [change.at - timedelta(seconds=1), change.at, change.at + timedelta(hours=1)]
    wrong = [
        (i, _offset(parsed, i), _offset(real, i))
        for i in instants
        if _offset(parsed, i) != _offset(real, i)
    ]
    assert not wrong, wrong[:5]


def test_dtstamp_is_when_the_feed_was_made_and_the_etag_ignores_it(world: Any) -> None:
    visit = _visit(world, datetime(2026, 10, 23, 10, 0, tzinfo=LONDON))
    Visit.objects.filter(pk=visit.pk).update(updated_at=datetime(2026, 9, 1, 8, 0, tzinfo=UTC))
    url = _subscribe(world, "s1_agent")
    with time_machine.travel(datetime(2026, 10, 1, 12, 0, 7, 500, tzinfo=UTC), tick=False):
        first = _fetch(url)
    with time_machine.travel(datetime(2026, 10, 1, 13, 0, tzinfo=UTC), tick=False):
        later = _fetch(url)
        unchanged = Client().get(urlparse(url).path, HTTP_IF_NONE_MATCH=first["ETag"])

    event = Calendar.from_ical(first.content).walk("VEVENT")[0]
    assert event.decoded("dtstamp") == datetime(2026, 10, 1, 12, 0, 7, tzinfo=UTC)
    assert event.decoded("last-modified") == datetime(2026, 9, 1, 8, 0, tzinfo=UTC)
    assert b"DTSTAMP:20261001T130000Z" in later.content
    assert later["ETag"] == first["ETag"]
    assert unchanged.status_code == 304


@pytest.mark.parametrize(
    "user,expected",
    [
        ("s1_admin", ()),  # neither attends nor manages: their own diary only
        ("s1_am", ("v_a1",)),
        ("s1_agent", ()),
        ("s2_admin", ()),
        ("s2_am", ("v_a2", "v_b2")),  # attends v_b2; account manager of p_a2 and p_b2
        ("s2_agent", ("v_a2",)),
        ("trust_lead", ("v_a1", "v_a2")),
        ("a_lead", ("v_a1", "v_a2")),
        ("a_teacher", ("v_a1",)),
        ("b_lead", ("v_b2",)),
        ("b_teacher", ("v_b2",)),
        ("outsider", ()),
    ],
)
def test_each_role_gets_their_own_visits_and_nothing_outside_their_scope(
    world: Any, user: str, expected: tuple[str, ...]
) -> None:
    uids = set(_events(_subscribe(world, user)))
    assert uids == {_uid(world.visits[name]) for name in expected}
    visible = EXPECTED[Visit].get(user, set())
    assert set(expected) <= set(visible)


def test_another_suppliers_visits_never_appear_even_at_the_same_school(world: Any) -> None:
    # s1 and s2 both work with Ashfield Primary; s1's people never see s2's visit there.
    for user in ("s1_admin", "s1_am", "s1_agent"):
        body = _fetch(_subscribe(world, user)).content.decode()
        assert _uid(world.v_a2) not in body
        assert _uid(world.v_b2) not in body
        assert "Brightboard" not in body


def test_the_feed_carries_the_agenda_but_never_the_visits_notes(world: Any) -> None:
    visit = _visit(
        world,
        timezone.now() + timedelta(days=20),
        agenda="Wi-Fi survey of the ICT suite",
    )
    Visit.objects.filter(pk=visit.pk).update(notes="Supplier-only: renewal at risk")
    body = _fetch(_subscribe(world, "s1_agent")).content.decode()
    assert "Wi-Fi survey of the ICT suite" in body
    assert "renewal at risk" not in body


def test_rotating_the_feed_revokes_the_old_url(world: Any) -> None:
    old = _subscribe(world, "a_lead")
    assert _fetch(old).status_code == 200
    new = _subscribe(world, "a_lead")
    assert new != old
    assert _fetch(old).status_code == 404
    assert _fetch(new).status_code == 200
    assert CalendarFeed.objects.filter(user=world.a_lead).count() == 1


def test_deleting_the_feed_revokes_it(world: Any) -> None:
    client = world.client("a_lead")
    url = _subscribe(world, "a_lead")
    assert client.delete(API).status_code == 204
    assert _fetch(url).status_code == 404
    assert client.get(API).json()["exists"] is False
    assert client.delete(API).status_code == 204  # revoking twice is harmless


def test_an_unknown_secret_is_a_404(world: Any) -> None:
    _subscribe(world, "a_lead")
    assert Client().get("/calendar/" + "x" * 43 + "/visits.ics").status_code == 404
    assert Client().get("/calendar/short/visits.ics").status_code == 404


def test_a_deactivated_users_feed_is_a_404(world: Any) -> None:
    url = _subscribe(world, "a_lead")
    world.a_lead.is_active = False
    world.a_lead.save(update_fields=["is_active"])
    assert _fetch(url).status_code == 404


def test_losing_a_membership_shrinks_the_feed_at_once(world: Any) -> None:
    url = _subscribe(world, "a_lead")
    assert len(_events(url)) == 2
    Membership.objects.filter(user=world.a_lead).delete()
    assert _events(url) == {}


def test_a_cancelled_visit_stays_in_the_feed_as_cancelled_with_a_higher_sequence(
    world: Any,
) -> None:
    url = _subscribe(world, "s1_am")
    before = _events(url)[_uid(world.v_a1)]
    assert str(before["status"]) == "CONFIRMED"

    visit_cancel(visit=world.v_a1, by=world.s1_am, reason="School closed for snow")
    after = _events(url)[_uid(world.v_a1)]
    assert str(after["status"]) == "CANCELLED"
    assert after.decoded("sequence") > before.decoded("sequence")
    assert str(after["summary"]).startswith("Cancelled: Technical survey")
    assert "School closed for snow" in str(after["description"])
    assert after.decoded("dtstamp") >= before.decoded("dtstamp")


def test_visits_outside_the_window_are_left_out(world: Any) -> None:
    now = timezone.now()
    old = _visit(world, now - timedelta(days=90))
    recent = _visit(world, now - timedelta(days=30))
    far = _visit(world, now + timedelta(days=500))
    uids = set(_events(_subscribe(world, "s1_agent")))
    assert _uid(recent) in uids
    assert _uid(old) not in uids and _uid(far) not in uids


def test_an_unchanged_feed_answers_304_to_a_conditional_request(world: Any) -> None:
    url = _subscribe(world, "a_lead")
    first = _fetch(url)
    again = Client().get(urlparse(url).path, HTTP_IF_NONE_MATCH=first["ETag"])
    assert again.status_code == 304


def _queries(url: str) -> list[str]:
    with CaptureQueriesContext(connection) as ctx:
        response = _fetch(url)
    assert response.status_code == 200
    return [q["sql"] for q in ctx.captured_queries]


def test_a_fetch_costs_the_same_few_queries_for_1_and_10_visits(world: Any) -> None:
    # Budget: the feed (with its owner), the owner's memberships (scope), the visits
    # (school and supplier joined), and the hourly last-fetched UPDATE.
    start = timezone.now() + timedelta(days=30)
    _visit(world, start)
    url = _subscribe(world, "s1_agent")
    one = _queries(url)
    assert len(_events(url)) == 1

    for day in range(1, 10):
        _visit(world, start + timedelta(days=day))
    CalendarFeed.objects.update(last_fetched_at=None)
    ten = _queries(url)
    assert len(_events(url)) == 10
    assert len(one) == len(ten) <= 4, ten


def test_the_last_fetch_is_recorded_at_most_once_an_hour(world: Any) -> None:
    url = _subscribe(world, "a_lead")
    start = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
    with time_machine.travel(start, tick=False):
        first = _queries(url)
    assert CalendarFeed.objects.get().last_fetched_at == start
    with time_machine.travel(start + timedelta(minutes=59), tick=False):
        second = _queries(url)
    assert CalendarFeed.objects.get().last_fetched_at == start
    assert len(second) == len(first) - 1
    assert not any(q.upper().startswith("UPDATE") for q in second)
    with time_machine.travel(start + timedelta(minutes=61), tick=False):
        _fetch(url)
    assert CalendarFeed.objects.get().last_fetched_at == start + timedelta(minutes=61)
    assert world.client("a_lead").get(API).json()["last_fetched_at"]


def test_the_api_schema_documents_the_feed_endpoint(world: Any) -> None:
    paths = world.client("s1_am").get("/api/schema/", {"format": "json"}).json()["paths"]
    assert set(paths[API]) >= {"get", "post", "delete"}
