"""Writes on tickets. Callers pass a ticket the user can already see (selected through
``Ticket.objects.visible_to``); these functions check what the user's side and role allow
(PermissionDenied -> 403) and the workflow (ValidationError -> 400)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import timedelta
from functools import partial
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.calendars import calendar_for_school
from accounts.models import Partnership, Product, User
from accounts.scoping import scope_for
from accounts.working_time import WorkingCalendar
from audit.history import record_changes

from . import sla
from .attachments import (
    FIELD,
    Prepared,
    Upload,
    atomic_with_files,
    store_attachments,
    validate_attachments,
)
from .models import (
    IdempotencyKey,
    Status,
    Ticket,
    TicketAttachment,
    TicketEvent,
    TicketMessage,
)
from .transitions import allowed_next, is_reopen

logger = logging.getLogger(__name__)


class StatusRefused(ValidationError):
    def __init__(self, message: str, allowed: list[str]) -> None:
        super().__init__({"status": [message]})
        self.allowed = allowed
        self.allowed_key = "allowed_statuses"


def _is_supplier_side(user: User, ticket: Ticket) -> bool:
    return scope_for(user).supplier_role(ticket.supplier_id) is not None


def _is_school_actor(user: User, ticket: Ticket) -> bool:
    """The raiser, or a lead of the ticket's school. Trust leads only read."""
    s = scope_for(user)
    return ticket.raised_by_id == user.pk or s.leads_school(ticket.school_id)


def _notify(ticket_id: int, kind: str) -> None:
    transaction.on_commit(partial(_enqueue_notification, ticket_id, kind))


def _enqueue_notification(ticket_id: int, kind: str) -> None:
    """After commit. If the broker is down the request still succeeds: the sweeper
    (tickets.tasks.sweep_notifications) finds the unsent email from the database."""
    from .tasks import notify_raiser, notify_supplier

    try:
        # "supplier": ``ticket_id`` is the school message to tell the supplier about.
        if kind == "supplier":
            notify_supplier.delay(ticket_id)
        else:
            notify_raiser.delay(ticket_id, kind)
    except Exception:
        logger.warning(
            "could not queue %s email for %s; the sweeper will",
            kind,
            ticket_id,
            exc_info=True,
        )


def _notify_supplier(message_id: int) -> None:
    transaction.on_commit(partial(_enqueue_notification, message_id, "supplier"))


def reopen_window_open(ticket: Ticket, now: Any) -> bool:
    """May the school still reopen this resolved ticket, or is it time for a follow-up?"""
    resolved = ticket.resolved_at or ticket.closed_at or ticket.updated_at
    return now - resolved <= timedelta(days=settings.TICKET_REOPEN_WINDOW_DAYS)


def _locked(ticket: Ticket) -> Ticket:
    return Ticket.objects.select_for_update().get(pk=ticket.pk)


def _event(
    ticket: Ticket, kind: str, by: User, at: Any, from_value: str = "", to_value: str = ""
) -> None:
    TicketEvent.objects.create(
        ticket=ticket, kind=kind, by=by, at=at, from_value=from_value, to_value=to_value
    )


def _record_first_response(
    ticket: Ticket, by: User, now: Any, cal: WorkingCalendar | None = None
) -> list[str]:
    """The supplier's first public reply or move, once; ``cal`` is the school's calendar
    when the caller has it already (else it is read only if needed)."""
    if ticket.first_response_at is not None:
        return []
    ticket.first_response_at = now
    cal = cal or calendar_for_school(ticket.school)
    ticket.first_response_seconds = cal.business_seconds(ticket.created_at, now)
    _event(ticket, TicketEvent.Kind.FIRST_RESPONSE, by, now)
    _notify(ticket.pk, "first_response")
    return ["first_response_at", "first_response_seconds"]


class _KeyTaken(Exception):
    """A concurrent request with the same idempotency key committed first."""


