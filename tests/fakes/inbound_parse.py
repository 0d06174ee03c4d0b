"""A fake of SendGrid Inbound Parse: turns a real RFC 5322 message (Python's ``email``
package) into the ``multipart/form-data`` body Parse posts to a webhook, as SendGrid's
documentation describes it: ``headers`` (the raw header block), ``from``, ``to``, ``cc``,
``subject``, ``text``, ``html``, ``envelope`` (JSON), ``charsets`` (JSON), ``SPF``,
``dkim``, ``spam_score``, ``attachments`` (a count), ``attachment-info`` (JSON) and the
files ``attachment1..N``; or, in raw mode, the whole message in one ``email`` field.

And the messages real mail apps send in reply, for the tests: Outlook (quoted history
under a rule), Gmail ("On ... wrote:" and "> " quoting), the iPhone (a photo attached,
"Sent from my iPhone"), an out-of-office and a message with a forged From.
"""

from __future__ import annotations

import json
import uuid
from email import policy
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

from django.utils import timezone


def parse_post(message: EmailMessage, *, envelope_to: list[str] | None = None, raw: bool = False):
    """(content_type, body) of the POST that Parse would make for ``message``."""
    fields: list[tuple[str, str | tuple[str, str, bytes]]] = []
    if raw:
        fields.append(("email", message.as_bytes(policy=policy.SMTP).decode("ascii", "replace")))
    else:
        head = "".join(f"{k}: {v}\n" for k, v in message.items())
        text = message.get_body(preferencelist=("plain",))
        html = message.get_body(preferencelist=("html",))
        attachments = list(message.iter_attachments())
        info = {}
        files = []
        for n, part in enumerate(attachments, start=1):
            key = f"attachment{n}"
            info[key] = {
                "filename": part.get_filename() or key,
                "name": part.get_filename() or key,
                "type": part.get_content_type(),
            }
            if part.get("Content-ID"):
                info[key]["content-id"] = part["Content-ID"].strip("<>")
            files.append(
                (
                    key,
                    (
                        part.get_filename() or key,
                        part.get_content_type(),
                        part.get_payload(decode=True),
                    ),
                )
            )
        to = envelope_to or [a.addr_spec for a in message["To"].addresses]
        sender = message["From"].addresses[0].addr_spec
        fields += [
            ("headers", head),
            ("dkim", "{@school.example : pass}"),
            ("to", str(message["To"])),
            ("from", str(message["From"])),
            ("subject", str(message["Subject"] or "")),
            ("envelope", json.dumps({"to": to, "from": sender})),
            (
                "charsets",
                json.dumps(
                    {
                        "to": "UTF-8",
                        "from": "UTF-8",
                        "subject": "UTF-8",
                        "text": "utf-8",
                        "html": "utf-8",
                    }
                ),
            ),
            ("SPF", "pass"),
            ("spam_score", "0.1"),
            ("attachments", str(len(files))),
        ]
        if message["Cc"]:
            fields.append(("cc", str(message["Cc"])))
        if text is not None:
            fields.append(("text", text.get_content()))
        if html is not None:
            fields.append(("html", html.get_content()))
        if files:
            fields.append(("attachment-info", json.dumps(info)))
            fields += files
    return _multipart(fields)


def _multipart(fields) -> tuple[str, bytes]:
    boundary = f"xYzZY{uuid.uuid4().hex}"
    out = bytearray()
    for name, value in fields:
        out += f"--{boundary}\r\n".encode()
        if isinstance(value, tuple):
            filename, content_type, data = value
            out += (
                f'Content-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
                f"Content-Type: {content_type}\r\n\r\n"
            ).encode()
            out += data
        else:
            out += f'Content-Disposition: form-data; name="{name}"\r\n\r\n'.encode()
            out += value.encode("utf-8")
        out += b"\r\n"
    out += f"--{boundary}--\r\n".encode()
    return f"multipart/form-data; boundary={boundary}", bytes(out)


# --- Replies as mail apps write them -----------------------------------------------------


def _base(sender: str, to: str, subject: str, **headers: str) -> EmailMessage:
    m = EmailMessage()
    m["From"] = sender
    m["To"] = to
    m["Subject"] = subject
    m["Date"] = format_datetime(timezone.now())
    m["Message-ID"] = make_msgid(domain="mail.school.example")
    for name, value in headers.items():
        m[name.replace("_", "-")] = value
    return m


def outlook_reply(sender: str, to: str, subject: str, answer: str) -> EmailMessage:
    m = _base(sender, to, f"RE: {subject}", Thread_Topic=subject)
    m.set_content(
        f"{answer}\r\n\r\nKind regards,\r\nJo\r\n\r\n"
        "________________________________\r\n"
        f"From: Partnership CRM <{to}>\r\nSent: 02 December 2026 10:14\r\n"
        f"To: {sender}\r\nSubject: {subject}\r\n\r\nHello,\r\nThe original email.\r\n"
    )
    m.add_alternative(
        f"<html><body><p>{answer}</p><p>Kind regards,<br>Jo</p><hr>"
        "<p><b>From:</b> Partnership CRM</p><p>The original email.</p></body></html>",
        subtype="html",
    )
    return m


def gmail_reply(sender: str, to: str, subject: str, answer: str) -> EmailMessage:
    m = _base(sender, to, f"Re: {subject}", In_Reply_To="<original@crm.example>")
    m.set_content(
        f"{answer}\n\nOn Wed, 2 Dec 2026 at 10:14, Sam Supplier <{to}> wrote:\n\n"
        "> Hello,\n> The original email.\n>\n"
    )
    return m


def iphone_reply(sender: str, to: str, subject: str, answer: str, photo: bytes) -> EmailMessage:
    m = _base(sender, to, f"Re: {subject}")
    m.set_content(
        f"{answer}\n\nSent from my iPhone\n\n> On 2 Dec 2026, at 10:14, Partnership CRM "
        f"<{to}> wrote:\n>\n> The original email.\n"
    )
    m.add_attachment(photo, maintype="image", subtype="jpeg", filename="IMG_0042.jpeg")
    return m


def out_of_office(sender: str, to: str, subject: str) -> EmailMessage:
    m = _base(
        sender, to, f"Automatic reply: {subject}", Auto_Submitted="auto-replied", X_Autoreply="yes"
    )
    m.set_content("I am out of school until Monday 7 December with limited access to email.")
    return m
