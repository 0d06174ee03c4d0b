"""School working time: the clock that ticket SLAs and nudge send windows run on.

Pure Python (no ORM, no settings): ``accounts.calendars`` builds a ``WorkingCalendar``
from a school's rows, and everything here can be tested without a database.

A school's working time is its daily window (``day_starts``–``day_ends``, wall-clock
time in the school's timezone) on its working days: Monday to Friday, not a bank holiday
of the school's nation (England, Wales, Scotland and Northern Ireland each have their
own), not one of its closure days (INSET, strike, snow) and, where its
term dates are known, inside a term.

Conventions, fixed here so that every caller agrees:

- All arithmetic is done on UTC instants. A day's window is built from wall-clock times
  (so 08:00 is 08:00 in GMT and in BST) and converted to UTC before any subtraction:
  subtracting two aware datetimes that share a ``ZoneInfo`` tzinfo ignores a change of
  offset between them, which would put an hour too much or too little on a DST weekend.
- Every datetime returned is aware and in UTC; convert with ``.astimezone(cal.tz)`` to
  show it.
- Time is counted in whole seconds: each instant is first truncated to its second. That
  keeps the sum of a ticket's clock segments exactly equal to the clock over their whole
  span (``business_seconds(a, b) + business_seconds(b, c) == business_seconds(a, c)``),
  which rounding each segment separately would not.
- A wall-clock time that does not exist (skipped by a spring-forward change) or exists
  twice (repeated by a fall-back change) is read with ``fold=0``, as ``zoneinfo`` does:
  the offset in force before the change. No UK school day starts at 01:00, so this only
  matters for odd send windows.
"""

from __future__ import annotations

import logging
import operator
from bisect import bisect_right
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays

LONDON = ZoneInfo("Europe/London")
logger = logging.getLogger(__name__)


def zone(name: str) -> ZoneInfo:
    """A school's time zone by name. Every school served is in the UK, so an empty or
    unknown name (a typo in the admin) means London: it must not take down the SLA
    clock, the nudge dispatcher or a page for the school."""
    try:
        return ZoneInfo(name) if name else LONDON
    except (ZoneInfoNotFoundError, ValueError):
        logger.warning("Unknown time zone %r; using Europe/London", name)
        return LONDON


# A calendar with no working day in this many consecutive days is broken (every date
# closed, or a window of zero length); stop rather than loop for ever.
MAX_DAYS_WITHOUT_WORK = 3 * 366

_ONE_DAY = timedelta(days=1)
_SECOND = timedelta(seconds=1)


class NoWorkingTimeError(ValueError):
    """The calendar has no working time left to reach the requested moment."""


# A school's nation (Organisation.nation) -> the ``holidays`` subdivision of GB whose bank
# holidays it keeps. England and Wales share theirs; Scotland has 2 January, St Andrew's
# Day and an early-August holiday but no Easter Monday; Northern Ireland adds St Patrick's
# Day and 12 July.
NATION_SUBDIVS: dict[str, str] = {
    "england": "ENG",
    "wales": "WLS",
    "scotland": "SCT",
    "northern_ireland": "NIR",
}
ENGLAND = "england"


@lru_cache(maxsize=256)
def bank_holidays(year: int, nation: str = ENGLAND) -> frozenset[date]:
    """The bank holidays of ``nation`` in ``year`` (including substitute days and one-off
    ones such as a coronation), cached per year and nation: building them costs ~0.2 ms."""
    subdiv = NATION_SUBDIVS[nation]
    return frozenset(holidays.country_holidays("GB", subdiv=subdiv, years=year).keys())