def ticket_create(
    *, by: User, idempotency_key: str | None = None, **fields: Any
) -> tuple[Ticket, bool]:
    """Raise a ticket, with ``attachments`` on the ticket itself. Returns (ticket,
    created); a repeated idempotency key returns the ticket the first request made, so a
    retried or double-submitted form files once, even when the two arrive together."""
    try:
        return _ticket_create(by=by, idempotency_key=idempotency_key, **fields)
    except _KeyTaken:
        # Ours was rolled back whole (ticket, history, files); theirs has committed, since
        # PostgreSQL only reports the clash once the other insert is final.
        return IdempotencyKey.objects.select_related("ticket").get(
            user=by, key=idempotency_key
        ).ticket, False


@atomic_with_files()
def _ticket_create(
    *,
    by: User,
    partnership: Partnership,
    subject: str,
    description: str,
    category: str = Ticket.Category.PROBLEM,
    priority: str = Ticket.Priority.NORMAL,
    product: Product | None = None,
    idempotency_key: str | None = None,
    attachments: Sequence[Upload | Prepared] = (),
) -> tuple[Ticket, bool]:
    if idempotency_key:
        existing = IdempotencyKey.objects.filter(user=by, key=idempotency_key).first()
        if existing is not None:
            return existing.ticket, False
    s = scope_for(by)
    if partnership.school_id not in s.school_ids:
        raise PermissionDenied("Tickets are raised by the school's own staff.")
    if product is not None and not partnership.products.filter(pk=product.pk).exists():
        raise ValidationError({"product": "That product is not part of this partnership."})
    if partnership.stage == "ended":
        raise ValidationError({"partnership": "This partnership has ended."})
    prepared = validate_attachments(attachments)
    now = timezone.now()
    ticket = Ticket(
        partnership=partnership,
        supplier_id=partnership.supplier_id,
        school_id=partnership.school_id,
        product=product,
        raised_by=by,
        subject=subject.strip(),
        description=description.strip(),
        category=category,
        priority=priority,
        created_at=now,
        first_response_target_seconds=partnership.first_response_target_hours * 3600,
        resolution_target_seconds=partnership.resolution_target_hours * 3600,
        search_document=f"{subject}\n{description}",
    )
    sla.start(ticket, now, calendar_for_school(partnership.school))
    ticket.full_clean(exclude=["search_document"])
    ticket.save()
    _event(ticket, TicketEvent.Kind.CREATED, by, now, to_value=Status.NEW)
    if idempotency_key:
        try:
            with transaction.atomic():
                IdempotencyKey.objects.create(user=by, key=idempotency_key, ticket=ticket)
        except IntegrityError:
            # A concurrent request with the same key won: undo all of ours (leaving this
            # block by an exception), and ticket_create returns theirs. Querying here
            # instead would fail: the transaction is already broken on PostgreSQL.
            raise _KeyTaken from None
    store_attachments(ticket=ticket, message=None, files=prepared, user=by)
    return ticket, True


