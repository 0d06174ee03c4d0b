"""Schools' working calendars from the database, and the term-date importers.

``accounts.working_time`` is the pure clock; this module is the ORM side: it reads a
school's hours, timezone, closure days and terms into a ``WorkingCalendar``, and loads
term dates and closure days from a CSV (per school or per local authority, since
English term dates are usually set by the LA) or from an iCalendar file.
"""

from __future__ import annotations

import csv
import io
import logging
import os
import re
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import IO, Any

import icalendar
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import QuerySet
from django.db.models.functions import Lower

from .models import ClosureDay, Organisation, Term
from .scoping import scope_for
from .working_time import ENGLAND, NATION_SUBDIVS, WorkingCalendar, zone

logger = logging.getLogger(__name__)

# --- Calendars ---------------------------------------------------------------------------


def _build(
    tz_name: str,
    nation: str,
    day_starts: time,
    day_ends: time,
    closures: Iterable[date],
    terms: Iterable[tuple[date, date]],
) -> WorkingCalendar:
    if nation not in NATION_SUBDIVS:
        # Not a value the model allows (a raw UPDATE, an old row): it must not take down
        # the SLA clock or the dispatcher; England's holidays are the closest guess.
        logger.warning("Unknown nation %r; using England's bank holidays", nation)
        nation = ENGLAND
    return WorkingCalendar(
        tz=zone(tz_name),
        nation=nation,
        day_starts=day_starts,
        day_ends=day_ends,
        closure_dates=frozenset(closures),
        terms=tuple(terms),
    )


def calendar_for_school(school: Organisation) -> WorkingCalendar:
    """The school's working calendar: at most two queries (closure days, terms), none
    for whichever of ``closure_days`` / ``terms`` was prefetched."""
    prefetched: dict[str, Any] = getattr(school, "_prefetched_objects_cache", {})
    if "closure_days" in prefetched:
        closures: Iterable[date] = [c.date for c in school.closure_days.all()]
    else:
        closures = ClosureDay.objects.filter(school=school).values_list("date", flat=True)
    if "terms" in prefetched:
        terms: Iterable[tuple[date, date]] = [(t.starts_on, t.ends_on) for t in school.terms.all()]
    else:
        terms = Term.objects.filter(school=school).values_list("starts_on", "ends_on")
    return _build(
        school.timezone, school.nation, school.day_starts, school.day_ends, closures, terms
    )


def calendars_for_schools(
    school_ids: Iterable[int] | QuerySet[Organisation],
) -> dict[int, WorkingCalendar]:
    """Calendars keyed by school id, in three queries however many schools.

    ``school_ids`` may be ids or a queryset of organisations; a queryset is used as a
    subquery, which also avoids a database's limit on the number of bound parameters
    for a long list. Unknown ids are left out of the result.
    """
    if isinstance(school_ids, QuerySet):
        ids: Any = school_ids.values("pk")
    else:
        ids = list(dict.fromkeys(school_ids))
        if not ids:
            return {}
    closures: dict[int, list[date]] = defaultdict(list)
    for school_id, day in ClosureDay.objects.filter(school_id__in=ids).values_list(
        "school_id", "date"
    ):
        closures[school_id].append(day)
    terms: dict[int, list[tuple[date, date]]] = defaultdict(list)
    for school_id, starts_on, ends_on in Term.objects.filter(school_id__in=ids).values_list(
        "school_id", "starts_on", "ends_on"
    ):
        terms[school_id].append((starts_on, ends_on))
    schools = Organisation.objects.filter(pk__in=ids).values_list(
        "pk", "timezone", "nation", "day_starts", "day_ends"
    )
    return {
        pk: _build(tz_name, nation, starts, ends, closures.get(pk, ()), terms.get(pk, ()))
        for pk, tz_name, nation, starts, ends in schools
    }


# --- Importing term dates ----------------------------------------------------------------

Source = str | os.PathLike[str] | IO[str] | IO[bytes]

KINDS = ("term", "inset", "holiday", "other")
# A closure "range" longer than this is almost certainly a typo in a year.
MAX_CLOSURE_DAYS = 120
_MAX_NAME = Term._meta.get_field("name").max_length or 50
_MAX_NOTE = ClosureDay._meta.get_field("note").max_length or 200


