"""Emails to the person who raised a ticket: when the supplier first responds and when it
is resolved. Only public content goes out; internal notes never do."""

from __future__ import annotations

from django.conf import settings
from django.core.mail import EmailMessage
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from partnership_crm.reply_tokens import reply_address

from .models import Ticket, TicketMessage

CLAIM_FIELD = {"first_response": "notified_first_response_at", "resolved": "notified_resolved_at"}


def send_raiser_notification(*, ticket_id: int, kind: str) -> bool:
    """Claim the notification with a conditional UPDATE, then send. Returns whether an
    email was sent. A repeated call (task retry, duplicate message) sends nothing."""
    field = CLAIM_FIELD[kind]
    with transaction.atomic():
        claimed = Ticket.objects.filter(pk=ticket_id, **{f"{field}__isnull": True}).update(
            **{field: timezone.now()}
        )
        if claimed != 1:
            return False
        ticket = Ticket.objects.select_related("raised_by", "supplier").get(pk=ticket_id)
        subject, body = _compose(ticket, kind)
        # Sending inside the transaction: if the mail server refuses, the claim rolls back
        # and the task's retry tries again.
        _send(subject, body, ticket, ticket.raised_by)
    return True


def _or_answer() -> str:
    # Only said when a reply by email reaches the ticket (INBOUND_DOMAIN is set).
    return ", or answer this email to reply" if settings.INBOUND_DOMAIN else ""


def _send(subject: str, body: str, ticket: Ticket, to) -> None:
    """A ticket email whose reply (to reply+<token>@INBOUND_DOMAIN) becomes a message on
    the ticket from its recipient."""
    reply_to = reply_address("ticket", ticket.pk, to.pk)
    EmailMessage(
        subject,
        body,
        settings.DEFAULT_FROM_EMAIL,
        [to.email],
        reply_to=[reply_to] if reply_to else None,
    ).send()


def _compose(ticket: Ticket, kind: str) -> tuple[str, str]:
    # The raiser is school staff: their page, not the supplier's queue.
    url = f"{settings.SITE_URL}{reverse('my-ticket', args=[ticket.pk])}"
    name = ticket.raised_by.get_short_name()
    if kind == "first_response":
        reply = (
            TicketMessage.objects.filter(ticket=ticket, is_internal=False)
            .exclude(author_id=ticket.raised_by_id)
            .order_by("created_at")
            .first()
        )
        said = f"\n\nThey wrote:\n\n{reply.body}\n" if reply else ""
        return (
            f"{ticket.supplier.name} has responded: {ticket.subject}",
            f"Hello {name},\n\n{ticket.supplier.name} has picked up your feedback "
            f'"{ticket.subject}" (status: {ticket.get_status_display()}).{said}\n'
            f"See it{_or_answer()}: {url}\n",
        )
    reason = f"\n{ticket.outcome_reason}\n" if ticket.outcome_reason else ""
    return (
        f"Resolved: {ticket.subject}",
        f"Hello {name},\n\n{ticket.supplier.name} has resolved your feedback "
        f'"{ticket.subject}".\n\nWhat they did: {ticket.get_outcome_display()}{reason}\n'
        f"If it is not sorted, reopen it; if it is, tell them how they did (1 to 5): {url}\n",
    )


def send_supplier_notification(*, message_id: int) -> bool:
    """Email the ticket's assignee (else the partnership's account manager) that the school
    replied or reopened it: claimed once per message, sent after the message committed."""
    with transaction.atomic():
        claimed = TicketMessage.objects.filter(
            pk=message_id, supplier_notified_at__isnull=True, is_internal=False
        ).update(supplier_notified_at=timezone.now())
        if claimed != 1:
            return False
        message = TicketMessage.objects.select_related(
            "author", "ticket__assignee", "ticket__school", "ticket__partnership__account_manager"
        ).get(pk=message_id)
        ticket = message.ticket
        to = ticket.assignee if ticket.assignee and ticket.assignee.is_active else None
        to = to or ticket.partnership.account_manager
        if to is None or not to.email:
            return False
        url = f"{settings.SITE_URL}{reverse('ticket', args=[ticket.pk])}"
        what = "reopened" if message.reopened else "replied to"
        subject = f"{'Reopened' if message.reopened else 'Reply'}: {ticket.subject}"
        body = (
            f"Hello {to.get_short_name()},\n\n{message.author.get_full_name()} at "
            f'{ticket.school.name} has {what} "{ticket.subject}" (#{ticket.pk}):\n\n'
            f"{message.body}\n\nOpen it in the queue{_or_answer()}: {url}\n"
        )
        _send(subject, body, ticket, to)
    return True
