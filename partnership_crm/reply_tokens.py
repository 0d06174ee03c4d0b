"""Reply addresses: ``reply+<token>@<INBOUND_DOMAIN>``, one per email and recipient.

The token names what the email was about (a ticket, or a nudge), who it was sent to (a
user, or a contact) and the day it was issued, sealed with an HMAC of the secret key: it
cannot be guessed or moved to another ticket or person, and it expires after
INBOUND_REPLY_TOKEN_DAYS. It fits an address's local part (64 characters at most) and
survives mail systems that lower-case it. A leaf module: tickets and nudges make
addresses with it, the inbound app reads them.
"""

from __future__ import annotations

import base64
import hmac
import re
from dataclasses import dataclass
from datetime import date

from django.conf import settings
from django.utils import timezone
from django.utils.crypto import salted_hmac
from django.utils.http import base36_to_int, int_to_base36

KINDS = {"t": "ticket", "n": "nudge"}
_SALT = "partnership_crm.reply_tokens"
_EPOCH = date(2020, 1, 1)
_TOKEN = re.compile(r"^([tn])([0-9a-z]+)\.([0-9a-z]+)\.([0-9a-z]+)\.([a-z2-7]{24})$")


@dataclass(frozen=True)
class ReplyToken:
    kind: str  # "ticket" or "nudge"
    object_id: int
    recipient_id: int  # a user for tickets, a contact for nudges
    issued: date


class BadToken(Exception):
    """Why an address does not let a message in (the reason is logged, never shown)."""


def _mac(body: str) -> str:
    digest = salted_hmac(_SALT, body, algorithm="sha256").digest()[:15]
    return base64.b32encode(digest).decode().lower()


def reply_address(
    kind: str, object_id: int, recipient_id: int, *, today: date | None = None
) -> str:
    """The Reply-To for an email about ``kind`` ("ticket" or "nudge") to one recipient;
    "" when replies by email are off (no INBOUND_DOMAIN)."""
    if not settings.INBOUND_DOMAIN:
        return ""
    letter = {v: k for k, v in KINDS.items()}[kind]
    day = ((today or timezone.localdate()) - _EPOCH).days
    body = f"{letter}{int_to_base36(object_id)}.{int_to_base36(recipient_id)}.{int_to_base36(day)}"
    return f"reply+{body}.{_mac(body)}@{settings.INBOUND_DOMAIN}"


def read_reply_address(address: str, *, today: date | None = None) -> ReplyToken:
    """The token of a reply+ address, or BadToken saying why it is refused."""
    local, _, domain = address.strip().lower().rpartition("@")
    if settings.INBOUND_DOMAIN and domain != settings.INBOUND_DOMAIN.lower():
        raise BadToken(f"not our inbound domain: {domain!r}")
    if not local.startswith("reply+"):
        raise BadToken("not a reply address")
    match = _TOKEN.match(local.removeprefix("reply+"))
    if not match:
        raise BadToken("malformed token")
    letter, obj, rcpt, day, mac = match.groups()
    body = f"{letter}{obj}.{rcpt}.{day}"
    if not hmac.compare_digest(mac, _mac(body)):
        raise BadToken("forged token (bad signature)")
    issued = _EPOCH.fromordinal(_EPOCH.toordinal() + base36_to_int(day))
    age = ((today or timezone.localdate()) - issued).days
    if age > settings.INBOUND_REPLY_TOKEN_DAYS:
        raise BadToken(f"expired token (issued {issued}, {age} days ago)")
    return ReplyToken(KINDS[letter], base36_to_int(obj), base36_to_int(rcpt), issued)
