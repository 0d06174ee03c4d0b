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

import hashlib
import secrets
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import urlparse

from django.conf import settings
from django.db.models import Q, QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.utils import timezone
from django.utils.cache import get_conditional_response
from django.utils.http import quote_etag
from django.views.decorators.http import require_safe
from drf_spectacular.utils import OpenApiResponse, extend_schema
from icalendar import Calendar, Event
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


def _event(visit: Visit, host: str) -> Event:
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
    event.add("dtstamp", visit.updated_at.astimezone(UTC))
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
    """A VCALENDAR (METHOD:PUBLISH) of the visits, with a VTIMEZONE for every zone used.
    The VTIMEZONE rules span whole calendar years around the window, so they cover every
    event and the output only changes when the data does (good ETags)."""
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
    for visit in visits:
        cal.add_component(_event(visit, host))
    cal.add_missing_timezones(
        first_date=date((now - WINDOW_BACK).year - 1, 1, 1),
        last_date=date((now + WINDOW_AHEAD).year + 2, 1, 1),
    )
    return cal.to_ical()


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
    etag = quote_etag(hashlib.sha256(body).hexdigest()[:32])
    response = HttpResponse(body, content_type="text/calendar; charset=utf-8")
    response["Cache-Control"] = "private, max-age=300"
    response["Content-Disposition"] = 'attachment; filename="partnership-crm-visits.ics"'
    response["ETag"] = etag
    response["X-Robots-Tag"] = "noindex, nofollow"
    response["Referrer-Policy"] = "no-referrer"
    return get_conditional_response(request, etag=etag, response=response)


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
