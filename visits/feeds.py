"""Private iCalendar feeds of a user's visits (RFC 5545), for Outlook, Google Calendar and
Apple Calendar to subscribe to.

Each user may have one feed URL, ``<SITE_URL>/calendar/<secret>/visits.ics``. The secret
(``secrets.token_urlsafe(32)``, 256 bits) is the only credential: it is shown once, when
the feed is created or rotated, and only its SHA-256 is stored (CalendarFeed.token_hash).
A fetch hashes the secret from the path and looks the hash up through the unique index,
so nothing secret is ever compared byte by byte (no timing oracle) and a leaked database
row does not open the feed. Rotating replaces the hash (the old URL answers 404 at once);
deleting the feed revokes it.

What a feed holds ("their visits"), always inside ``Visit.objects.visible_to(owner)``
(the one scoping function, read afresh on every fetch, so a lost membership shrinks the
feed at the next refresh):

- supplier staff (admin, account manager, support agent): the visits they attend, plus
  every visit of the partnerships they are the account manager of. A supplier admin does
  not get the whole supplier's diary in their personal calendar, only their own visits;
- school lead: every visit at the schools they lead, whichever supplier;
- trust lead: every visit at the trust's schools;
- teacher: the visits of the partnerships they take part in (cohort or linked contact,
  which includes every visit they are named on: naming a contact links them).

Someone with several roles gets the union. Visits from ``WINDOW_BACK`` ago to
``WINDOW_AHEAD`` ahead, at most ``MAX_EVENTS`` of them (the earliest). Planned and
completed visits are CONFIRMED; cancelled visits and no-shows stay in the feed as
STATUS:CANCELLED (with their higher SEQUENCE), so subscribed calendars strike them out
rather than keep a stale appointment. An event carries the visit's kind, school, supplier,
times in the school's time zone (with a VTIMEZONE), the agenda and any cancellation
reason; never the visit's notes, attendees or contacts, and never pupil data.
"""

from __future__ import annotations

import calendar
import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from typing import Any
from urllib.parse import urlparse
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db.models import Q, QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.utils import timezone
from django.utils.cache import get_conditional_response
from django.utils.http import quote_etag
from django.views.decorators.http import require_safe
from drf_spectacular.utils import OpenApiResponse, extend_schema
from icalendar import Calendar, Event, Timezone, TimezoneDaylight, TimezoneStandard
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import Partnership
from accounts.scoping import scope_for

from .models import CalendarFeed, Visit

WINDOW_BACK = timedelta(days=60)
WINDOW_AHEAD = timedelta(days=400)
MAX_EVENTS = 2000
# last_fetched_at is written at most this often, so a fetch is normally read-only.
FETCH_STAMP_EVERY = timedelta(hours=1)
SHOWN = (
    Visit.Status.PLANNED,
    Visit.Status.COMPLETED,
    Visit.Status.CANCELLED,
    Visit.Status.NO_SHOW,
)
CALENDAR_NAME = "Partnership CRM visits"
DEFAULT_TZ = "Europe/London"


# --- Secrets and URLs ---------------------------------------------------------------------


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def feed_urls(secret: str) -> dict[str, str]:
    url = f"{settings.SITE_URL}/calendar/{secret}/visits.ics"
    return {"url": url, "webcal_url": "webcal://" + url.split("://", 1)[1]}


def feed_rotate(*, user: Any) -> tuple[CalendarFeed, str]:
    """Create the user's feed, or give it a new secret (the old URL stops working).
    Returns the feed and the secret, which is never stored and cannot be shown again."""
    secret = secrets.token_urlsafe(32)
    feed, _ = CalendarFeed.objects.update_or_create(
        user=user,
        defaults={
            "token_hash": hash_secret(secret),
            "created_at": timezone.now(),
            "last_fetched_at": None,
        },
    )
    return feed, secret


def feed_revoke(*, user: Any) -> None:
    CalendarFeed.objects.filter(user=user).delete()


# --- What a feed holds ----------------------------------------------------------------------


