"""Database helpers the services share."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction


def _constraint_name(exc: IntegrityError) -> str | None:
    """The constraint PostgreSQL names for the violation (None elsewhere, e.g. SQLite)."""
    diag = getattr(exc.__cause__, "diag", None)
    return getattr(diag, "constraint_name", None)


@contextmanager
def unique_or_invalid(**messages: tuple[str, str]) -> Iterator[None]:
    """Run a write in a savepoint; a unique constraint it breaks is a ValidationError (400).

    ``messages`` maps a constraint's name to (field, message). A service checks uniqueness
    first (full_clean does), but two requests can pass that check at the same moment: the
    second then breaks the constraint on write. The savepoint keeps the caller's
    transaction usable; a violation of any other constraint is not the client's and
    propagates. On a database that names no constraint (SQLite), a single named
    constraint is taken to be the one broken.
    """
    try:
        with transaction.atomic():
            yield
    except IntegrityError as exc:
        name = _constraint_name(exc)
        if name is None and len(messages) == 1:
            name = next(iter(messages))
        if name not in messages:
            raise
        field, message = messages[name]
        raise ValidationError({field: message}) from exc
