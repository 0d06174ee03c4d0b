"""SendGrid's delivery events: recorded once each, and what they mean for nudges,
suppressions and opt-outs.

SendGrid posts events at least once (it retries a POST that failed or timed out), in any
order, in batches of up to about a thousand. So:

* each event is stored once, keyed by sg_event_id (unique): an
  ``INSERT ... ON CONFLICT DO NOTHING RETURNING`` says exactly which rows this call added,
  even with another request inserting the same events at the same moment; only those are
  acted on (a resubscribed contact is not opted out again by a retried old event);
* every change is monotonic (status only forward to sent, delivery only up its ranking,
  first timestamps kept), so the order of arrival does not matter;
* the work is a fixed handful of bulk statements per batch, never a query per event.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from audit.history import record_changes

from .models import Nudge, NudgeEvent, OptOut, Suppression

# Any event proves SendGrid accepted the request that carried the nudge: it was sent.
# (The webhook lists processed/deferred/delivered/open/click as "sent"; bounce, dropped,
# spamreport and unsubscribe also only exist for mail SendGrid took.)
SETTLES_AS_SENT = {
    Nudge.Status.SENDING,
    Nudge.Status.UNKNOWN,
    Nudge.Status.HELD,
    Nudge.Status.SCHEDULED,
}

DELIVERY_FOR_EVENT = {
    "delivered": Nudge.Delivery.DELIVERED,
    "open": Nudge.Delivery.OPENED,
    "click": Nudge.Delivery.CLICKED,
    "unsubscribe": Nudge.Delivery.UNSUBSCRIBED,
    "group_unsubscribe": Nudge.Delivery.UNSUBSCRIBED,
    "spamreport": Nudge.Delivery.SPAM_REPORT,
    "dropped": Nudge.Delivery.DROPPED,
    "bounce": Nudge.Delivery.BOUNCED,
    "blocked": Nudge.Delivery.BOUNCED,
}
# Delivery only moves up this ranking: a late "delivered" never undoes "opened", and a
# failure or complaint outranks any engagement (an async bounce after "delivered" wins).
DELIVERY_RANK = {
    Nudge.Delivery.NONE: 0,
    Nudge.Delivery.DELIVERED: 1,
    Nudge.Delivery.OPENED: 2,
    Nudge.Delivery.CLICKED: 3,
    Nudge.Delivery.UNSUBSCRIBED: 4,
    Nudge.Delivery.SPAM_REPORT: 5,
    Nudge.Delivery.DROPPED: 6,
    Nudge.Delivery.BOUNCED: 7,
}
# SendGrid's "dropped" reasons that say the address itself must not be mailed again
# (others, e.g. "Spam Content" or "Invalid SMTPAPI header", are about the message).
_ADDRESS_DROP_REASONS = ("bounced address", "unsubscribed address", "spam reporting address")

_INSERT_CHUNK = 100  # rows per INSERT: 700 parameters, under SQLite's old 999 limit
_LOOKUP_CHUNK = 500
_NUDGE_FIELDS = (
    "status",
    "status_reason",
    "sent_at",
    "sendgrid_message_id",
    "delivery",
    "delivered_at",
    "opened_at",
    "clicked_at",
    "updated_at",
)


@dataclass
class Event:
    sg_event_id: str
    event: str
    email: str
    occurred_at: dt.datetime
    reason: str
    nudge_id: int | None
    bounce_type: str
    sg_message_id: str


def record_events(events: Sequence[Any]) -> int:
    """Record a webhook batch; returns how many events were new. Malformed entries (not an
    object, no event name) are skipped rather than failing the batch: SendGrid would only
    post the same batch again."""
    parsed: dict[str, Event] = {}
    for raw in events:
        event = parse_event(raw)
        if event is not None:
            parsed.setdefault(event.sg_event_id, event)
    if not parsed:
        return 0
    with transaction.atomic():
        nudges = _lock_nudges({e.nudge_id for e in parsed.values() if e.nudge_id})
        for e in parsed.values():
            if e.nudge_id not in nudges:
                e.nudge_id = None  # a nudge since erased (or never ours): keep the event
        new_ids = _insert_new(list(parsed.values()))
        fresh = [e for e in parsed.values() if e.sg_event_id in new_ids]
        _apply(fresh, nudges)
    return len(fresh)


def parse_event(raw: Any) -> Event | None:
    if not isinstance(raw, dict):
        return None
    name = str(raw.get("event") or "").strip().lower()
    if not name:
        return None
    sg_event_id = str(raw.get("sg_event_id") or "").strip()
    if not sg_event_id or len(sg_event_id) > 100:
        # Old-style events may lack an id: derive a stable one, so a retry still dedupes.
        digest = hashlib.sha256(json.dumps(raw, sort_keys=True, default=str).encode()).hexdigest()
        sg_event_id = f"sha256:{digest}"
    reason = raw.get("reason") or raw.get("response") or ""
    return Event(
        sg_event_id=sg_event_id,
        event=name[:30],
        email=str(raw.get("email") or "").strip()[:254],
        occurred_at=_when(raw.get("timestamp")),
        reason=str(reason)[:2000],
        nudge_id=_nudge_id(raw.get("nudge_id")),
        bounce_type=str(raw.get("type") or "").strip().lower(),
        sg_message_id=str(raw.get("sg_message_id") or "")[:100],
    )


def _when(value: Any) -> dt.datetime:
    try:
        return dt.datetime.fromtimestamp(float(value), tz=dt.UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        return timezone.now()


def _nudge_id(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value > 0 else None
    text = str(value or "").strip()
    return int(text) if text.isdigit() and len(text) < 19 else None


def _chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _lock_nudges(ids: Iterable[int]) -> dict[int, Nudge]:
    """The nudges the events name, locked (PostgreSQL) in id order so that two webhook
    requests touching the same nudges queue up instead of deadlocking, and so that the
    dispatcher's conditional updates and ours do not overwrite each other."""
    found: dict[int, Nudge] = {}
    ordered = sorted(ids)
    for chunk in _chunks(ordered, _LOOKUP_CHUNK):
        query = (
            Nudge.objects.select_for_update()
            .filter(pk__in=chunk)
            .only("contact_id", "supplier_id", *_NUDGE_FIELDS)
            .order_by("pk")
        )
        found.update((n.pk, n) for n in query)
    return found