def feed_visits(owner: Any, now: datetime) -> QuerySet[Visit]:
    """The owner's visits in the feed's window (see the module docstring), within
    ``Visit.objects.visible_to(owner)``. One query; the school and supplier are joined."""
    s = scope_for(owner)
    theirs: list[Q] = []
    if s.supplier_ids:
        attending = Visit.attendees.through.objects.filter(user_id=owner.pk).values("visit_id")
        managing = Partnership.objects.filter(
            account_manager_id=owner.pk, supplier_id__in=s.supplier_ids
        ).values("id")
        theirs.append(
            Q(supplier_id__in=s.supplier_ids)
            & (Q(id__in=attending) | Q(partnership_id__in=managing))
        )
    if s.all_school_ids:
        theirs.append(Q(school_id__in=s.all_school_ids))
    if s.teacher_school_ids:
        # visible_to narrows these to the partnerships the teacher takes part in.
        theirs.append(Q(school_id__in=s.teacher_school_ids))
    if not theirs:
        return Visit.objects.none()
    q = theirs[0]
    for more in theirs[1:]:
        q |= more
    return (
        Visit.objects.visible_to(owner)
        .filter(q)
        .filter(
            status__in=SHOWN,
            starts_at__gte=now - WINDOW_BACK,
            starts_at__lt=now + WINDOW_AHEAD,
        )
        .select_related("school", "supplier")
        .order_by("starts_at", "id")[:MAX_EVENTS]
    )


def _event(visit: Visit, host: str, now: datetime) -> Event:
    tz = visit.school.zone
    cancelled = visit.status in (Visit.Status.CANCELLED, Visit.Status.NO_SHOW)
    summary = f"{visit.get_kind_display()}: {visit.school.name} ({visit.supplier.name})"
    if cancelled:
        summary = f"{visit.get_status_display()}: {summary}"
    description = []
    if cancelled and visit.status_reason:
        description.append(f"{visit.get_status_display()}: {visit.status_reason}")
    if visit.agenda:
        description.append(visit.agenda)

    event = Event()
    event.add("uid", f"visit-{visit.pk}@{host}")
    # RFC 5545 3.8.7.2: with a METHOD, DTSTAMP is when this iCalendar object was made;
    # the visit's own change time is LAST-MODIFIED.
    event.add("dtstamp", now.astimezone(UTC).replace(microsecond=0))
    event.add("dtstart", visit.starts_at.astimezone(tz))
    event.add("dtend", visit.ends_at.astimezone(tz))
    event.add("sequence", visit.sequence)
    event.add("summary", summary)
    event.add("location", ", ".join(p for p in (visit.school.name, visit.school.postcode) if p))
    if description:
        event.add("description", "\n\n".join(description))
    event.add("status", "CANCELLED" if cancelled else "CONFIRMED")
    event.add("transp", "TRANSPARENT" if cancelled else "OPAQUE")
    event.add("categories", [visit.get_kind_display()])
    event.add("created", visit.created_at.astimezone(UTC))
    event.add("last-modified", visit.updated_at.astimezone(UTC))
    return event


def build_calendar(visits: list[Visit], now: datetime) -> bytes:
    """A VCALENDAR (METHOD:PUBLISH) of the visits, with a VTIMEZONE for every zone used
    (see ``vtimezone``). Apart from DTSTAMP (the time of this fetch) the output changes
    only when the data does: the ETag is taken without it (``etag_for``)."""
    host = urlparse(settings.SITE_URL).hostname or "localhost"
    cal = Calendar()
    cal.add("prodid", "-//Partnership CRM//Visits//EN")
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    cal.add("method", "PUBLISH")
    cal.add("x-wr-calname", CALENDAR_NAME)
    cal.add("x-wr-timezone", DEFAULT_TZ)
    # How often clients should refresh (RFC 7986; X-PUBLISHED-TTL for Outlook).
    cal.add("refresh-interval", timedelta(hours=1), parameters={"VALUE": "DURATION"})
    cal.add("x-published-ttl", "PT1H")
    first_year = (now - WINDOW_BACK).year - 1
    last_year = (now + WINDOW_AHEAD).year + 1
    for key in sorted({visit.school.zone.key for visit in visits}):
        cal.add_component(vtimezone(key, first_year, last_year))
    for visit in visits:
        cal.add_component(_event(visit, host, now))
    return cal.to_ical()


_DTSTAMP_LINE = re.compile(rb"^DTSTAMP:[^\r\n]*\r?\n", re.MULTILINE)


def etag_for(body: bytes) -> str:
    """An ETag over the feed without its DTSTAMPs, which change on every fetch: a client
    that has the current events gets 304 Not Modified."""
    return quote_etag(hashlib.sha256(_DTSTAMP_LINE.sub(b"", body)).hexdigest()[:32])


def _note_fetch(feed: CalendarFeed, now: datetime) -> None:
    """Record the fetch at most once per FETCH_STAMP_EVERY: no write at all when the
    stored time is recent, and a conditional UPDATE (so concurrent fetches write once)."""
    stale = now - FETCH_STAMP_EVERY
    if feed.last_fetched_at is not None and feed.last_fetched_at > stale:
        return
    CalendarFeed.objects.filter(pk=feed.pk).filter(
        Q(last_fetched_at__isnull=True) | Q(last_fetched_at__lte=stale)
    ).update(last_fetched_at=now)


