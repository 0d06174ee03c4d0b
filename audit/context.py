"""Which channel a change comes through, bound for the current request, task or block.

``recording("inbound", via="inbound-email")`` marks every history row written inside the
block. Outside any binding the process default applies: ``("command", <name>)`` for a
``manage.py`` command (other than runserver), else ``("system", "")``.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar, Token

_binding: ContextVar[tuple[str, str] | None] = ContextVar("audit_channel", default=None)

# Commands whose own work is a server: their changes come through requests or tasks.
_SERVER_COMMANDS = {"runserver", "test", "testserver"}


def _process_default(argv: list[str]) -> tuple[str, str]:
    if len(argv) > 1 and argv[0].endswith("manage.py") and argv[1] not in _SERVER_COMMANDS:
        return ("command", argv[1][:200])
    return ("system", "")


PROCESS_DEFAULT = _process_default(sys.argv)


def current() -> tuple[str, str]:
    """The (channel, via) a history row written now records."""
    return _binding.get() or PROCESS_DEFAULT


def bind(channel: str, via: str = "") -> Token:
    return _binding.set((channel, via[:200]))


def unbind(token: Token) -> None:
    _binding.reset(token)


@contextmanager
def recording(channel: str, via: str = "") -> Iterator[None]:
    token = bind(channel, via)
    try:
        yield
    finally:
        unbind(token)