def _insert_new(rows: list[Event]) -> set[str]:
    """Insert the events, skipping ids already stored; return the ids this call stored."""
    if connection.vendor not in ("postgresql", "sqlite"):
        return _insert_new_portable(rows)
    meta = NudgeEvent._meta
    qn = connection.ops.quote_name
    fields = [
        meta.get_field(name)
        for name in ("sg_event_id", "nudge", "event", "email", "occurred_at", "reason")
    ]
    fields.append(meta.get_field("received_at"))
    key = qn(meta.get_field("sg_event_id").column)
    columns = ", ".join(qn(f.column) for f in fields)
    row_sql = "(" + ", ".join(["%s"] * len(fields)) + ")"
    now = timezone.now()
    new: set[str] = set()
    # Sorted, so that concurrent inserts of overlapping batches take the unique index's
    # locks in the same order.
    ordered = sorted(rows, key=lambda e: e.sg_event_id)
    with connection.cursor() as cursor:
        for chunk in _chunks(ordered, _INSERT_CHUNK):
            params: list[Any] = []
            for e in chunk:
                values = (e.sg_event_id, e.nudge_id, e.event, e.email, e.occurred_at, e.reason)
                params.extend(
                    f.get_db_prep_value(v, connection, prepared=False)
                    for f, v in zip(fields, (*values, now), strict=True)
                )
            cursor.execute(
                f"INSERT INTO {qn(meta.db_table)} ({columns}) "
                f"VALUES {', '.join([row_sql] * len(chunk))} "
                f"ON CONFLICT ({key}) DO NOTHING RETURNING {key}",
                params,
            )
            new.update(row[0] for row in cursor.fetchall())
    return new


def _insert_new_portable(rows: list[Event]) -> set[str]:
    """For databases without INSERT ... RETURNING on conflict: look, then insert. Only
    safe when writers are serialised (the project runs on PostgreSQL or SQLite)."""
    ids = [e.sg_event_id for e in rows]
    existing: set[str] = set()
    for chunk in _chunks(ids, _LOOKUP_CHUNK):
        existing.update(
            NudgeEvent.objects.filter(sg_event_id__in=chunk).values_list("sg_event_id", flat=True)
        )
    now = timezone.now()
    NudgeEvent.objects.bulk_create(
        [
            NudgeEvent(
                sg_event_id=e.sg_event_id,
                nudge_id=e.nudge_id,
                event=e.event,
                email=e.email,
                occurred_at=e.occurred_at,
                reason=e.reason,
                received_at=now,
            )
            for e in rows
            if e.sg_event_id not in existing
        ],
        ignore_conflicts=True,
        batch_size=_INSERT_CHUNK,
    )
    return set(ids) - existing