class TermDatesFileError(Exception):
    """The file as a whole cannot be imported (unreadable, no header, wrong columns)."""


@dataclass
class TermDatesResult:
    rows: int = 0
    schools: int = 0
    terms_created: int = 0
    terms_updated: int = 0
    terms_unchanged: int = 0
    closures_created: int = 0
    closures_updated: int = 0
    closures_unchanged: int = 0
    errors: list[tuple[int, str]] = field(default_factory=list)
    # Not errors (the rows went in), but worth a look: e.g. terms that now overlap.
    warnings: list[str] = field(default_factory=list)
    # What was (or, in a dry run, would be) added or changed, one sentence each.
    changes: list[str] = field(default_factory=list)


class _DryRun(Exception):
    """Raised inside the import's transaction to undo a dry run."""


def _day(d: date) -> str:
    return f"{d:%a} {d.day} {d:%b %Y}"


@dataclass(frozen=True)
class _TermSpec:
    school_id: int
    name: str
    starts_on: date
    ends_on: date


@dataclass(frozen=True)
class _ClosureSpec:
    school_id: int
    date: date
    kind: str
    note: str


@dataclass
class _Target:
    """Who a row applies to: one school by URN, or every school of a local authority."""

    urn: str = ""
    local_authority: str = ""


@dataclass
class _Entry:
    line: int
    target: _Target
    kind: str  # one of KINDS
    name: str
    first: date
    last: date  # inclusive


def _read_bytes(source: Source) -> bytes | str:
    if isinstance(source, str | os.PathLike):
        with open(source, "rb") as handle:
            return handle.read()
    return source.read()


def _decode(data: bytes | str) -> str:
    if isinstance(data, str):
        return data
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        # Spreadsheets saved as "CSV" on Windows are cp1252; term dates are tiny files.
        return data.decode("cp1252", errors="replace")


def default_term_name(starts_on: date) -> str:
    """A name ("Autumn 2026") for a term given without one, from the month it starts."""
    season = "Autumn" if starts_on.month >= 8 else "Spring" if starts_on.month <= 3 else "Summer"
    return f"{season} {starts_on.year}"


def _records(text: str) -> Iterator[tuple[int, list[str]]]:
    """CSV records with the line each starts on (a quoted field may span lines)."""
    reader = csv.reader(io.StringIO(text, newline=""))
    ended = 0
    while True:
        try:
            record = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise TermDatesFileError(f"line {ended + 1}: unreadable CSV: {exc}") from None
        start, ended = ended + 1, reader.line_num
        if any(cell.strip() for cell in record):
            yield start, record


def _parse_date(value: str, column: str) -> date:
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        raise ValueError(f"{column} {value.strip()!r} is not a date like 2026-09-03") from None


def _parse_csv(text: str, default_urn: str, result: TermDatesResult) -> list[_Entry]:
    records = _records(text)
    try:
        _, header = next(records)
    except StopIteration:
        raise TermDatesFileError("The file is empty: expected a header line.") from None
    # "Local Authority", "local-authority" and "local_authority" all name the same column.
    index = {re.sub(r"[\s-]+", "_", name.strip().lower()): i for i, name in enumerate(header)}
    missing = [c for c in ("kind", "start") if c not in index]
    if missing:
        raise TermDatesFileError(f"Missing column(s): {', '.join(missing)}.")
    if "urn" not in index and "local_authority" not in index and not default_urn:
        raise TermDatesFileError(
            "Need a urn or local_authority column (or --school for a single school)."
        )

    def cell(record: list[str], column: str) -> str:
        i = index.get(column)
        return record[i].strip() if i is not None and i < len(record) else ""

    entries = []
    for line, record in records:
        result.rows += 1
        try:
            target = _Target(
                urn=cell(record, "urn"), local_authority=cell(record, "local_authority")
            )
            if not target.urn and not target.local_authority:
                if not default_urn:
                    raise ValueError("no urn or local_authority")
                target.urn = default_urn
            kind = cell(record, "kind").lower()
            if kind not in KINDS:
                raise ValueError(f"kind {kind!r} is not one of {', '.join(KINDS)}")
            if not cell(record, "start"):
                raise ValueError("start is empty")
            first = _parse_date(cell(record, "start"), "start")
            end = cell(record, "end")
            if kind == "term" and not end:
                raise ValueError("a term needs an end date")
            last = _parse_date(end, "end") if end else first
            if last < first:
                raise ValueError(f"end {last} is before start {first}")
            name = cell(record, "name") or cell(record, "note")
            entries.append(_Entry(line, target, kind, name, first, last))
        except ValueError as exc:
            result.errors.append((line, str(exc)))
    return entries


