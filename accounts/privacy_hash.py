"""The one way an email address is hashed for ``ErasedAddress``: HMAC-SHA256 of the
lower-cased, stripped address, keyed by ``PRIVACY_HASH_KEY`` (default: derived from
SECRET_KEY). A keyed hash, so the table cannot be reversed with a list of likely addresses
by someone who has only a database dump."""

from __future__ import annotations

import hashlib
import hmac

from django.conf import settings


def _key() -> bytes:
    configured = getattr(settings, "PRIVACY_HASH_KEY", "")
    if configured:
        return configured.encode()
    return hashlib.sha256(
        b"partnership-crm erased addresses:" + settings.SECRET_KEY.encode()
    ).digest()


def email_hash(email: str) -> str:
    return hmac.new(_key(), email.strip().lower().encode(), hashlib.sha256).hexdigest()


def erased(emails: set[str] | list[str]) -> set[str]:
    """The addresses among ``emails`` that belong to an erased person (one query)."""
    from .models import ErasedAddress

    by_hash = {email_hash(e): e for e in emails}
    if not by_hash:
        return set()
    found = ErasedAddress.objects.filter(email_hash__in=list(by_hash)).values_list(
        "email_hash", flat=True
    )
    return {by_hash[h] for h in found}