@atomic_with_files()
def ticket_post_message(
    *,
    ticket: Ticket,
    by: User,
    body: str,
    is_internal: bool = False,
    channel: str = TicketMessage.Channel.PAGE,
    reopen: bool | None = None,
    attachments: Sequence[Upload | Prepared] = (),
) -> TicketMessage:
    """A message on the ticket, with ``attachments`` (files, or (name, bytes) pairs; see
    tickets/attachments.py) written in the same transaction. The school side writing on a
    resolved or closed ticket must say whether it reopens it (``reopen``): a message is
    never silently kept on a ticket the supplier no longer looks at."""
    supplier_side = _is_supplier_side(by, ticket)
    if not supplier_side:
        if is_internal:
            raise PermissionDenied("Internal notes are for the supplier's staff.")
        if not _is_school_actor(by, ticket):
            raise PermissionDenied("You may read this ticket but not reply to it.")
    body = body.strip()
    if not body:
        raise ValidationError({"body": "Write a message."})
    prepared = validate_attachments(attachments)
    ticket = _locked(ticket)
    now = timezone.now()
    if not supplier_side and ticket.status in (Status.RESOLVED, Status.CLOSED):
        if reopen is None:
            raise ValidationError(
                {
                    "reopen": "This ticket is resolved. Say whether your message reopens it "
                    "(reopen: true) or is only a note (reopen: false)."
                }
            )
        if reopen:
            if not reopen_window_open(ticket, now):
                raise ValidationError(
                    {
                        "reopen": f"It was resolved more than "
                        f"{settings.TICKET_REOPEN_WINDOW_DAYS} days ago: file a follow-up "
                        "(reopen it with a reason) instead."
                    }
                )
            ticket_transition(
                ticket=ticket,
                by=by,
                status=Status.IN_PROGRESS,
                reason=body,
                channel=channel,
                attachments=prepared,
            )
            return TicketMessage.objects.filter(ticket=ticket, reopened=True).latest("id")
    message = TicketMessage.objects.create(
        ticket=ticket,
        author=by,
        body=body,
        is_internal=is_internal,
        channel=channel,
        created_at=now,
    )
    store_attachments(ticket=ticket, message=message, files=prepared, user=by)
    if not supplier_side and not is_internal:
        _notify_supplier(message.pk)
    fields: list[str] = []
    if not is_internal:
        ticket.search_document = f"{ticket.search_document}\n{body}"
        fields.append("search_document")
        if supplier_side:
            fields += _record_first_response(ticket, by, now)
        elif ticket.status == Status.WAITING_ON_SCHOOL:
            # The school answered: the ball is back with the supplier, and the clock runs.
            _event(ticket, TicketEvent.Kind.STATUS, by, now, ticket.status, Status.IN_PROGRESS)
            ticket.status = Status.IN_PROGRESS
            sla.resume(ticket, now, calendar_for_school(ticket.school))
            fields += ["status", *sla.FIELDS]
    if fields:
        ticket.save(update_fields=[*fields, "updated_at"])
    return message


@atomic_with_files()
def ticket_transition(
    *,
    ticket: Ticket,
    by: User,
    status: str,
    outcome: str = "",
    outcome_reason: str = "",
    reason: str = "",
    channel: str = TicketMessage.Channel.PAGE,
    attachments: Sequence[Upload | Prepared] = (),
) -> Ticket:
    """Move the ticket. The school side reopening a resolved ticket gives a ``reason``
    (posted as its message, with ``attachments``); past the reopen window a follow-up
    ticket is filed instead (the files on it), and that new ticket is what is returned."""
    supplier_side = _is_supplier_side(by, ticket)
    if not supplier_side and not _is_school_actor(by, ticket):
        raise PermissionDenied("You may read this ticket but not change it.")
    prepared = validate_attachments(attachments)
    ticket = _locked(ticket)
    allowed = allowed_next(ticket.status, supplier_side=supplier_side)
    if status not in allowed:
        raise StatusRefused(
            f"A ticket that is '{ticket.status}' cannot move to '{status}'.", allowed
        )
    now = timezone.now()
    school_reopen = not supplier_side and is_reopen(ticket.status, status)
    if prepared and not school_reopen:
        raise ValidationError({FIELD: "Files go with a message: send them as a reply."})
    if school_reopen:
        reason = reason.strip()
        if not reason:
            raise ValidationError({"reason": "Say what is still wrong, so they can act on it."})
        if not reopen_window_open(ticket, now):
            return _follow_up(ticket, by, reason, prepared)
        message = TicketMessage.objects.create(
            ticket=ticket,
            author=by,
            body=reason,
            channel=channel,
            reopened=True,
            created_at=now,
        )
        store_attachments(ticket=ticket, message=message, files=prepared, user=by)
        ticket.search_document = f"{ticket.search_document}\n{reason}"
        _notify_supplier(message.pk)
    cal = calendar_for_school(ticket.school)
    from_status = ticket.status
    fields = ["status", *sla.FIELDS]

    if status == Status.RESOLVED:
        outcome_reason = outcome_reason.strip()
        if not outcome:
            raise ValidationError({"outcome": "Say what was done: an outcome is required."})
        if outcome == Ticket.Outcome.WONT_CHANGE and not outcome_reason:
            raise ValidationError({"outcome_reason": "Explain why it won't change."})
        ticket.outcome, ticket.outcome_reason = outcome, outcome_reason
        ticket.resolved_at = now
        sla.stop(ticket, now, cal)
        fields += ["outcome", "outcome_reason", "resolved_at"]
        _event(ticket, TicketEvent.Kind.OUTCOME, by, now, to_value=outcome)
        _notify(ticket.pk, "resolved")
    elif status == Status.WAITING_ON_SCHOOL:
        sla.stop(ticket, now, cal)
        ticket.resolution_due_at = None  # undefined while the clock is stopped
    elif status == Status.CLOSED:
        ticket.closed_at = now
        fields.append("closed_at")
    elif is_reopen(from_status, status):
        ticket.reopen_count += 1
        ticket.outcome, ticket.outcome_reason = "", ""
        ticket.resolved_at = ticket.closed_at = None
        ticket.notified_resolved_at = None  # a second resolution is news again
        sla.resume(ticket, now, cal)
        fields += [
            "reopen_count",
            "outcome",
            "outcome_reason",
            "resolved_at",
            "closed_at",
            "notified_resolved_at",
        ]
    elif from_status == Status.WAITING_ON_SCHOOL:
        sla.resume(ticket, now, cal)

    ticket.status = status
    _event(ticket, TicketEvent.Kind.STATUS, by, now, from_status, status)
    if supplier_side:
        fields += _record_first_response(ticket, by, now, cal)
    if school_reopen:
        fields.append("search_document")
    ticket.save(update_fields=[*fields, "updated_at"])
    return ticket