def _resolve_targets(
    entries: list[_Entry], result: TermDatesResult, allowed: frozenset[int] | None = None
) -> list[tuple[_Entry, list[int]]]:
    """The school ids each entry applies to, in two queries; unmatched rows are errors.
    With ``allowed`` (a file uploaded on a school's page), a row applies only to those
    schools: one naming another school is an error, as if that school did not exist."""
    urns = {e.target.urn for e in entries if e.target.urn}
    las = {e.target.local_authority.lower() for e in entries if not e.target.urn}
    schools = Organisation.objects.filter(kind=Organisation.Kind.SCHOOL)
    if allowed is not None:
        schools = schools.filter(pk__in=allowed)
    by_urn = dict(schools.filter(urn__in=urns).values_list("urn", "pk")) if urns else {}
    by_la: dict[str, list[int]] = defaultdict(list)
    if las:
        for la, pk in (
            schools.annotate(la=Lower("local_authority")).filter(la__in=las).values_list("la", "pk")
        ):
            by_la[la].append(pk)
    resolved = []
    for entry in entries:
        if entry.target.urn:
            pk = by_urn.get(entry.target.urn)
            if pk is None:
                result.errors.append(
                    (
                        entry.line,
                        f"no school with URN {entry.target.urn}"
                        + (" among yours" if allowed is not None else ""),
                    )
                )
                continue
            resolved.append((entry, [pk]))
        else:
            pks = by_la.get(entry.target.local_authority.lower())
            if not pks:
                result.errors.append(
                    (
                        entry.line,
                        f"no schools in local authority {entry.target.local_authority!r}"
                        + (" among yours" if allowed is not None else ""),
                    )
                )
                continue
            resolved.append((entry, pks))
    return resolved


def _school_ids(target: _Target) -> list[int]:
    schools = Organisation.objects.filter(kind=Organisation.Kind.SCHOOL)
    if target.urn:
        schools = schools.filter(urn=target.urn)
    else:
        schools = schools.annotate(la=Lower("local_authority")).filter(
            la=target.local_authority.lower()
        )
    return list(schools.values_list("pk", flat=True))


def _expand(
    resolved: list[tuple[_Entry, list[int]]], result: TermDatesResult
) -> tuple[list[_TermSpec], list[_ClosureSpec]]:
    terms: list[_TermSpec] = []
    closures: list[_ClosureSpec] = []
    for entry, school_ids in resolved:
        if entry.kind == "term":
            name = (entry.name or default_term_name(entry.first))[:_MAX_NAME]
            terms += [_TermSpec(pk, name, entry.first, entry.last) for pk in school_ids]
            continue
        days = (entry.last - entry.first).days + 1
        if days > MAX_CLOSURE_DAYS:
            result.errors.append(
                (entry.line, f"a closure of {days} days is too long (at most {MAX_CLOSURE_DAYS})")
            )
            continue
        note = entry.name[:_MAX_NOTE]
        for offset in range(days):
            day = entry.first + timedelta(days=offset)
            closures += [_ClosureSpec(pk, day, entry.kind, note) for pk in school_ids]
    return terms, closures


