"""Retention: delete or blank personal data past ``settings.RETENTION_DAYS``.

One function per kind. Each works in batches of ``settings.RETENTION_BATCH`` rows: select
at most that many primary keys, delete/update ``pk__in`` those in their own short
transaction, repeat (from the last key onwards) until none is due. No statement ever
covers the whole table, so a large backlog never holds long locks. Every kind is idempotent: what was done leaves the
due set (a blanked row no longer matches), so a second run finds nothing.

- ticket_messages: messages and attachments (rows and stored files) of tickets closed
  longer ago than the limit. Nothing in reports or the SLA figures counts message rows
  (first response and resolution times live on the ticket), so the rows go.
- nudge_bodies: a nudge's own wording and what was rendered for sending, blanked; the row
  (who, when, delivery) stays for the reports.
- webhook_payloads: a SendGrid event's address and reason, blanked; the event kind and
  times stay (reports count them).
- inbound_raw: an inbound email log entry's sender, recipient and subject, blanked; its
  status stays.
- audit: historical rows (django-simple-history) older than the limit, with their
  many-to-many snapshots.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from django.conf import settings
from django.db import models, transaction
from django.db.models import Q
from django.utils import timezone

from audit.registry import m2m_history_models, tracked_models
from inbound.models import InboundEmail
from nudges.models import Nudge, NudgeEvent
from tickets.models import TicketAttachment, TicketMessage

KINDS = ("ticket_messages", "nudge_bodies", "webhook_payloads", "inbound_raw", "audit")


def cutoff(kind: str, now: datetime | None = None) -> datetime:
    """Rows whose clock started before this are due."""
    return (now or timezone.now()) - timedelta(days=settings.RETENTION_DAYS[kind])


def _batch_size(batch: int | None) -> int:
    return max(1, batch or settings.RETENTION_BATCH)


def _in_batches(queryset: models.QuerySet, act: Callable[[list], int], batch: int | None) -> int:
    """Run ``act(pks)`` on at most ``batch`` due primary keys at a time, each in its own
    transaction, until none is due. Returns the number of rows acted on."""
    size = _batch_size(batch)
    done = 0
    last = None
    while True:
        # Walk up the primary key (each batch starts after the last one's highest key), so
        # a batch never rescans the rows already done: each select is an index range scan.
        due = queryset if last is None else queryset.filter(pk__gt=last)
        with transaction.atomic():
            pks = list(due.order_by("pk").values_list("pk", flat=True)[:size])
            if not pks:
                return done
            act(pks)
        done += len(pks)
        last = pks[-1]


# --- ticket messages and attachments ------------------------------------------------


def _attachments_due(limit: datetime) -> models.QuerySet:
    return TicketAttachment.objects.filter(ticket__closed_at__lt=limit)


def _messages_due(limit: datetime) -> models.QuerySet:
    return TicketMessage.objects.filter(ticket__closed_at__lt=limit)


def ticket_messages(*, now: datetime | None = None, batch: int | None = None) -> int:
    """Delete the messages and attachments of tickets closed before the limit (the files
    from storage too, once their rows' deletion has committed). Returns messages plus
    attachments deleted."""
    limit = cutoff("ticket_messages", now)
    storage = TicketAttachment._meta.get_field("file").storage

    def delete_attachments(pks: list) -> int:
        names = [
            n for n in TicketAttachment.objects.filter(pk__in=pks).values_list("file", flat=True)
        ]
        TicketAttachment.objects.filter(pk__in=pks).delete()
        transaction.on_commit(lambda: [storage.delete(n) for n in names if n])
        return len(pks)

    def delete_messages(pks: list) -> int:
        TicketMessage.objects.filter(pk__in=pks).delete()
        return len(pks)

    attachments = _in_batches(_attachments_due(limit), delete_attachments, batch)
    return attachments + _in_batches(_messages_due(limit), delete_messages, batch)


# --- nudge bodies -------------------------------------------------------------------

_NUDGE_BODY_FIELDS = (
    "subject",
    "body_text",
    "body_html",
    "rendered_subject",
    "rendered_text",
    "rendered_html",
)
_NEVER_SENT = (Nudge.Status.FAILED, Nudge.Status.SKIPPED, Nudge.Status.CANCELLED)


def _nudges_due(limit: datetime) -> models.QuerySet:
    held = Q()
    for field in _NUDGE_BODY_FIELDS:
        held |= ~Q(**{field: ""})
    # Sent a year ago; or never sent (failed, skipped, cancelled) and untouched since.
    clock = Q(sent_at__lt=limit) | Q(
        sent_at__isnull=True, status__in=_NEVER_SENT, updated_at__lt=limit
    )
    return Nudge.objects.filter(clock).filter(held)


def nudge_bodies(*, now: datetime | None = None, batch: int | None = None) -> int:
    """Blank the wording of nudges sent before the limit. Returns nudges blanked."""
    blank = dict.fromkeys(_NUDGE_BODY_FIELDS, "")
    return _in_batches(
        _nudges_due(cutoff("nudge_bodies", now)),
        lambda pks: Nudge.objects.filter(pk__in=pks).update(**blank),
        batch,
    )


# --- webhook payloads ---------------------------------------------------------------


def _events_due(limit: datetime) -> models.QuerySet:
    return NudgeEvent.objects.filter(received_at__lt=limit).filter(~Q(email="") | ~Q(reason=""))


def webhook_payloads(*, now: datetime | None = None, batch: int | None = None) -> int:
    """Blank the address and reason of webhook events received before the limit."""
    return _in_batches(
        _events_due(cutoff("webhook_payloads", now)),
        lambda pks: NudgeEvent.objects.filter(pk__in=pks).update(email="", reason=""),
        batch,
    )


# --- inbound mail -------------------------------------------------------------------


def _inbound_due(limit: datetime) -> models.QuerySet:
    return InboundEmail.objects.filter(received_at__lt=limit).filter(
        ~Q(sender="") | ~Q(recipient="") | ~Q(subject="")
    )


def inbound_raw(*, now: datetime | None = None, batch: int | None = None) -> int:
    """Blank who sent and received an inbound email, and its subject, after the limit.
    (The message text itself is not kept here: it became a ticket message or nudge reply.)"""
    return _in_batches(
        _inbound_due(cutoff("inbound_raw", now)),
        lambda pks: InboundEmail.objects.filter(pk__in=pks).update(
            sender="", recipient="", subject=""
        ),
        batch,
    )


# --- audit trail --------------------------------------------------------------------


def _historical_models() -> list[type[models.Model]]:
    return [historical for _, historical in tracked_models()]


def _audit_due(historical: type[models.Model], limit: datetime) -> models.QuerySet:
    return historical._default_manager.filter(history_date__lt=limit)


def audit(*, now: datetime | None = None, batch: int | None = None) -> int:
    """Delete historical rows recorded before the limit, every tracked model, with the
    many-to-many snapshot rows that point at them. Returns historical rows deleted."""
    limit = cutoff("audit", now)
    snapshots: dict[type[models.Model], list[type[models.Model]]] = {}
    for historical, m2m in m2m_history_models():
        snapshots.setdefault(historical, []).append(m2m)
    done = 0
    for historical in _historical_models():

        def delete(pks: list, historical=historical) -> int:
            for m2m in snapshots.get(historical, []):
                m2m._default_manager.filter(history_id__in=pks).delete()
            historical._default_manager.filter(pk__in=pks).delete()
            return len(pks)

        done += _in_batches(_audit_due(historical, limit), delete, batch)
    return done


# --- all ----------------------------------------------------------------------------

APPLY = {
    "ticket_messages": ticket_messages,
    "nudge_bodies": nudge_bodies,
    "webhook_payloads": webhook_payloads,
    "inbound_raw": inbound_raw,
    "audit": audit,
}


def due_counts(*, now: datetime | None = None) -> dict[str, int]:
    """What a run now would delete or blank, per kind (nothing is changed)."""
    return {
        "ticket_messages": _messages_due(cutoff("ticket_messages", now)).count()
        + _attachments_due(cutoff("ticket_messages", now)).count(),
        "nudge_bodies": _nudges_due(cutoff("nudge_bodies", now)).count(),
        "webhook_payloads": _events_due(cutoff("webhook_payloads", now)).count(),
        "inbound_raw": _inbound_due(cutoff("inbound_raw", now)).count(),
        "audit": sum(_audit_due(h, cutoff("audit", now)).count() for h in _historical_models()),
    }


def apply_retention(*, now: datetime | None = None, batch: int | None = None) -> dict[str, int]:
    """Apply every kind; rows deleted or blanked per kind."""
    return {kind: APPLY[kind](now=now, batch=batch) for kind in KINDS}
