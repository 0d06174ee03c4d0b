from __future__ import annotations

from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from accounts.gias import GiasFileError, import_schools

MAX_SHOWN = 50


class Command(BaseCommand):
    help = (
        "Create or update schools and their trusts from a Get Information about Schools "
        "(GIAS) establishment CSV, matched by URN. A file that is not well-formed CSV "
        "(a row with the wrong number of fields, an unclosed quote) changes nothing; in a "
        "well-formed file, rows with a bad value are listed by line number and skipped."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument(
            "file",
            help="Path to the GIAS CSV (Windows-1252, or UTF-8 / UTF-16 with a byte-order mark).",
        )
        parser.add_argument(
            "--include-closed",
            action="store_true",
            help="Also create establishments whose status is Closed (by default only "
            "closed schools already in the CRM are updated).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        path = options["file"]
        try:
            result = import_schools(path, include_closed=options["include_closed"])
        except OSError as exc:
            raise CommandError(f"Cannot read {path}: {exc.strerror or exc}") from exc
        except GiasFileError as exc:
            shown = exc.problems[:MAX_SHOWN]
            for line, message in shown:
                self.stderr.write(f"  line {line}: {message}")
            if len(exc.problems) > len(shown):
                self.stderr.write(f"  … and {len(exc.problems) - len(shown)} more.")
            raise CommandError(f"{path}: {exc}") from exc

        self.stdout.write(
            f"Read {result.rows} rows from {path} ({result.encoding}).\n"
            f"Schools: {result.created} created, {result.updated} updated, "
            f"{result.unchanged} unchanged"
            + (f", {result.skipped_closed} closed skipped" if result.skipped_closed else "")
            + ".\n"
            f"Trusts: {result.trusts_created} created, {result.trusts_updated} updated."
        )
        if result.errors:
            self.stderr.write(
                f"{len(result.errors)} problem(s), by line in the file (a row with a problem "
                "is skipped unless its message says otherwise):"
            )
            for line, message in result.errors:
                self.stderr.write(f"  line {line}: {message}")
        else:
            self.stdout.write(self.style.SUCCESS("No errors."))