def _follow_up(ticket: Ticket, by: User, reason: str, files: list[Prepared]) -> Ticket:
    """The school came back about a ticket resolved too long ago to reopen: a new ticket,
    linked to the old one, with the reason as its description (and the files on it)."""
    subject = f"Follow-up: {ticket.subject}"[:200]
    new, _ = ticket_create(
        by=by,
        partnership=ticket.partnership,
        subject=subject,
        description=reason,
        category=ticket.category,
        priority=ticket.priority,
        product=ticket.product,
        attachments=files,
    )
    new.follow_up_of = ticket
    new.save(update_fields=["follow_up_of"])
    return new


@atomic_with_files()
def ticket_attach(
    *,
    ticket: Ticket,
    by: User,
    files: Sequence[Upload | Prepared],
    message: TicketMessage | None = None,
) -> list[TicketAttachment]:
    """Files added afterwards: to one of the user's own messages on the ticket, or (the
    school side) to the ticket itself. Supplier staff attach to a reply or an internal
    note, so that who sees the files is never a guess. At most ATTACHMENT_MAX_FILES on
    each message (or on the ticket)."""
    supplier_side = _is_supplier_side(by, ticket)
    if not supplier_side and not _is_school_actor(by, ticket):
        raise PermissionDenied("You may read this ticket but not add to it.")
    if message is None and supplier_side:
        raise ValidationError(
            {"message": "Attach files to a reply or an internal note (give its id)."}
        )
    if message is not None and message.ticket_id != ticket.pk:
        raise ValidationError({"message": "That message is not on this ticket."})
    if message is not None and message.author_id != by.pk:
        raise PermissionDenied("Files are added to your own messages only.")
    if not files:
        raise ValidationError({FIELD: "Choose a file to attach."})
    prepared = validate_attachments(files)  # the slow part, before taking the lock
    ticket = _locked(ticket)  # one count at a time, so the limit holds
    there = TicketAttachment.objects.filter(ticket=ticket, message=message).count()
    validate_attachments(prepared, room=max(settings.ATTACHMENT_MAX_FILES - there, 0))
    return store_attachments(ticket=ticket, message=message, files=prepared, user=by)