def _write(terms: list[_TermSpec], closures: list[_ClosureSpec], result: TermDatesResult) -> None:
    """Upsert terms by (school, starts_on) and closure days by (school, date), with a
    fixed number of queries. Within one file a later row wins over an earlier one."""
    term_by_key = {(t.school_id, t.starts_on): t for t in terms}
    closure_by_key = {(c.school_id, c.date): c for c in closures}
    school_ids = {k[0] for k in term_by_key} | {k[0] for k in closure_by_key}
    result.schools = len(school_ids)
    with transaction.atomic():
        if term_by_key:
            existing_terms = {
                (t.school_id, t.starts_on): t
                for t in Term.objects.filter(
                    school_id__in={k[0] for k in term_by_key},
                    starts_on__in={k[1] for k in term_by_key},
                )
            }
            new_terms, changed_terms = [], []
            for key, spec in term_by_key.items():
                row = existing_terms.get(key)
                if row is None:
                    result.changes.append(
                        f"New term {spec.name}: {_day(spec.starts_on)} to {_day(spec.ends_on)}"
                    )
                    new_terms.append(
                        Term(
                            school_id=spec.school_id,
                            name=spec.name,
                            starts_on=spec.starts_on,
                            ends_on=spec.ends_on,
                        )
                    )
                elif (row.name, row.ends_on) != (spec.name, spec.ends_on):
                    result.changes.append(
                        f"Term from {_day(spec.starts_on)}: {row.name} to {_day(row.ends_on)} "
                        f"becomes {spec.name} to {_day(spec.ends_on)}"
                    )
                    row.name, row.ends_on = spec.name, spec.ends_on
                    changed_terms.append(row)
                else:
                    result.terms_unchanged += 1
            Term.objects.bulk_create(new_terms, batch_size=500)
            Term.objects.bulk_update(changed_terms, ["name", "ends_on"], batch_size=200)
            result.terms_created += len(new_terms)
            result.terms_updated += len(changed_terms)
        if closure_by_key:
            existing_closures = {
                (c.school_id, c.date): c
                for c in ClosureDay.objects.filter(
                    school_id__in={k[0] for k in closure_by_key},
                    date__range=(
                        min(k[1] for k in closure_by_key),
                        max(k[1] for k in closure_by_key),
                    ),
                )
            }
            new_closures, changed_closures = [], []
            for key, spec in closure_by_key.items():
                row = existing_closures.get(key)
                label = (
                    ClosureDay.Kind(spec.kind).label
                    if spec.kind in ClosureDay.Kind.values
                    else spec.kind
                )
                if row is None:
                    result.changes.append(f"New closure: {_day(spec.date)}, {label} ({spec.note})")
                    new_closures.append(
                        ClosureDay(
                            school_id=spec.school_id, date=spec.date, kind=spec.kind, note=spec.note
                        )
                    )
                elif (row.kind, row.note) != (spec.kind, spec.note):
                    result.changes.append(
                        f"Closure on {_day(spec.date)} becomes {label} ({spec.note})"
                    )
                    row.kind, row.note = spec.kind, spec.note
                    changed_closures.append(row)
                else:
                    result.closures_unchanged += 1
            ClosureDay.objects.bulk_create(new_closures, batch_size=500)
            ClosureDay.objects.bulk_update(changed_closures, ["kind", "note"], batch_size=200)
            result.closures_created += len(new_closures)
            result.closures_updated += len(changed_closures)
        if term_by_key:
            _warn_overlaps({k[0] for k in term_by_key}, result)


def _warn_overlaps(school_ids: set[int], result: TermDatesResult) -> None:
    """Terms are keyed by their start, so correcting a start date adds a term instead of
    moving one; the clock would then count the union. Say so, so that someone deletes
    the stale term."""
    previous: dict[int, Term] = {}
    for term in (
        Term.objects.filter(school_id__in=school_ids)
        .select_related("school")
        .order_by("school_id", "starts_on")
    ):
        before = previous.get(term.school_id)
        if before is not None and term.starts_on <= before.ends_on:
            result.warnings.append(
                f"{term.school}: term {term.name!r} ({term.starts_on} to {term.ends_on}) "
                f"overlaps {before.name!r} ({before.starts_on} to {before.ends_on})"
            )
        if before is None or term.ends_on > before.ends_on:
            previous[term.school_id] = term


