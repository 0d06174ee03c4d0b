"""Emails to the person who raised a ticket: when the supplier first responds and when it
is resolved. Only public content goes out; internal notes never do."""

from __future__ import annotations

from django.conf import settings
from django.core.mail import EmailMessage
from django.urls import reverse

from partnership_crm.mail import send_once
from partnership_crm.reply_tokens import reply_address

from .models import Ticket, TicketMessage

CLAIM_FIELD = {"first_response": "notified_first_response_at", "resolved": "notified_resolved_at"}


def send_raiser_notification(*, ticket_id: int, kind: str) -> bool:
    """Send once (partnership_crm.mail.send_once). Returns whether an email was sent; a
    repeated call (task retry, duplicate message) sends nothing."""

    def send() -> bool:
        ticket = Ticket.objects.select_related("raised_by", "supplier").get(pk=ticket_id)
        subject, body = _compose(ticket, kind)
        _send(subject, body, ticket, ticket.raised_by)
        return True

    return send_once(Ticket.objects.filter(pk=ticket_id), CLAIM_FIELD[kind], send)


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

    def send() -> bool:
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

    unsent = TicketMessage.objects.filter(pk=message_id, is_internal=False)
    return send_once(unsent, "supplier_notified_at", send)
