"""A Django email backend for ordinary mail (ticket notifications, password resets) through
SendGrid's SDK, with the same timeout and retry policy as the nudges (nudges/sendgrid.py).

EMAIL_BACKEND = "nudges.backends.SendGridEmailBackend" (the default when SENDGRID_API_KEY
is set). One Mail Send request per message; 429, 5xx and refused connections are retried,
a timeout after the request was sent is not (it may have gone): it raises
SendGridSendError(outcome="unknown") so that the caller does not blindly resend.
"""

from __future__ import annotations

import base64
import mimetypes
import time
from collections.abc import Callable, Sequence
from email.mime.base import MIMEBase
from email.utils import getaddresses, parseaddr
from typing import Any

from django.conf import settings
from django.core.mail.backends.base import BaseEmailBackend
from django.core.mail.message import EmailMessage

from .sendgrid import PostResult, SendGridTransport

# SendGrid refuses these in `headers`; the ones that matter travel in their own fields.
RESERVED_HEADERS = frozenset(
    h.lower()
    for h in (
        "x-sg-id",
        "x-sg-eid",
        "received",
        "dkim-signature",
        "Content-Type",
        "Content-Transfer-Encoding",
        "To",
        "From",
        "Subject",
        "Reply-To",
        "CC",
        "BCC",
        "MIME-Version",
    )
)


class SendGridSendError(Exception):
    """SendGrid did not take the message. outcome: "failed" (refused for good), "retry"
    (certainly not sent; try later) or "unknown" (may have been sent)."""

    def __init__(self, message: str, *, outcome: str, status: int | None = None) -> None:
        super().__init__(message)
        self.outcome = outcome
        self.status = status


class SendGridEmailBackend(BaseEmailBackend):
    def __init__(
        self,
        fail_silently: bool = False,
        *,
        api_key: str | None = None,
        host: str | None = None,
        timeout: float | None = None,
        max_attempts: int = 3,
        max_backoff: float = 10.0,
        sleep: Callable[[float], None] = time.sleep,
        **kwargs: Any,
    ) -> None:
        super().__init__(fail_silently=fail_silently, **kwargs)
        self.transport = SendGridTransport(
            api_key=api_key or settings.SENDGRID_API_KEY,
            host=host or settings.SENDGRID_API_HOST,
            timeout=float(timeout or settings.SENDGRID_TIMEOUT),
            # Fewer, shorter retries than a nudge batch: someone may be waiting on a page.
            max_attempts=max_attempts,
            max_backoff=max_backoff,
            sleep=sleep,
        )

    def send_messages(self, email_messages: Sequence[EmailMessage]) -> int:
        if not email_messages:
            return 0
        session = self.transport.session()
        sent = 0
        for message in email_messages:
            try:
                payload = message_payload(message)
                if payload is None:
                    continue  # no recipients: nothing to do, as Django's SMTP backend
                result = session.post(payload)
                if result.kind != "accepted":
                    raise _error(result)
                sent += 1
            except Exception:
                if not self.fail_silently:
                    raise
        return sent


def _error(result: PostResult) -> SendGridSendError:
    outcome = "failed" if result.kind == "rejected" else result.kind
    return SendGridSendError(
        result.error or f"SendGrid answered {result.status}", outcome=outcome, status=result.status
    )


def _address(raw: str) -> dict[str, str] | None:
    name, address = parseaddr(raw)
    if not address:
        return None
    out = {"email": address}
    if name:
        out["name"] = name
    return out


def _addresses(raw: Sequence[Any]) -> list[dict[str, str]]:
    out = []
    for name, address in getaddresses([str(a) for a in raw if a]):
        if address:
            out.append({"email": address, "name": name} if name else {"email": address})
    return out


def message_payload(message: EmailMessage) -> dict[str, Any] | None:
    """The v3 Mail Send body for a Django EmailMessage (or EmailMultiAlternatives)."""
    headers = dict(message.extra_headers)
    from_raw = headers.pop("From", None) or message.from_email or settings.DEFAULT_FROM_EMAIL
    sender = _address(str(from_raw))
    if sender is None:
        raise ValueError(f"no sender address in {from_raw!r}")

    # SendGrid refuses an address that appears twice anywhere in the personalizations.
    seen: set[str] = set()
    lists: dict[str, list[dict[str, str]]] = {}
    for kind, raw in (("to", message.to), ("cc", message.cc), ("bcc", message.bcc)):
        for entry in _addresses(raw):
            if entry["email"].lower() in seen:
                continue
            seen.add(entry["email"].lower())
            lists.setdefault(kind, []).append(entry)
    if not seen:
        return None
    personalization: dict[str, Any] = dict(lists)
    if "to" not in personalization:
        # SendGrid needs a `to`: a bcc-only message goes to its first bcc.
        first_kind = "cc" if "cc" in personalization else "bcc"
        personalization["to"] = [personalization[first_kind].pop(0)]
        if not personalization[first_kind]:
            del personalization[first_kind]

    payload: dict[str, Any] = {
        "personalizations": [personalization],
        "from": sender,
        # SendGrid requires a non-empty subject; Django allows an empty one.
        "subject": " ".join(str(message.subject or "").split()) or "(no subject)",
        "content": _content(message),
    }
    header_reply_to = headers.pop("Reply-To", None)
    reply_to = _addresses(message.reply_to) or _addresses([header_reply_to or ""])
    if len(reply_to) == 1:
        payload["reply_to"] = reply_to[0]
    elif reply_to:
        payload["reply_to_list"] = reply_to
    extra = {str(k): str(v) for k, v in headers.items() if str(k).lower() not in RESERVED_HEADERS}
    if extra:
        payload["headers"] = extra
    attachments = [_attachment(a) for a in message.attachments]
    if attachments:
        payload["attachments"] = attachments
    return payload


def _content(message: EmailMessage) -> list[dict[str, str]]:
    parts: dict[str, str] = {}
    main_type = "text/html" if message.content_subtype == "html" else "text/plain"
    if message.body:
        parts[main_type] = str(message.body)
    for alternative in getattr(message, "alternatives", None) or []:
        content, mimetype = alternative[0], alternative[1]
        if content and mimetype not in parts:
            parts[mimetype] = content if isinstance(content, str) else content.decode()
    if not parts:
        parts["text/plain"] = " "  # SendGrid refuses an empty content value
    # SendGrid wants text/plain first, then text/html, then anything else.
    order = {"text/plain": 0, "text/html": 1}
    return [
        {"type": t, "value": v}
        for t, v in sorted(parts.items(), key=lambda item: order.get(item[0], 2))
    ]


def _attachment(attachment: Any) -> dict[str, str]:
    if isinstance(attachment, MIMEBase):
        filename = attachment.get_filename() or "attachment"
        content = attachment.get_payload(decode=True) or b""
        mimetype = attachment.get_content_type()
    else:
        filename, content, mimetype = attachment[0], attachment[1], attachment[2]
        filename = filename or "attachment"
        mimetype = mimetype or mimetypes.guess_type(filename)[0] or "application/octet-stream"
        if isinstance(content, str):
            content = content.encode("utf-8")
    return {
        "content": base64.b64encode(content).decode("ascii"),
        "filename": filename,
        "type": mimetype,
        "disposition": "attachment",
    }