def _suppression_for(e: Event) -> tuple[str, str] | None:
    """(reason, detail) when the event means the address must never be mailed again."""
    if e.event in ("bounce", "blocked"):
        return (e.bounce_type if e.bounce_type == "blocked" else e.event, e.reason)
    if e.event == "spamreport":
        return ("spam_report", e.reason)
    if e.event == "dropped":
        reason = e.reason.strip().lower()
        if reason in ("invalid", "invalid address") or any(
            r in reason for r in _ADDRESS_DROP_REASONS
        ):
            return ("dropped", e.reason)
    return None


def _apply(fresh: list[Event], nudges: dict[int, Nudge]) -> None:
    now = timezone.now()
    changed: dict[int, Nudge] = {}
    suppressions: dict[str, Suppression] = {}
    opt_outs: dict[tuple[int, int], OptOut] = {}
    for e in sorted(fresh, key=lambda e: e.occurred_at):
        suppression = _suppression_for(e)
        if suppression and e.email:
            reason, detail = suppression
            address = e.email.lower()  # Suppression.email is stored lower-case
            suppressions.setdefault(
                address, Suppression(email=address, reason=reason, detail=detail, created_at=now)
            )
        nudge = nudges.get(e.nudge_id) if e.nudge_id else None
        if nudge is None:
            continue
        if _settle(nudge, e):
            changed[nudge.pk] = nudge
        source = {
            "spamreport": OptOut.Source.SPAM_REPORT,
            "unsubscribe": OptOut.Source.ONE_CLICK,
            "group_unsubscribe": OptOut.Source.ONE_CLICK,
        }.get(e.event)
        if source:
            opt_outs.setdefault(
                (nudge.contact_id, nudge.supplier_id),
                OptOut(
                    contact_id=nudge.contact_id,
                    supplier_id=nudge.supplier_id,
                    source=source,
                    note=f"SendGrid {e.event} event for nudge {nudge.pk}",
                    created_at=now,
                ),
            )
    if changed:
        for nudge in changed.values():
            nudge.updated_at = now  # bulk_update does not run auto_now
        Nudge.objects.bulk_update(list(changed.values()), _NUDGE_FIELDS, batch_size=500)
    if suppressions:
        # The first reason recorded for an address stands.
        Suppression.objects.bulk_create(list(suppressions.values()), ignore_conflicts=True)
    if opt_outs:
        # An existing opt-out (from the link, the school lead...) is kept as it is.
        OptOut.objects.bulk_create(list(opt_outs.values()), ignore_conflicts=True)
        # The ones created now (an existing one keeps its own time): their history rows.
        record_changes(
            OptOut.objects.filter(
                created_at=now, contact_id__in={contact for contact, _ in opt_outs}
            ),
            history_type="+",
        )


def _settle(nudge: Nudge, e: Event) -> bool:
    """Apply one event to the nudge in memory; True when anything changed."""
    before = (
        nudge.status,
        nudge.sent_at,
        nudge.sendgrid_message_id,
        nudge.delivery,
        nudge.delivered_at,
        nudge.opened_at,
        nudge.clicked_at,
    )
    # "scheduled" too: an unknown nudge goes back to the queue when no event came in time;
    # a late event proves that earlier attempt reached SendGrid, so it must not go again.
    if nudge.status in SETTLES_AS_SENT:
        nudge.status = Nudge.Status.SENT
        nudge.status_reason = f"SendGrid reported it ({e.event})"[:300]
    if nudge.status == Nudge.Status.SENT and nudge.sent_at is None:
        nudge.sent_at = e.occurred_at
    if not nudge.sendgrid_message_id and e.sg_message_id:
        nudge.sendgrid_message_id = e.sg_message_id
    if e.event == "delivered" and nudge.delivered_at is None:
        nudge.delivered_at = e.occurred_at
    elif e.event == "open" and nudge.opened_at is None:
        nudge.opened_at = e.occurred_at
    elif e.event == "click" and nudge.clicked_at is None:
        nudge.clicked_at = e.occurred_at
    delivery = DELIVERY_FOR_EVENT.get(e.event)
    if delivery and DELIVERY_RANK[delivery] > DELIVERY_RANK.get(nudge.delivery, 0):
        nudge.delivery = delivery
    after = (
        nudge.status,
        nudge.sent_at,
        nudge.sendgrid_message_id,
        nudge.delivery,
        nudge.delivered_at,
        nudge.opened_at,
        nudge.clicked_at,
    )
    return before != after