def import_term_dates_csv(
    source: Source, *, school_urn: str = "", allowed_school_ids: frozenset[int] | None = None
) -> TermDatesResult:
    """Import terms and closure days from a CSV.

    Columns: ``urn`` or ``local_authority`` (a row with a local authority and no URN
    applies to every school of that LA), ``kind`` (term, inset, holiday, other),
    ``name`` or ``note``, ``start`` and ``end`` (ISO dates, both inclusive; ``end`` may
    be left out for a single closure day). ``school_urn`` is the school for rows that
    name neither. Bad rows are reported by line (the header is line 1) and the good rows
    still go in. ``allowed_school_ids`` limits the rows to those schools (an upload by a
    school or trust lead).
    """
    result = TermDatesResult()
    entries = _parse_csv(_decode(_read_bytes(source)), school_urn.strip(), result)
    resolved = _resolve_targets(entries, result, allowed_school_ids)
    terms, closures = _expand(resolved, result)
    _write(terms, closures, result)
    result.errors.sort()
    return result


# --- iCalendar ---------------------------------------------------------------------------

_HALF_TERM = re.compile(r"half[\s-]*term", re.IGNORECASE)
_INSET = re.compile(r"\binset\b|\btraining\s+days?\b", re.IGNORECASE)
_TERM = re.compile(r"\bterms?\b", re.IGNORECASE)
_BEGIN_EVENT = re.compile(r"^BEGIN:VEVENT\s*$", re.IGNORECASE)


def classify_summary(summary: str) -> str:
    """The kind an event's SUMMARY stands for: "holiday" for a half term (a holiday,
    despite the word "term"), "inset" for INSET/training days, "term" for a term, else
    "holiday"."""
    if _HALF_TERM.search(summary):
        return "holiday"
    if _INSET.search(summary):
        return "inset"
    if _TERM.search(summary):
        return "term"
    return "holiday"


def _event_lines(text: str) -> list[int]:
    """The line each VEVENT begins on, in file order, for error messages: the parser
    keeps no positions, but events are never nested, so the n-th BEGIN:VEVENT line is
    the n-th event walked."""
    return [n for n, line in enumerate(text.splitlines(), start=1) if _BEGIN_EVENT.match(line)]


def _event_entry(event: icalendar.Event, line: int, target: _Target) -> _Entry:
    summary = str(event.get("SUMMARY", "")).strip()
    label = f"{summary!r}" if summary else "an event without a SUMMARY"
    if str(event.get("STATUS", "")).upper() == "CANCELLED":
        raise ValueError(f"{label} is cancelled; skipped")
    if event.get("RRULE") or event.get("RDATE"):
        raise ValueError(f"{label} repeats (RRULE/RDATE), which is not supported; skipped")
    if "DTSTART" not in event:
        raise ValueError(f"{label} has no DTSTART")
    try:
        start = event.start
        end = event.end  # RFC 5545: DTEND, or DTSTART + DURATION, or one day for a date
    except (icalendar.IncompleteComponent, icalendar.InvalidCalendar, ValueError) as exc:
        raise ValueError(f"{label}: {exc}") from None
    if isinstance(start, datetime) or isinstance(end, datetime):
        raise ValueError(f"{label} is not an all-day event; skipped")
    if end < start:
        raise ValueError(f"{label} ends ({end}) before it starts ({start})")
    # An all-day event's DTEND is exclusive: the last day is the one before it.
    last = max(start, end - timedelta(days=1))
    kind = classify_summary(summary)
    if kind == "term" and last == start:
        # "Autumn term starts" / "Last day of term" are one-day markers. Taken as a
        # one-day term they would make every other day of the year a holiday.
        raise ValueError(
            f"{label} is a single day, not a term; give a term as one event from its "
            "first day to its last"
        )
    return _Entry(line, target, kind, summary, start, last)


