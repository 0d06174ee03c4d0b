"""Let a reply in, or refuse it with a logged reason and change nothing.

A message gets in only if: it is addressed to a reply+<token> address of ours; the token's
signature holds and it has not expired; what it names (a ticket or a nudge, and the
person it was sent to) still exists; the From address is that person's; and, for a
ticket, they can still see it. Parse has no signature of its own, so these and the
secret in the webhook's URL are the whole of the check.

Then: a reply to a ticket email becomes a public message on the ticket (reopening it if it
was resolved, or past the reopen window a linked follow-up); a reply to a nudge is
recorded on the partnership, stops that rule for that person and tells the account
manager. Auto-replies are recorded and do nothing else. The same Message-ID twice is
stored once (a unique key, so two deliveries racing each other also store one).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.mail import EmailMessage
from django.db import IntegrityError, transaction
from email_reply_parser import EmailReplyParser

from accounts.models import Contact, Stage, User
from accounts.scoping import scope_for
from audit.context import recording
from nudges.models import Nudge
from nudges.replies import record_reply
from partnership_crm.reply_tokens import BadToken, ReplyToken, read_reply_address
from tickets import services as ticket_services
from tickets.attachments import atomic_with_files, partition_attachments
from tickets.models import Ticket, TicketMessage

from .models import InboundEmail
from .parse import InboundMessage, is_auto_reply

logger = logging.getLogger(__name__)
S = InboundEmail.Status


class Refused(Exception):
    def __init__(self, reason: str, *, tell_sender: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        # Said back to the sender only once they are known to be the token's recipient.
        self.tell_sender = tell_sender


@dataclass
class Received:
    status: str  # accepted, auto_reply, refused or duplicate
    reason: str = ""
    record: InboundEmail | None = None


def receive(message: InboundMessage) -> Received:
    try:
        with transaction.atomic():
            record = InboundEmail.objects.create(
                dedup_key=message.dedup_key,
                message_id=message.message_id[:255],
                sender=message.sender[:320],
                subject=message.subject[:300],
                status=S.REFUSED,
            )
    except IntegrityError:
        logger.info("inbound: %s already received", message.dedup_key)
        return Received("duplicate", "this message was already received")
    try:
        # Files stored for the reply are deleted again if it is refused after all.
        with atomic_with_files(), recording("inbound", "sendgrid-inbound"):
            _let_in(message, record)
    except Refused as refusal:
        record.status, record.reason = S.REFUSED, refusal.reason[:300]
        record.save(update_fields=["status", "reason", "recipient"])
        logger.warning(
            "inbound refused from %s to %s: %s", message.sender, record.recipient, refusal.reason
        )
        if refusal.tell_sender:
            _tell_sender(message, refusal.tell_sender)
        return Received(S.REFUSED, refusal.reason, record)
    return Received(record.status, record.reason, record)


def _reply_token(message: InboundMessage, record: InboundEmail) -> ReplyToken:
    ours = [a for a in message.recipients if a.startswith("reply+")]
    if not ours:
        raise Refused("not addressed to a reply address")
    record.recipient = ours[0][:320]
    try:
        return read_reply_address(ours[0])
    except BadToken as exc:
        raise Refused(str(exc)) from None


def _let_in(message: InboundMessage, record: InboundEmail) -> None:
    token = _reply_token(message, record)
    if token.kind == "ticket":
        _ticket_reply(message, record, token)
    else:
        _nudge_reply(message, record, token)
    record.save()


def _check_sender(message: InboundMessage, expected: str) -> None:
    if not expected or message.sender != expected.strip().lower():
        raise Refused(f"sender {message.sender!r} is not the token's recipient")


def _reply_text(message: InboundMessage) -> str:
    return EmailReplyParser.parse_reply(message.plain_text).strip()


def _ticket_reply(message: InboundMessage, record: InboundEmail, token: ReplyToken) -> None:
    user = User.objects.filter(pk=token.recipient_id, is_active=True).first()
    if user is None:
        raise Refused("the token's recipient no longer has an account")
    _check_sender(message, user.email)
    ticket = (
        Ticket.objects.visible_to(user)
        .select_related("partnership")
        .filter(pk=token.object_id)
        .first()
    )
    if ticket is None:
        raise Refused("the ticket does not exist or its recipient can no longer see it")
    if ticket.partnership.stage == Stage.ENDED:
        raise Refused(
            "the partnership has ended",
            tell_sender=f"{ticket.partnership} has ended, so replies are no longer added to "
            f'"{ticket.subject}". Please contact them directly.',
        )
    auto = is_auto_reply(message)
    if auto:
        record.status, record.reason = S.AUTO_REPLY, auto
        return
    body = _reply_text(message)
    files, left_out = partition_attachments([(f.name, f.content) for f in message.files])
    if not body and files:
        body = "(files only)"
    if not body:
        raise Refused("the reply is empty once the quoted email is removed")
    try:
        # Replying to "resolved" from the school means it is not: reopen, or a follow-up.
        supplier_side = ticket.supplier_id in scope_for(user).supplier_ids
        record.ticket, record.ticket_message = ticket_services.ticket_reply(
            ticket=ticket,
            by=user,
            body=body,
            reopen=None if supplier_side else True,
            channel=TicketMessage.Channel.EMAIL,
            attachments=files,
        )
    except (PermissionDenied, ValidationError) as exc:
        raise Refused(f"the ticket refused it: {exc}") from None
    record.status = S.ACCEPTED
    if left_out:
        # Nobody can be asked to fix a file in an email: keep the reply, say what was not kept.
        record.reason = f"files left out: {'; '.join(left_out)}"[:300]
        transaction.on_commit(
            lambda: _tell_sender(
                message,
                f'Your reply to "{ticket.subject}" was added, but not these files:\n\n'
                + "\n".join(left_out)
                + "\n\nYou can add files on the ticket's page.",
                subject="Some files were not added",
            )
        )


def _nudge_reply(message: InboundMessage, record: InboundEmail, token: ReplyToken) -> None:
    nudge = (
        Nudge.objects.select_related("contact", "partnership")
        .filter(pk=token.object_id, contact_id=token.recipient_id)
        .first()
    )
    if nudge is None:
        raise Refused("the nudge does not exist or was not sent to this contact")
    contact: Contact = nudge.contact
    _check_sender(message, contact.email)
    if nudge.partnership.stage == Stage.ENDED:
        raise Refused(
            "the partnership has ended",
            tell_sender=f"{nudge.partnership} has ended, so this reply was not passed on. "
            "Please contact them directly.",
        )
    auto = is_auto_reply(message)
    body = _reply_text(message)
    if not auto and not body:
        raise Refused("the reply is empty once the quoted email is removed")
    record.nudge_reply = record_reply(
        nudge=nudge, subject=message.subject, body=body, is_auto=bool(auto)
    )
    record.status, record.reason = (S.AUTO_REPLY, auto) if auto else (S.ACCEPTED, "")


def _tell_sender(message: InboundMessage, text: str, *, subject: str = "Not delivered") -> None:
    try:
        EmailMessage(
            f"{subject}: {message.subject}"[:200],
            f"Hello,\n\n{text}\n",
            settings.DEFAULT_FROM_EMAIL,
            [message.sender],
            headers={"Auto-Submitted": "auto-replied"},
        ).send()
    except Exception:
        logger.warning("inbound: could not tell %s", message.sender, exc_info=True)
