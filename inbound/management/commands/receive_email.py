"""Hand a raw RFC 5322 message (a .eml file, or - for stdin) to the same code Inbound
Parse reaches: how to try replies by email on the embedded default, where no mail comes
in. Reply to a message in var/outbox with your mail app, save the reply as .eml, and:

    python manage.py receive_email reply.eml
"""

from __future__ import annotations

import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from inbound.parse import Malformed, from_mime
from inbound.services import receive


class Command(BaseCommand):
    help = "Receive one email (a .eml file, or - for stdin) as if Inbound Parse posted it."

    def add_arguments(self, parser) -> None:
        parser.add_argument("path", help="the .eml file, or - for stdin")

    def handle(self, *args, path: str, **options) -> None:
        try:
            raw = sys.stdin.buffer.read() if path == "-" else Path(path).read_bytes()
        except OSError as exc:
            raise CommandError(f"cannot read {path}: {exc}") from exc
        try:
            message = from_mime(raw)
        except Malformed as exc:
            raise CommandError(f"not an email: {exc}") from exc
        outcome = receive(message)
        line = f"{outcome.status}" + (f": {outcome.reason}" if outcome.reason else "")
        if outcome.status in ("accepted", "auto_reply", "duplicate"):
            self.stdout.write(self.style.SUCCESS(line))
        else:
            raise CommandError(line)