@require_safe
def visits_ics(request: HttpRequest, secret: str) -> HttpResponse:
    """GET /calendar/<secret>/visits.ics: no sign-in, the secret is the credential.
    Unknown, rotated or revoked secrets, and feeds of deactivated users, are 404."""
    feed = (
        CalendarFeed.objects.select_related("user").filter(token_hash=hash_secret(secret)).first()
    )
    if feed is None or not feed.user.is_active:
        raise Http404
    now = timezone.now()
    body = build_calendar(list(feed_visits(feed.user, now)), now)
    _note_fetch(feed, now)
    etag = etag_for(body)
    response = HttpResponse(body, content_type="text/calendar; charset=utf-8")
    response["Cache-Control"] = "private, max-age=300"
    response["Content-Disposition"] = 'attachment; filename="partnership-crm-visits.ics"'
    response["ETag"] = etag
    response["X-Robots-Tag"] = "noindex, nofollow"
    response["Referrer-Policy"] = "no-referrer"
    return get_conditional_response(request, etag=etag, response=response)


# --- VTIMEZONE ------------------------------------------------------------------------------

_ONE_DAY = timedelta(days=1)
_WEEKDAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")
# Recurring rules are written from 1970, as Outlook and the tzurl.org definitions do: a
# reader then needs no RDATE for any year, and the feed stays byte-identical from one
# year to the next.
_RULE_EPOCH = 1970


@dataclass(frozen=True)
class _Transition:
    at: datetime  # the UTC instant of the change
    before: timedelta  # UTC offset in force until then
    after: timedelta  # ... and from then on
    name: str  # TZNAME from then on
    is_dst: bool

    @property
    def local_onset(self) -> datetime:
        """The onset as RFC 5545 wants DTSTART and RDATE in a VTIMEZONE: the local time
        *before* the change (in TZOFFSETFROM), so BST starts at 01:00, not 02:00."""
        return (self.at + self.before).replace(tzinfo=None)

    def rule(self) -> tuple[int, int, int, time]:
        """(month, weekday, week, local time): week 1-4 counts from the month's start,
        -1 is the last such weekday of the month."""
        onset = self.local_onset
        days_in_month = calendar.monthrange(onset.year, onset.month)[1]
        week = -1 if onset.day + 7 > days_in_month else (onset.day - 1) // 7 + 1
        return onset.month, onset.weekday(), week, onset.time()


@lru_cache(maxsize=64)
def _transitions(tz_name: str, first_year: int, last_year: int) -> tuple[_Transition, ...]:
    """Every change of UTC offset in [first_year, last_year], found day by day and then
    to the second (a zone changes its offset at most a few times a year); ~2 ms a zone,
    cached."""
    tz = ZoneInfo(tz_name)
    found = []
    t = datetime(first_year, 1, 1, tzinfo=UTC)
    end = datetime(last_year + 1, 1, 1, tzinfo=UTC)
    offset = t.astimezone(tz).utcoffset()
    while t < end:
        nxt = t + _ONE_DAY
        new = nxt.astimezone(tz).utcoffset()
        if new != offset:
            lo, hi = 0, 86400  # seconds after t: offset at lo, new at hi
            while hi - lo > 1:
                mid = (lo + hi) // 2
                if (t + timedelta(seconds=mid)).astimezone(tz).utcoffset() == offset:
                    lo = mid
                else:
                    hi = mid
            at = t + timedelta(seconds=hi)
            local = at.astimezone(tz)
            found.append(
                _Transition(at, offset, new, local.tzname() or "", bool(local.dst()))  # type: ignore[arg-type]
            )
        t, offset = nxt, new
    return tuple(found)


def _epoch_date(month: int, weekday: int, week: int) -> date:
    """The date in 1970 that a yearly BYMONTH/BYDAY rule gives."""
    if week > 0:
        first = date(_RULE_EPOCH, month, 1)
        return first + timedelta(days=(weekday - first.weekday()) % 7 + 7 * (week - 1))
    last = date(_RULE_EPOCH, month, calendar.monthrange(_RULE_EPOCH, month)[1])
    return last - timedelta(days=(last.weekday() - weekday) % 7)


