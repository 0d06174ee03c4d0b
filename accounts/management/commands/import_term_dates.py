from __future__ import annotations

from argparse import ArgumentParser
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from accounts.calendars import (
    TermDatesFileError,
    TermDatesResult,
    import_term_dates_csv,
    import_term_dates_ics,
)

ICS_SUFFIXES = {".ics", ".ical", ".icalendar"}


class Command(BaseCommand):
    help = (
        "Import school term dates and closure days (INSET days, holidays) from a CSV or "
        "an iCalendar (.ics) file. The CSV names a school by urn or a local_authority "
        "per row; an .ics file is for the one school given by --school (or every school "
        "of --local-authority). Bad rows are listed by line number; good rows are "
        "imported regardless."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("file", help="A .csv or .ics file.")
        parser.add_argument(
            "--school",
            metavar="URN",
            default="",
            help="The school an .ics file is for; for a CSV, the school of rows that "
            "give neither urn nor local_authority.",
        )
        parser.add_argument(
            "--local-authority",
            metavar="NAME",
            default="",
            help="For an .ics file published by a local authority: apply it to every "
            "school of that LA.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        path = Path(options["file"])
        suffix = path.suffix.lower()
        try:
            if suffix in ICS_SUFFIXES:
                result = import_term_dates_ics(
                    path,
                    school_urn=options["school"],
                    local_authority=options["local_authority"],
                )
            elif suffix == ".csv":
                if options["local_authority"]:
                    raise CommandError(
                        "--local-authority is for .ics files; a CSV names it per row."
                    )
                result = import_term_dates_csv(path, school_urn=options["school"])
            else:
                raise CommandError(f"{path}: expected a .csv or .ics file.")
        except OSError as exc:
            raise CommandError(f"Cannot read {path}: {exc.strerror or exc}") from exc
        except TermDatesFileError as exc:
            raise CommandError(f"{path}: {exc}") from exc
        self._report(path, result)

    def _report(self, path: Path, result: TermDatesResult) -> None:
        self.stdout.write(
            f"Read {result.rows} rows from {path} for {result.schools} schools.\n"
            f"Terms: {result.terms_created} created, {result.terms_updated} updated, "
            f"{result.terms_unchanged} unchanged.\n"
            f"Closure days: {result.closures_created} created, "
            f"{result.closures_updated} updated, {result.closures_unchanged} unchanged."
        )
        for warning in result.warnings:
            self.stderr.write(f"Warning: {warning}")
        if result.errors:
            self.stderr.write(f"{len(result.errors)} rows not imported:")
            for line, message in result.errors:
                self.stderr.write(f"  line {line}: {message}")
        else:
            self.stdout.write(self.style.SUCCESS("No errors."))