def import_term_dates_ics(
    source: Source,
    *,
    school_urn: str = "",
    local_authority: str = "",
    allowed_school_ids: frozenset[int] | None = None,
    dry_run: bool = False,
) -> TermDatesResult:
    """Import an iCalendar file for one school (``school_urn``) or for every school of a
    local authority (``dry_run``: only say, in ``changes``, what it would change). All-day events whose SUMMARY names a term become terms (a half term
    is a holiday); INSET/training days become INSET closures; other events are holiday
    closures, one per day. Events that cannot be used are reported by the line their
    BEGIN:VEVENT is on."""
    if bool(school_urn.strip()) == bool(local_authority.strip()):
        raise TermDatesFileError("Give the school (--school URN) or the local authority.")
    target = _Target(urn=school_urn.strip(), local_authority=local_authority.strip())
    text = _decode(_read_bytes(source))
    try:
        calendars = icalendar.Calendar.from_ical(text, multiple=True)
    except ValueError as exc:
        raise TermDatesFileError(f"Not a readable iCalendar file: {exc}") from None
    events = [event for cal in calendars for event in cal.walk("VEVENT")]
    if not events:
        raise TermDatesFileError("The file holds no events (VEVENT).")
    # Every event is for the same school(s): find them once, and fail the whole file,
    # not each event, if there are none.
    school_ids = _school_ids(target)
    if allowed_school_ids is not None:
        school_ids = [pk for pk in school_ids if pk in allowed_school_ids]
    if not school_ids:
        where = (
            f"with URN {target.urn}"
            if target.urn
            else f"in local authority {target.local_authority!r}"
        )
        raise TermDatesFileError(f"No school {where}.")
    lines = _event_lines(text)
    result = TermDatesResult()
    resolved = []
    for n, event in enumerate(events):
        line = lines[n] if n < len(lines) else 0
        result.rows += 1
        try:
            resolved.append((_event_entry(event, line, target), school_ids))
        except ValueError as exc:
            result.errors.append((line, str(exc)))
    terms, closures = _expand(resolved, result)
    if dry_run:
        try:
            with transaction.atomic():
                _write(terms, closures, result)
                raise _DryRun
        except _DryRun:
            pass
    else:
        _write(terms, closures, result)
    result.errors.sort()
    return result


# --- Entered on the school's page ------------------------------------------------------------

# A term longer than this is a typo in a year (the longest English term is ~16 weeks).
MAX_TERM_DAYS = 200


def calendar_editable_by(user: Any) -> frozenset[int]:
    """The schools whose term dates and closure days ``user`` keeps: the schools they
    lead, and every school of a trust they lead."""
    return scope_for(user).all_school_ids


def _require_editor(user: Any, schools: Iterable[Organisation]) -> list[Organisation]:
    schools = list(schools)
    allowed = calendar_editable_by(user)
    if not schools or any(s.pk not in allowed for s in schools):
        raise PermissionDenied("Only the school's lead (or its trust's) keeps its term dates.")
    return schools


def term_dates_add(
    *,
    schools: Iterable[Organisation],
    by: Any,
    kind: str,
    first: date,
    last: date | None = None,
    name: str = "",
) -> TermDatesResult:
    """Add a term (``kind`` "term", first to last day) or closure days ("inset",
    "holiday", "other"; each day from first to last) to each of ``schools``, exactly as a
    row of the term-dates CSV would: a term is keyed by its first day and a closure by
    its date, so entering one again corrects it."""
    targets = _require_editor(by, schools)
    errors: dict[str, str] = {}
    if kind not in KINDS:
        errors["kind"] = f"Choose one of: {', '.join(KINDS)}."
    if kind == "term" and last is None:
        errors["last"] = "A term needs its last day."
    last = last or first
    if last < first:
        errors["last"] = f"The last day ({last}) is before the first ({first})."
    elif kind == "term" and (last - first).days + 1 > MAX_TERM_DAYS:
        errors["last"] = f"A term of {(last - first).days + 1} days is too long: check the year."
    elif kind != "term" and (last - first).days + 1 > MAX_CLOSURE_DAYS:
        errors["last"] = f"At most {MAX_CLOSURE_DAYS} closure days at once."
    if errors:
        raise ValidationError(errors)
    result = TermDatesResult(rows=1)
    entry = _Entry(0, _Target(), kind, name.strip(), first, last)
    terms, closures = _expand([(entry, [s.pk for s in targets])], result)
    _write(terms, closures, result)
    return result


def term_dates_remove(
    *,
    school: Organisation,
    by: Any,
    term_ids: Iterable[int] = (),
    closure_ids: Iterable[int] = (),
) -> int:
    """Delete terms and closure days of this school (ids of another school's rows are
    ignored, like missing ones). Returns how many rows went."""
    _require_editor(by, [school])
    with transaction.atomic():
        terms, _ = Term.objects.filter(school=school, pk__in=list(term_ids)).delete()
        closures, _ = ClosureDay.objects.filter(school=school, pk__in=list(closure_ids)).delete()
    return terms + closures
