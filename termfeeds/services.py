"""Subscribing a school to a term-dates iCalendar URL, checking it, and applying what it
would change only when the school's lead says so. The import itself is
accounts.calendars.import_term_dates_ics (the same rules as the command and the page)."""

from __future__ import annotations

import hashlib
import io
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from accounts.calendars import (
    TermDatesFileError,
    TermDatesResult,
    calendar_editable_by,
    import_term_dates_ics,
)
from accounts.models import Organisation

from .fetch import FetchError, check_url, fetch
from .models import TermDateFeed


def feeds_visible_to(user: Any) -> QuerySet[TermDateFeed]:
    """The one scoping function of TermDateFeed: the feeds of the schools whose term dates
    the user keeps (their own school as its lead, every school of a trust they lead)."""
    return TermDateFeed.objects.filter(school_id__in=calendar_editable_by(user))


def _require_editor(user: Any, school_id: int) -> None:
    if school_id not in calendar_editable_by(user):
        raise PermissionDenied("Only the school's lead (or its trust's) keeps its term dates.")


def _digest(body: str) -> str:
    return hashlib.sha256(body.encode("utf-8")).hexdigest()


def subscribe(*, school: Organisation, url: str, by: Any) -> TermDateFeed:
    _require_editor(by, school.pk)
    try:
        check_url(url)
    except FetchError as exc:
        raise ValidationError({"url": str(exc)}) from None
    feed, _ = TermDateFeed.objects.update_or_create(
        school=school,
        defaults={
            "url": url.strip(),
            "created_by": by,
            "pending_body": "",
            "pending_changes": [],
            "pending_since": None,
            "applied_hash": "",
            "error": "",
        },
    )
    return check(feed)


def check(feed: TermDateFeed) -> TermDateFeed:
    """Fetch the feed and keep what it would change (nothing is applied)."""
    now = timezone.now()
    try:
        body = fetch(feed.url).decode("utf-8-sig", errors="replace")
        digest = _digest(body)
        if digest == feed.applied_hash:
            preview = TermDatesResult()
        else:
            preview = import_term_dates_ics(
                io.BytesIO(body.encode("utf-8")),
                school_urn=feed.school.urn or "",
                allowed_school_ids=frozenset({feed.school_id}),
                dry_run=True,
            )
    except (FetchError, TermDatesFileError) as exc:
        TermDateFeed.objects.filter(pk=feed.pk).update(checked_at=now, error=str(exc)[:500])
        feed.refresh_from_db()
        return feed
    fields: dict[str, Any] = {"checked_at": now, "error": ""}
    if not preview.changes:
        fields.update(pending_body="", pending_changes=[], pending_since=None)
        if digest != feed.applied_hash:
            fields["applied_hash"] = digest  # nothing in it to change: up to date
    elif feed.pending_body != body:
        notes = [f"Line {line}: {message}" for line, message in preview.errors]
        fields.update(pending_body=body, pending_changes=preview.changes + notes, pending_since=now)
    TermDateFeed.objects.filter(pk=feed.pk).update(**fields)
    feed.refresh_from_db()
    return feed


def apply(*, feed: TermDateFeed, by: Any) -> TermDatesResult:
    """The changes the lead has read, applied: exactly the calendar that was previewed."""
    _require_editor(by, feed.school_id)
    with transaction.atomic():
        locked = TermDateFeed.objects.select_for_update().select_related("school").get(pk=feed.pk)
        if not locked.pending_body:
            raise ValidationError("There are no changes waiting (someone may have applied them).")
        result = import_term_dates_ics(
            io.BytesIO(locked.pending_body.encode("utf-8")),
            school_urn=locked.school.urn or "",
            allowed_school_ids=frozenset({locked.school_id}),
        )
        TermDateFeed.objects.filter(pk=locked.pk).update(
            applied_hash=_digest(locked.pending_body),
            applied_at=timezone.now(),
            applied_by=by,
            pending_body="",
            pending_changes=[],
            pending_since=None,
        )
    return result


def ignore(*, feed: TermDateFeed, by: Any) -> None:
    """Not these changes: they are not shown again until the calendar changes."""
    _require_editor(by, feed.school_id)
    with transaction.atomic():
        locked = TermDateFeed.objects.select_for_update().get(pk=feed.pk)
        if not locked.pending_body:
            raise ValidationError("There are no changes waiting.")
        TermDateFeed.objects.filter(pk=locked.pk).update(
            applied_hash=_digest(locked.pending_body),
            pending_body="",
            pending_changes=[],
            pending_since=None,
        )


def unsubscribe(*, feed: TermDateFeed, by: Any) -> None:
    _require_editor(by, feed.school_id)
    TermDateFeed.objects.filter(pk=feed.pk).delete()