def ticket_reply(
    *,
    ticket: Ticket,
    by: User,
    body: str,
    reopen: bool | None = None,
    channel: str = TicketMessage.Channel.PAGE,
    attachments: Sequence[Upload | Prepared] = (),
) -> tuple[Ticket, TicketMessage | None]:
    """A reply from the ticket's page or by email. The school side reopening a resolved
    ticket goes through ``ticket_transition``: reopened within the window, else a linked
    follow-up is filed. Returns the ticket the reply landed on (the follow-up, if one was
    filed) and its message (None for a follow-up: the reply is its description)."""
    if reopen and ticket.status in (Status.RESOLVED, Status.CLOSED):
        result = ticket_transition(
            ticket=ticket,
            by=by,
            status=Status.IN_PROGRESS,
            reason=body,
            channel=channel,
            attachments=attachments,
        )
        if result.pk != ticket.pk:
            return result, None
        return result, TicketMessage.objects.filter(ticket=result, reopened=True).latest("id")
    message = ticket_post_message(
        ticket=ticket, by=by, body=body, reopen=reopen, channel=channel, attachments=attachments
    )
    return ticket, message


@transaction.atomic
def ticket_update(*, ticket: Ticket, by: User, **data: Any) -> Ticket:
    """Supplier staff triage (priority, category, assignee); the raiser may correct the
    subject and description until the supplier has picked the ticket up."""
    supplier_side = _is_supplier_side(by, ticket)
    ticket = _locked(ticket)
    now = timezone.now()
    fields: list[str] = []
    for name in ("priority", "category", "assignee"):
        if name not in data:
            continue
        if not supplier_side:
            raise PermissionDenied("Only the supplier triages tickets.")
        value = data[name]
        if (
            name == "assignee"
            and value is not None
            and scope_for(value).supplier_role(ticket.supplier_id) is None
        ):
            raise ValidationError({"assignee": "Assign to a member of the supplier's staff."})
        old = getattr(ticket, name)
        if old != value:
            kind = {"assignee": TicketEvent.Kind.ASSIGNED, "priority": TicketEvent.Kind.PRIORITY}
            if name in kind:
                _event(ticket, kind[name], by, now, str(old or ""), str(value or ""))
            setattr(ticket, name, value)
            fields.append(name)
    for name in ("subject", "description"):
        if name not in data:
            continue
        if ticket.raised_by_id != by.pk:
            raise PermissionDenied("Only the person who raised the ticket may reword it.")
        if ticket.status != Status.NEW:
            raise ValidationError({name: "The supplier has picked this up; add a message instead."})
        setattr(ticket, name, data[name].strip())
        fields.append(name)
    if {"subject", "description"} & set(fields):
        public = TicketMessage.objects.filter(ticket=ticket, is_internal=False)
        ticket.search_document = "\n".join(
            [ticket.subject, ticket.description, *public.values_list("body", flat=True)]
        )
        fields.append("search_document")
    if fields:
        ticket.full_clean(exclude=["search_document"])
        ticket.save(update_fields=[*fields, "updated_at"])
    return ticket


@transaction.atomic
def ticket_rate(*, ticket: Ticket, by: User, rating: int, comment: str = "") -> Ticket:
    if ticket.raised_by_id != by.pk:
        raise PermissionDenied("Only the person who raised the ticket rates it.")
    if ticket.status not in (Status.RESOLVED, Status.CLOSED):
        raise ValidationError({"rating": "A ticket is rated once it is resolved."})
    if not 1 <= rating <= 5:
        raise ValidationError({"rating": "Rate from 1 to 5."})
    now = timezone.now()
    # Conditional update: of two concurrent ratings exactly one lands.
    rated = Ticket.objects.filter(pk=ticket.pk, rating__isnull=True).update(
        rating=rating, rating_comment=comment.strip(), rated_at=now
    )
    if rated != 1:
        raise ValidationError({"rating": "You have already rated this ticket."})
    _event(ticket, TicketEvent.Kind.RATED, by, now, to_value=str(rating))
    fresh = Ticket.objects.get(pk=ticket.pk)
    record_changes([fresh], user=by)  # the update wrote no history
    return fresh