def vtimezone(tz_name: str, first_year: int, last_year: int) -> Timezone:
    """A VTIMEZONE for ``tz_name`` that a strict RFC 5545 reader gets right for every
    instant from ``first_year`` to ``last_year``.

    icalendar's own ``add_missing_timezones`` writes each onset in the local time *after*
    the change (DAYLIGHT DTSTART:…T020000 with TZOFFSETFROM:+0000 for London), which a
    strict reader takes as 02:00 UTC, an hour after summer time really starts. Here each
    onset is in the local time before the change. A change that falls on the same weekday
    of the same month at the same time every year (the UK's and the EU's last Sundays of
    March and October) becomes a yearly RRULE from 1970; anything irregular is written out
    as RDATEs, after a first component for the offset in force on 1 January.
    """
    tz = ZoneInfo(tz_name)
    vtz = Timezone()
    vtz.add("tzid", tz_name)
    transitions = _transitions(tz_name, first_year, last_year)
    years = set(range(first_year, last_year + 1))
    groups: dict[tuple[timedelta, timedelta, bool], list[_Transition]] = {}
    for tr in transitions:
        groups.setdefault((tr.before, tr.after, tr.is_dst), []).append(tr)
    regular = all(
        len({tr.rule() for tr in group}) == 1
        and sorted(tr.at.year for tr in group) == sorted(years)
        for group in groups.values()
    )
    if not regular or not transitions:
        # The offset in force where the rules start (all year round for a zone without
        # changes): TZOFFSETFROM = TZOFFSETTO, as RFC 5545 writes a fixed offset.
        since = datetime(first_year if transitions else _RULE_EPOCH, 1, 1, tzinfo=UTC)
        since = since.astimezone(tz).replace(hour=0, minute=0, second=0)  # local midnight
        offset = since.utcoffset() or timedelta(0)
        first = TimezoneDaylight() if since.dst() else TimezoneStandard()
        first.add("dtstart", since.replace(tzinfo=None))  # local time, as in every onset
        first.add("tzname", since.tzname() or tz_name)
        first.add("tzoffsetfrom", offset)
        first.add("tzoffsetto", offset)
        vtz.add_component(first)
    for (before, after, is_dst), group in groups.items():
        comp = TimezoneDaylight() if is_dst else TimezoneStandard()
        if regular:
            month, weekday, week, at = group[0].rule()
            comp.add("dtstart", datetime.combine(_epoch_date(month, weekday, week), at))
            comp.add(
                "rrule",
                {"freq": "yearly", "bymonth": month, "byday": f"{week}{_WEEKDAYS[weekday]}"},
            )
        else:
            comp.add("dtstart", group[0].local_onset)
            if len(group) > 1:
                comp.add("rdate", [tr.local_onset for tr in group[1:]])
        comp.add("tzname", group[-1].name or tz_name)
        comp.add("tzoffsetfrom", before)
        comp.add("tzoffsetto", after)
        vtz.add_component(comp)
    return vtz


# --- Management API: /api/v1/me/calendar-feed/ ----------------------------------------------


class CalendarFeedStatusSerializer(serializers.Serializer):
    exists = serializers.BooleanField()
    created_at = serializers.DateTimeField(allow_null=True, help_text="When this URL was made.")
    last_fetched_at = serializers.DateTimeField(
        allow_null=True, help_text="Last fetched by a calendar (recorded at most hourly)."
    )


class CalendarFeedCreatedSerializer(serializers.Serializer):
    url = serializers.URLField(help_text="Shown only now: subscribe to it, keep it private.")
    webcal_url = serializers.CharField(help_text="The same URL for webcal:// links.")
    created_at = serializers.DateTimeField()


class CalendarFeedView(APIView):
    """Your private iCalendar URL of your visits (subscribe in Outlook or Google Calendar).
    Only a hash of its secret is stored, so the URL is shown once, when made."""

    @extend_schema(
        summary="Whether you have a calendar feed (never its URL)",
        responses={200: CalendarFeedStatusSerializer},
    )
    def get(self, request: Request) -> Response:
        feed = CalendarFeed.objects.filter(user=request.user).first()
        data = {
            "exists": feed is not None,
            "created_at": feed.created_at if feed else None,
            "last_fetched_at": feed.last_fetched_at if feed else None,
        }
        return Response(CalendarFeedStatusSerializer(data).data)

    @extend_schema(
        summary="Create your calendar feed, or rotate it (the old URL stops working)",
        request=None,
        responses={201: CalendarFeedCreatedSerializer},
    )
    def post(self, request: Request) -> Response:
        feed, secret = feed_rotate(user=request.user)
        data = {**feed_urls(secret), "created_at": feed.created_at}
        response = Response(
            CalendarFeedCreatedSerializer(data).data, status=status.HTTP_201_CREATED
        )
        response["Cache-Control"] = "no-store"
        return response

    @extend_schema(
        summary="Revoke your calendar feed",
        request=None,
        responses={204: OpenApiResponse(description="Revoked (or there was none).")},
    )
    def delete(self, request: Request) -> Response:
        feed_revoke(user=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)
