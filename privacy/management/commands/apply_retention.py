"""``manage.py apply_retention [--dry-run]``: delete or blank what is past its retention
(privacy/retention.py), or with ``--dry-run`` only say how many rows are due per kind."""

from __future__ import annotations

import time
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from privacy import retention


class Command(BaseCommand):
    help = "Delete or blank personal data past its retention period (RETENTION_DAYS)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--dry-run", action="store_true", help="Only print what is due, per kind."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        started = time.monotonic()
        if options["dry_run"]:
            counts = retention.due_counts()
            verb = "due"
        else:
            counts = retention.apply_retention()
            verb = "done"
        for kind in retention.KINDS:
            days = settings.RETENTION_DAYS[kind]
            self.stdout.write(f"{kind:<18} {counts[kind]:>9} {verb}  (after {days} days)")
        self.stdout.write(
            f"{sum(counts.values())} rows {verb} in {time.monotonic() - started:.2f}s"
        )
