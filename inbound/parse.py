"""What SendGrid's Inbound Parse posts, read into one shape.

Parse posts ``multipart/form-data``: either the parsed fields (``headers`` as a raw header
block, ``from``, ``to``, ``cc``, ``subject``, ``text``, ``html``, ``envelope`` as JSON,
``charsets``, ``attachments`` with files ``attachment1..N`` and ``attachment-info``), or,
with "POST the raw, full MIME message" on, a single ``email`` field, which Python's email
package reads (charsets included). Both become an ``InboundMessage``.
"""

from __future__ import annotations

import hashlib
import html as html_lib
import json
import re
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage, Message
from email.parser import BytesParser, HeaderParser
from email.utils import getaddresses, parseaddr

from django.http import QueryDict
from django.utils.datastructures import MultiValueDict
from django.utils.html import strip_tags

# Inline images smaller than this with a Content-ID are signature logos, not attachments.
SIGNATURE_IMAGE_BYTES = 10_000


@dataclass
class InboundFile:
    name: str
    content: bytes
    content_type: str = ""


@dataclass
class InboundMessage:
    sender: str  # the From address, lower-case
    recipients: list[str]  # envelope first, then To and Cc, lower-case
    subject: str
    message_id: str
    headers: Message
    text: str
    html: str = ""
    files: list[InboundFile] = field(default_factory=list)

    @property
    def dedup_key(self) -> str:
        if self.message_id:
            return self.message_id[:255]
        digest = hashlib.sha256(
            "\0".join([self.sender, self.subject, self.text, self.html]).encode()
        ).hexdigest()
        return f"sha256:{digest}"

    @property
    def plain_text(self) -> str:
        if self.text.strip():
            return self.text
        # HTML-only mail: block ends become line breaks, then tags go.
        body = re.sub(r"(?i)<br\s*/?>|</(p|div|li|tr|h\d)>", "\n", self.html)
        return html_lib.unescape(strip_tags(body))


class Malformed(ValueError):
    """The post is not an Inbound Parse message at all."""


def _addresses(*values: str) -> list[str]:
    return [a.lower() for _, a in getaddresses([v for v in values if v]) if a]


def from_post(post: QueryDict, files: MultiValueDict) -> InboundMessage:
    if post.get("email"):
        return from_mime(post["email"].encode("utf-8", "surrogateescape"))
    if not post.get("from"):
        raise Malformed("no 'from' field")
    headers = HeaderParser(policy=policy.default).parsestr(post.get("headers", ""))
    try:
        envelope = json.loads(post.get("envelope") or "{}")
    except ValueError:
        envelope = {}
    envelope_to = (envelope.get("to") or []) if isinstance(envelope, dict) else []
    try:
        info = json.loads(post.get("attachment-info") or "{}")
    except ValueError:
        info = {}
    attached = []
    for key in sorted(files, key=lambda k: int(re.sub(r"\D", "", k) or 0)):
        upload = files[key]
        meta = info.get(key, {}) if isinstance(info, dict) else {}
        content = upload.read()
        if meta.get("content-id") and len(content) < SIGNATURE_IMAGE_BYTES:
            continue
        name = meta.get("filename") or upload.name or key
        attached.append(InboundFile(name, content, meta.get("type") or upload.content_type))
    return InboundMessage(
        sender=parseaddr(post["from"])[1].lower(),
        recipients=_addresses(*envelope_to, post.get("to", ""), post.get("cc", "")),
        subject=post.get("subject", ""),
        message_id=(headers.get("Message-ID") or "").strip(),
        headers=headers,
        text=post.get("text", ""),
        html=post.get("html", ""),
        files=attached,
    )


def from_mime(raw: bytes) -> InboundMessage:
    message: EmailMessage = BytesParser(policy=policy.default).parsebytes(raw)  # type: ignore[assignment]
    if not message.get("From"):
        raise Malformed("no From header")
    text_part = message.get_body(preferencelist=("plain",))
    html_part = message.get_body(preferencelist=("html",))
    attached = []
    for part in message.iter_attachments():
        content = part.get_payload(decode=True) or b""
        if part.get("Content-ID") and len(content) < SIGNATURE_IMAGE_BYTES:
            continue
        name = part.get_filename() or "attachment"
        attached.append(InboundFile(name, content, part.get_content_type()))
    return InboundMessage(
        sender=parseaddr(str(message["From"]))[1].lower(),
        recipients=_addresses(
            str(message.get("Delivered-To", "")), str(message["To"] or ""), str(message["Cc"] or "")
        ),
        subject=str(message.get("Subject", "")),
        message_id=str(message.get("Message-ID", "")).strip(),
        headers=message,
        text=text_part.get_content() if text_part else "",
        html=html_part.get_content() if html_part else "",
        files=attached,
    )


def is_auto_reply(message: InboundMessage) -> str:
    """Why this looks like a machine's answer (out of office, list mail), else ""."""
    h = message.headers
    auto = (h.get("Auto-Submitted") or "").strip().lower()
    if auto and auto != "no":
        return f"Auto-Submitted: {auto}"
    for name in ("X-Autoreply", "X-Autorespond"):
        if h.get(name):
            return f"{name} header"
    precedence = (h.get("Precedence") or "").strip().lower()
    if precedence in ("bulk", "auto_reply", "junk", "list"):
        return f"Precedence: {precedence}"
    subject = message.subject.strip().lower()
    for start in ("out of office", "automatic reply", "auto-reply", "autoreply", "auto:"):
        if subject.startswith(start):
            return f"subject says {start!r}"
    return ""
