"""The embedded default when no SENDGRID_API_KEY is set: nudges are written as .eml files
to the outbox folder (EMAIL_FILE_PATH, var/outbox) and logged, so a laptop demo shows what
would have been sent, with the same headers SendGrid would carry."""

from __future__ import annotations

import logging
import os
import uuid
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path

from .sendgrid import (
    NO_LOG,
    BatchSender,
    Outcome,
    OutgoingEmail,
    PostResult,
    RequestLog,
    Sender,
    SendReport,
)

_FILE_POLICY = policy.default.clone(max_line_length=998)

logger = logging.getLogger(__name__)


class OutboxBatchSender(BatchSender):
    def __init__(self, directory: str | os.PathLike[str] | None = None) -> None:
        if directory is None:
            from django.conf import settings

            directory = settings.EMAIL_FILE_PATH
        self.directory = Path(directory)

    def send(
        self, sender: Sender, emails: list[OutgoingEmail], request_log: RequestLog = NO_LOG
    ) -> SendReport:
        ids = [e.nudge_id for e in emails]
        if len(set(ids)) != len(ids):
            raise ValueError("each nudge may appear only once in a batch")
        emails = request_log.started(emails) if emails else []
        if not emails:
            return SendReport(outcomes={}, calls=0)
        batch_id = uuid.uuid4().hex
        outcomes: dict[int, Outcome] = {}
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            failed = Outcome("retry", error=f"outbox folder unavailable: {exc}", retry_after=60.0)
            request_log.finished(emails, PostResult("retry", error=failed.error))
            return SendReport(outcomes={e.nudge_id: failed for e in emails}, calls=1)
        for e in emails:
            try:
                path = self._write(sender, e, batch_id)
            except ValueError as exc:  # e.g. a header that cannot be written
                outcomes[e.nudge_id] = Outcome("failed", error=str(exc))
                continue
            except OSError as exc:
                # Nothing was "sent": safe to try again later.
                outcomes[e.nudge_id] = Outcome("retry", error=str(exc), retry_after=60.0)
                continue
            outcomes[e.nudge_id] = Outcome("accepted", message_id=f"outbox-{batch_id}")
            logger.info("Nudge %s to %s: %r (%s)", e.nudge_id, e.to_email, e.subject, path.name)
        request_log.finished(emails, PostResult("accepted", message_id=f"outbox-{batch_id}"))
        return SendReport(outcomes=outcomes, calls=1)

    def _write(self, sender: Sender, e: OutgoingEmail, batch_id: str) -> Path:
        message = EmailMessage()
        message["From"] = _address(sender.email, sender.name)
        message["To"] = _address(e.to_email, e.to_name)
        reply_to = e.reply_to or sender.reply_to_email
        if reply_to:
            message["Reply-To"] = _address(reply_to, sender.reply_to_name)
        message["Subject"] = e.subject
        message["Date"] = formatdate(localtime=True)
        message["Message-ID"] = make_msgid(domain="outbox.invalid")
        if e.unsubscribe_url:
            message["List-Unsubscribe"] = f"<{e.unsubscribe_url}>"
            message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
        # What SendGrid's custom_args would carry.
        message["X-Nudge-Id"] = str(e.nudge_id)
        message.set_content(e.text or "")
        if e.html:
            message.add_alternative(e.html, subtype="html")
        path = self.directory / f"nudge-{e.nudge_id}-{batch_id[:12]}.eml"
        # Written aside, then renamed: a reader of the folder never sees half a file.
        partial = path.with_suffix(".eml.part")
        # Lines up to RFC 5322's 998: with the default 78, a long unsubscribe URL is written
        # as RFC 2047 encoded words, which mail clients do not read as List-Unsubscribe.
        partial.write_bytes(message.as_bytes(policy=_FILE_POLICY))
        partial.replace(path)
        return path


def _address(email: str, name: str) -> Address:
    username, _, domain = email.strip().rpartition("@")
    return Address(display_name=" ".join(name.split()), username=username, domain=domain)
