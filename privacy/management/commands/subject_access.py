"""``manage.py subject_access --email <addr> [--output file]``: the operator's export of
everything held under an address, across schools (privacy/access.py)."""

from __future__ import annotations

import json
import time
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from privacy.access import subject_access_for_email
from privacy.erasure import Operator


class Command(BaseCommand):
    help = "Export everything held about a person (by email address) as JSON."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--email", required=True)
        parser.add_argument("--output", help="File to write (default: standard output).")

    def handle(self, *args: Any, **options: Any) -> None:
        started = time.monotonic()
        data = subject_access_for_email(by=Operator(), email=options["email"])
        text = json.dumps(data, indent=2, ensure_ascii=False)
        if options.get("output"):
            with open(options["output"], "w", encoding="utf-8") as fh:
                fh.write(text)
            rows = sum(len(v) for v in data.values() if isinstance(v, list))
            self.stderr.write(
                f"Wrote {rows} rows to {options['output']} in {time.monotonic() - started:.2f}s"
            )
        else:
            self.stdout.write(text)