def _utc(value: datetime, name: str) -> datetime:
    if not isinstance(value, datetime):
        raise TypeError(f"{name} must be a datetime, not {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        # A naive datetime has no defined instant; guessing a zone would silently shift
        # a ticket's clock by an hour for half the year.
        raise ValueError(f"{name} must be an aware datetime (got naive {value.isoformat()})")
    return value.astimezone(UTC)


def _utc_second(value: datetime, name: str) -> datetime:
    """The UTC instant truncated to its whole second (microseconds are never negative,
    so dropping them floors)."""
    return _utc(value, name).replace(microsecond=0)


def _merge(terms: Iterable[tuple[date, date]]) -> tuple[tuple[date, ...], tuple[date, ...]]:
    """Sorted, non-overlapping term intervals as parallel (starts, ends) tuples, so that
    one bisect answers "is this date in a term" even if imported terms overlap."""
    starts: list[date] = []
    ends: list[date] = []
    for start, end in sorted(terms):
        if ends and start <= ends[-1] + _ONE_DAY:
            ends[-1] = max(ends[-1], end)
        else:
            starts.append(start)
            ends.append(end)
    return tuple(starts), tuple(ends)


@dataclass(frozen=True)
class WorkingCalendar:
    """One school's working time. Immutable and hashable, so it can be cached and shared.

    ``terms`` are (first day, last day) pairs, both inclusive. Days between the first
    term's start and the last term's end that fall in no term are school holidays.
    Dates outside that span are treated as open (subject to the other rules): a school
    whose next year's dates are not yet imported must not stop every clock on 1 September.
    """

    tz: ZoneInfo = LONDON
    day_starts: time = time(8, 0)
    day_ends: time = time(17, 0)
    closure_dates: frozenset[date] = frozenset()
    terms: tuple[tuple[date, date], ...] = ()
    # Whose bank holidays: a key of NATION_SUBDIVS (Organisation.nation).
    nation: str = ENGLAND
    _term_starts: tuple[date, ...] = field(init=False, repr=False, compare=False)
    _term_ends: tuple[date, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.nation not in NATION_SUBDIVS:
            raise ValueError(
                f"nation {self.nation!r} is not one of {', '.join(sorted(NATION_SUBDIVS))}"
            )
        for name in ("day_starts", "day_ends"):
            value = getattr(self, name)
            if not isinstance(value, time):
                raise TypeError(f"{name} must be a datetime.time")
            if value.tzinfo is not None:
                raise ValueError(f"{name} is a wall-clock time in tz; give it without tzinfo")
            if value.microsecond:
                # Whole-second windows keep business_seconds an exact integer.
                raise ValueError(f"{name} must be a whole second")
        if self.day_starts >= self.day_ends:
            raise ValueError("day_starts must be before day_ends")
        # Accept any iterables but store immutable, canonical values so that two
        # calendars with the same data compare (and hash) equal.
        object.__setattr__(self, "closure_dates", frozenset(self.closure_dates))
        terms = tuple(sorted((start, end) for start, end in self.terms))
        for start, end in terms:
            if end < start:
                raise ValueError(f"term ends ({end}) before it starts ({start})")
        object.__setattr__(self, "terms", terms)
        starts, ends = _merge(terms)
        object.__setattr__(self, "_term_starts", starts)
        object.__setattr__(self, "_term_ends", ends)

    def with_hours(self, day_starts: time, day_ends: time) -> WorkingCalendar:
        """The same days with a different daily window (e.g. a nudge send window)."""
        return replace(self, day_starts=day_starts, day_ends=day_ends)

    # --- Days ---------------------------------------------------------------------------

    def is_working_day(self, d: date) -> bool:
        if isinstance(d, datetime):
            # datetime is a date subclass, but never equal to one: a datetime would be
            # silently missed by every holiday/closure lookup.
            raise TypeError("is_working_day takes a date, not a datetime")
        if d.weekday() >= 5 or d in bank_holidays(d.year, self.nation) or d in self.closure_dates:
            return False
        starts, ends = self._term_starts, self._term_ends
        if starts and starts[0] <= d <= ends[-1]:
            i = bisect_right(starts, d) - 1
            return d <= ends[i]
        return True

    def working_window(self, d: date) -> tuple[datetime, datetime] | None:
        """The UTC (start, end) of working day ``d``'s window, or None if it is not a
        working day."""
        if not self.is_working_day(d):
            return None
        start = datetime.combine(d, self.day_starts, tzinfo=self.tz).astimezone(UTC)
        end = datetime.combine(d, self.day_ends, tzinfo=self.tz).astimezone(UTC)
        # A start inside a spring-forward gap (read with the earlier offset) can land
        # after an end just past the gap; such a window is empty, not negative.
        return (start, end) if end > start else None

    # --- Durations ----------------------------------------------------------------------

    def business_seconds(self, start: datetime, end: datetime) -> int:
        """Seconds of working time in [start, end); 0 if end <= start."""
        lo = _utc_second(start, "start")
        hi = _utc_second(end, "end")
        if hi <= lo:
            return 0
        total = 0
        # A window lies within its own local day; start a day early anyway so that a
        # window shifted by a DST gap near midnight is never missed.
        d = lo.astimezone(self.tz).date() - _ONE_DAY
        last = hi.astimezone(self.tz).date()
        while d <= last:
            window = self.working_window(d)
            if window is not None:
                overlap_start = max(window[0], lo)
                overlap_end = min(window[1], hi)
                if overlap_end > overlap_start:
                    total += (overlap_end - overlap_start) // _SECOND
            d += _ONE_DAY
        return total

    def add_business_seconds(self, start: datetime, seconds: int) -> datetime:
        """The instant (UTC) at which ``seconds`` of working time have elapsed since
        ``start``.

        For ``seconds == 0`` this is ``start`` itself (in UTC), even outside working
        hours: nothing has to elapse. For ``seconds > 0`` the result lies inside a
        working window, and may be its very end (a target met at 16:30 is due at 16:30,
        not at the next morning's opening). ``business_seconds(start, result)`` is
        always ``seconds``.
        """
        seconds = operator.index(seconds)
        if seconds < 0:
            raise ValueError("seconds must not be negative")
        if seconds == 0:
            return _utc(start, "start")
        cursor = _utc_second(start, "start")
        remaining = seconds
        d = cursor.astimezone(self.tz).date() - _ONE_DAY
        idle_days = 0
        while True:
            window = self.working_window(d)
            if window is not None and window[1] > cursor:
                lo = max(window[0], cursor)
                available = (window[1] - lo) // _SECOND
                if remaining <= available:
                    return lo + timedelta(seconds=remaining)
                remaining -= available
                idle_days = 0
            else:
                idle_days += 1
                if idle_days > MAX_DAYS_WITHOUT_WORK:
                    raise NoWorkingTimeError(
                        f"no working time in {MAX_DAYS_WITHOUT_WORK} days after {d - _ONE_DAY * idle_days}"
                    )
            d += _ONE_DAY

    def next_working_moment(self, at: datetime) -> datetime:
        """``at`` (in UTC) if it is inside a working window, else the start of the next
        window. Windows are half-open: at the closing instant the window is over."""
        at_utc = _utc(at, "at")
        d = at_utc.astimezone(self.tz).date() - _ONE_DAY
        for _ in range(MAX_DAYS_WITHOUT_WORK + 2):
            window = self.working_window(d)
            if window is not None and at_utc < window[1]:
                return max(at_utc, window[0])
            d += _ONE_DAY
        raise NoWorkingTimeError(f"no working time in {MAX_DAYS_WITHOUT_WORK} days after {at}")
