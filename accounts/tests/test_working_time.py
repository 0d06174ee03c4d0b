"""The school working-time clock: worked examples with exact figures, properties that
must hold for any calendar, and an independent oracle (businesstimedelta)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import businesstimedelta
import holidays
import pytest
import pytz
from hypothesis import HealthCheck, assume, given, reject, settings
from hypothesis import strategies as st

from accounts.working_time import (
    LONDON,
    MAX_DAYS_WITHOUT_WORK,
    NoWorkingTimeError,
    WorkingCalendar,
    bank_holidays,
)

HOUR = 3600
SCHOOL_DAY = (time(8, 30), time(16, 30))


def london(*args: int) -> datetime:
    return datetime(*args, tzinfo=LONDON)  # type: ignore[misc]


@pytest.fixture
def cal() -> WorkingCalendar:
    """England, 08:30–16:30, no closures or terms."""
    return WorkingCalendar().with_hours(*SCHOOL_DAY)


# --- Worked examples ---------------------------------------------------------------------


def test_easter_bank_holidays_are_skipped_thursday_15_00_plus_8_hours_is_tuesday_15_00(
    cal: WorkingCalendar,
) -> None:
    # Thu 1.5 h (15:00–16:30), Good Friday 3 Apr and Easter Monday 6 Apr closed,
    # Tue 08:30 + 6.5 h = 15:00.
    start = london(2026, 4, 2, 15, 0)
    due = cal.add_business_seconds(start, 8 * HOUR)
    assert due == london(2026, 4, 7, 15, 0)
    assert due.tzinfo is UTC
    assert due == datetime(2026, 4, 7, 14, 0, tzinfo=UTC)
    assert cal.business_seconds(start, due) == 8 * HOUR
    # Thu 15:00 to Tue 10:00 is 3 working hours: 1.5 on Thursday, 1.5 on Tuesday.
    assert cal.business_seconds(start, london(2026, 4, 7, 10, 0)) == 3 * HOUR


def test_the_clock_crosses_the_march_dst_start_friday_16_00_plus_2_hours_is_monday_10_00_bst(
    cal: WorkingCalendar,
) -> None:
    # Clocks went forward on Sun 29 Mar 2026: Friday is GMT, Monday is BST.
    start = london(2026, 3, 27, 16, 0)
    due = cal.add_business_seconds(start, 2 * HOUR)
    assert due.astimezone(LONDON) == london(2026, 3, 30, 10, 0)
    assert due.astimezone(LONDON).utcoffset() == timedelta(hours=1)
    assert due == datetime(2026, 3, 30, 9, 0, tzinfo=UTC)
    assert cal.business_seconds(start, due) == 2 * HOUR


def test_the_clock_crosses_the_october_dst_end_and_a_day_still_has_nine_hours() -> None:
    # Clocks went back on Sun 25 Oct 2026: Friday is BST, Monday is GMT.
    cal = WorkingCalendar()  # 08:00–17:00
    friday_open, monday_close = london(2026, 10, 23, 8, 0), london(2026, 10, 26, 17, 0)
    assert cal.business_seconds(friday_open, monday_close) == 18 * HOUR
    # The weekend, 25 hours long in real time, holds no working time.
    assert cal.business_seconds(london(2026, 10, 23, 17), london(2026, 10, 26, 8)) == 0
    due = cal.add_business_seconds(london(2026, 10, 23, 16, 0), 2 * HOUR)
    assert due.astimezone(LONDON) == london(2026, 10, 26, 9, 0)
    assert due == datetime(2026, 10, 26, 9, 0, tzinfo=UTC)  # GMT again


def test_a_ticket_raised_on_saturday_counts_from_monday_08_00() -> None:
    cal = WorkingCalendar()
    saturday = london(2026, 3, 14, 11, 0)
    assert cal.next_working_moment(saturday) == london(2026, 3, 16, 8, 0)
    assert cal.business_seconds(saturday, london(2026, 3, 16, 8, 0)) == 0
    assert cal.add_business_seconds(saturday, HOUR) == london(2026, 3, 16, 9, 0)
    assert cal.business_seconds(saturday, london(2026, 3, 16, 12, 30)) == 4 * HOUR + HOUR // 2


def test_an_inset_day_is_skipped() -> None:
    cal = WorkingCalendar(closure_dates=frozenset({date(2026, 9, 2)}))  # Wed INSET
    tuesday = london(2026, 9, 1, 16, 0)
    assert not cal.is_working_day(date(2026, 9, 2))
    assert cal.add_business_seconds(tuesday, 2 * HOUR) == london(2026, 9, 3, 9, 0)
    assert cal.business_seconds(tuesday, london(2026, 9, 3, 9, 0)) == 2 * HOUR
    # The same ticket at a school without the INSET day is due on Wednesday.
    assert WorkingCalendar().add_business_seconds(tuesday, 2 * HOUR) == london(2026, 9, 2, 9, 0)


def test_the_summer_holiday_between_terms_is_skipped() -> None:
    cal = WorkingCalendar(
        terms=((date(2026, 4, 13), date(2026, 7, 22)), (date(2026, 9, 3), date(2026, 12, 18)))
    )
    last_day_of_summer_term = london(2026, 7, 22, 15, 0)
    due = cal.add_business_seconds(last_day_of_summer_term, 4 * HOUR)
    # 2 h on Wed 22 Jul, then nothing until the autumn term starts on Thu 3 Sep.
    assert due == london(2026, 9, 3, 10, 0)
    assert cal.business_seconds(last_day_of_summer_term, due) == 4 * HOUR
    assert not cal.is_working_day(date(2026, 8, 10))
    assert cal.next_working_moment(london(2026, 8, 10, 9, 0)) == london(2026, 9, 3, 8, 0)


def test_dates_outside_the_known_terms_are_open_so_the_clock_never_stalls() -> None:
    cal = WorkingCalendar(terms=((date(2026, 9, 3), date(2026, 12, 18)),))
    assert cal.is_working_day(date(2026, 7, 1))  # before the first known term
    assert cal.is_working_day(date(2027, 1, 5))  # next year's dates not imported yet
    assert not cal.is_working_day(date(2027, 1, 1))  # still a bank holiday
    assert not cal.is_working_day(date(2027, 1, 2))  # still a Saturday
    assert cal.next_working_moment(london(2026, 12, 19, 9)) == london(2026, 12, 21, 8)


def test_overlapping_terms_count_their_union() -> None:
    cal = WorkingCalendar(
        terms=((date(2026, 9, 1), date(2026, 10, 23)), (date(2026, 9, 3), date(2026, 9, 10)))
    )
    assert cal.is_working_day(date(2026, 9, 14))


def test_england_2026_has_253_working_days() -> None:
    # 261 weekdays less 8 weekday bank holidays (Boxing Day is a Saturday; Mon 28 Dec
    # is its substitute).
    cal = WorkingCalendar()
    year = cal.business_seconds(london(2026, 1, 1), london(2027, 1, 1))
    assert year == 253 * 9 * HOUR
    assert sum(cal.is_working_day(date(2026, 1, 1) + timedelta(d)) for d in range(365)) == 253
    assert date(2026, 12, 28) in bank_holidays(2026)


def test_a_window_that_spans_a_weekday_dst_change_has_its_real_length() -> None:
    # Israel's clocks go forward on Friday 27 Mar 2026 at 02:00: a 00:00–06:00 window
    # that day lasts 5 real hours. Subtracting the two local times directly says 6.
    jerusalem = ZoneInfo("Asia/Jerusalem")
    cal = WorkingCalendar(tz=jerusalem, day_starts=time(0, 0), day_ends=time(6, 0))
    midnight = datetime(2026, 3, 27, tzinfo=jerusalem)
    assert midnight.utcoffset() != midnight.replace(hour=6).utcoffset()
    assert cal.business_seconds(midnight, midnight.replace(hour=12)) == 5 * HOUR
    assert cal.add_business_seconds(midnight, 5 * HOUR) == midnight.replace(hour=6)


def test_time_is_counted_in_whole_seconds_so_segments_add_up() -> None:
    cal = WorkingCalendar()
    a, b, c = (
        london(2026, 3, 2, 9, 0, 0) + timedelta(microseconds=m) for m in (0, 500_000, 1_000_000)
    )
    assert (
        cal.business_seconds(a, b) + cal.business_seconds(b, c) == cal.business_seconds(a, c) == 1
    )
    assert cal.business_seconds(b, c) == 1  # [09:00:00, 09:00:01) once truncated


def test_adding_zero_returns_the_start_itself_even_outside_working_hours() -> None:
    cal = WorkingCalendar()
    sunday = london(2026, 3, 15, 20, 0)
    assert cal.add_business_seconds(sunday, 0) == sunday
    assert cal.add_business_seconds(sunday, 0).tzinfo is UTC


def test_a_target_that_ends_at_closing_time_is_due_at_closing_time_not_next_morning() -> None:
    cal = WorkingCalendar()
    assert cal.add_business_seconds(london(2026, 3, 2, 8), 9 * HOUR) == london(2026, 3, 2, 17)
    # While a send window is over at its closing instant.
    assert cal.next_working_moment(london(2026, 3, 2, 17)) == london(2026, 3, 3, 8)
    assert cal.next_working_moment(london(2026, 3, 2, 16, 59)) == london(2026, 3, 2, 16, 59)


def test_a_send_window_uses_the_same_days_with_different_hours() -> None:
    school = WorkingCalendar(closure_dates=frozenset({date(2026, 3, 3)}))
    send_window = school.with_hours(time(9, 30), time(15, 0))
    assert send_window.closure_dates == school.closure_dates
    assert send_window.next_working_moment(london(2026, 3, 2, 15, 30)) == london(2026, 3, 4, 9, 30)
    assert send_window.next_working_moment(london(2026, 3, 4, 7, 0)) == london(2026, 3, 4, 9, 30)


def test_naive_datetimes_and_bad_arguments_are_refused() -> None:
    cal = WorkingCalendar()
    naive = datetime(2026, 3, 2, 9, 0)  # noqa: DTZ001 - the point of the test
    with pytest.raises(ValueError, match="aware"):
        cal.business_seconds(naive, london(2026, 3, 3))
    with pytest.raises(ValueError, match="aware"):
        cal.add_business_seconds(naive, 60)
    with pytest.raises(ValueError, match="aware"):
        cal.next_working_moment(naive)
    with pytest.raises(ValueError, match="negative"):
        cal.add_business_seconds(london(2026, 3, 2), -1)
    with pytest.raises(TypeError):
        cal.add_business_seconds(london(2026, 3, 2), 1.5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="not a datetime"):
        cal.is_working_day(london(2026, 3, 2))
    with pytest.raises(ValueError, match="before day_ends"):
        WorkingCalendar(day_starts=time(17), day_ends=time(8))
    with pytest.raises(ValueError, match="before it starts"):
        WorkingCalendar(terms=((date(2026, 9, 3), date(2026, 9, 1)),))


def test_a_calendar_with_no_working_days_raises_instead_of_looping_for_ever() -> None:
    everything = frozenset(date(2026, 1, 1) + timedelta(d) for d in range(5 * 366))
    cal = WorkingCalendar(closure_dates=everything)
    with pytest.raises(NoWorkingTimeError):
        cal.add_business_seconds(london(2026, 1, 1), 1)
    with pytest.raises(NoWorkingTimeError):
        cal.next_working_moment(london(2026, 1, 1))
    assert cal.business_seconds(london(2026, 1, 1), london(2027, 1, 1)) == 0
    assert len(everything) > MAX_DAYS_WITHOUT_WORK


def test_equal_calendars_compare_and_hash_equal_whatever_order_they_were_given_in() -> None:
    terms = ((date(2026, 9, 3), date(2026, 12, 18)), (date(2026, 4, 13), date(2026, 7, 22)))
    a = WorkingCalendar(terms=terms, closure_dates=frozenset({date(2026, 9, 2)}))
    b = WorkingCalendar(terms=terms[::-1], closure_dates={date(2026, 9, 2)})  # type: ignore[arg-type]
    assert a == b
    assert hash(a) == hash(b)


# --- The four nations' bank holidays ----------------------------------------------------

ENGLAND, WALES = WorkingCalendar(nation="england"), WorkingCalendar(nation="wales")
SCOTLAND = WorkingCalendar(nation="scotland")
NORTHERN_IRELAND = WorkingCalendar(nation="northern_ireland")


def test_st_andrews_day_is_a_holiday_for_a_scottish_school_and_not_an_english_one() -> None:
    st_andrews = date(2026, 11, 30)  # a Monday
    assert not SCOTLAND.is_working_day(st_andrews)
    assert ENGLAND.is_working_day(st_andrews)
    # A ticket raised at 16:00 on the Friday before, due in 2 working hours (08:00-17:00):
    friday = london(2026, 11, 27, 16, 0)
    assert SCOTLAND.add_business_seconds(friday, 2 * HOUR) == london(2026, 12, 1, 9, 0)
    assert ENGLAND.add_business_seconds(friday, 2 * HOUR) == london(2026, 11, 30, 9, 0)


def test_easter_monday_is_a_working_day_in_scotland_but_a_bank_holiday_elsewhere() -> None:
    easter_monday = date(2026, 4, 6)
    assert SCOTLAND.is_working_day(easter_monday)
    assert not any(c.is_working_day(easter_monday) for c in (ENGLAND, WALES, NORTHERN_IRELAND))
    assert not SCOTLAND.is_working_day(date(2026, 4, 3))  # Good Friday is everyone's


def test_scotland_has_2_january_and_the_first_monday_of_august_not_the_last() -> None:
    assert not SCOTLAND.is_working_day(date(2026, 1, 2)) and ENGLAND.is_working_day(
        date(2026, 1, 2)
    )
    assert not SCOTLAND.is_working_day(date(2026, 8, 3)) and ENGLAND.is_working_day(
        date(2026, 8, 3)
    )
    assert SCOTLAND.is_working_day(date(2026, 8, 31)) and not ENGLAND.is_working_day(
        date(2026, 8, 31)
    )


def test_northern_ireland_keeps_12_july_and_st_patricks_day() -> None:
    assert not NORTHERN_IRELAND.is_working_day(date(2027, 7, 12))  # a Monday
    assert ENGLAND.is_working_day(date(2027, 7, 12))
    assert not NORTHERN_IRELAND.is_working_day(date(2027, 3, 17))  # a Wednesday
    # In 2026 the 12th is a Sunday: the Monday after is the holiday instead.
    assert not NORTHERN_IRELAND.is_working_day(date(2026, 7, 13))
    assert ENGLAND.is_working_day(date(2026, 7, 13))


def test_the_number_of_working_days_in_2026_differs_by_nation() -> None:
    def working_days(cal: WorkingCalendar) -> int:
        d, n = date(2026, 1, 1), 0
        while d.year == 2026:
            n += cal.is_working_day(d)
            d += timedelta(days=1)
        return n

    counts = {c.nation: working_days(c) for c in (ENGLAND, WALES, SCOTLAND, NORTHERN_IRELAND)}
    # England's 8 weekday bank holidays; Scotland swaps Easter Monday and the late-August
    # Monday for 2 Jan, the first Monday of August, St Andrew's Day and the one-off
    # World Cup holiday of 15 June; Northern Ireland adds 17 March and 13 July.
    assert counts == {
        "england": 253,
        "wales": 253,
        "scotland": 251,
        "northern_ireland": 251,
    }


def test_an_unknown_nation_is_refused() -> None:
    with pytest.raises(ValueError, match="nation 'ENG' is not one of"):
        WorkingCalendar(nation="ENG")
    assert bank_holidays(2026, "scotland") != bank_holidays(2026)


# --- Properties --------------------------------------------------------------------------

ZONES = [LONDON, ZoneInfo("Asia/Jerusalem"), ZoneInfo("America/New_York"), ZoneInfo("UTC")]
SPAN_START = datetime(2025, 1, 1, tzinfo=UTC)
SPAN_SECONDS = 3 * 365 * 24 * HOUR
PROPERTY_SETTINGS = settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


@st.composite
def calendars(draw: st.DrawFn) -> WorkingCalendar:
    start_minute = draw(st.integers(0, 22 * 60))
    length = draw(st.integers(1, 24 * 60 - start_minute - 1))
    end_minute = start_minute + length
    first = date(2025, 1, 1)
    closures = draw(st.frozensets(st.integers(0, 3 * 365), max_size=40))
    starts = sorted(draw(st.lists(st.integers(0, 3 * 365), max_size=6, unique=True)))
    terms = [
        (first + timedelta(s), first + timedelta(s + draw(st.integers(0, 120)))) for s in starts
    ]
    return WorkingCalendar(
        tz=draw(st.sampled_from(ZONES)),
        day_starts=time(start_minute // 60, start_minute % 60),
        day_ends=time(end_minute // 60, end_minute % 60),
        closure_dates=frozenset(first + timedelta(d) for d in closures),
        terms=tuple(terms),
    )


def instants(max_offset: int = SPAN_SECONDS) -> st.SearchStrategy[datetime]:
    """Whole-second UTC instants over three years."""
    return st.integers(0, max_offset).map(lambda s: SPAN_START + timedelta(seconds=s))


precise_instants = st.tuples(instants(), st.integers(0, 999_999)).map(
    lambda p: p[0] + timedelta(microseconds=p[1])
)
# Up to ~8 weeks of working time: an SLA target is hours, not months.
durations = st.integers(0, 300 * HOUR)


@PROPERTY_SETTINGS
@given(calendars(), st.lists(precise_instants, min_size=3, max_size=3))
def test_business_seconds_are_additive_over_adjacent_spans(
    cal: WorkingCalendar, points: list[datetime]
) -> None:
    a, b, c = sorted(points)
    assume((c - a) < timedelta(days=200))
    assert cal.business_seconds(a, b) + cal.business_seconds(b, c) == cal.business_seconds(a, c)


@PROPERTY_SETTINGS
@given(calendars(), precise_instants, durations)
def test_business_seconds_undo_add_business_seconds(
    cal: WorkingCalendar, start: datetime, seconds: int
) -> None:
    due = _add(cal, start, seconds)
    assert due.tzinfo is UTC
    assert cal.business_seconds(start, due) == seconds


@PROPERTY_SETTINGS
@given(calendars(), instants(), instants())
def test_business_seconds_are_between_zero_and_the_elapsed_time(
    cal: WorkingCalendar, a: datetime, b: datetime
) -> None:
    assume(abs(b - a) < timedelta(days=200))
    measured = cal.business_seconds(a, b)
    assert 0 <= measured <= max(0, (b - a).total_seconds())


@PROPERTY_SETTINGS
@given(calendars(), instants(), instants(), instants())
def test_business_seconds_grow_with_the_end_and_shrink_with_the_start(
    cal: WorkingCalendar, a: datetime, b1: datetime, b2: datetime
) -> None:
    b1, b2 = sorted((b1, b2))
    assume(b2 - a < timedelta(days=200))
    assert cal.business_seconds(a, b1) <= cal.business_seconds(a, b2)
    assert cal.business_seconds(b1, a) >= cal.business_seconds(b2, a)


def _add(cal: WorkingCalendar, start: datetime, seconds: int) -> datetime:
    """add_business_seconds, for generated calendars: one whose terms leave no working day
    for three years rightly raises; such a calendar tells nothing about the other rules."""
    try:
        return cal.add_business_seconds(start, seconds)
    except NoWorkingTimeError:
        reject()
        raise


@PROPERTY_SETTINGS
@given(calendars(), instants(), durations, durations)
def test_adding_more_seconds_never_gives_an_earlier_instant(
    cal: WorkingCalendar, start: datetime, s1: int, s2: int
) -> None:
    s1, s2 = sorted((s1, s2))
    assert _add(cal, start, s1) <= _add(cal, start, s2)


@PROPERTY_SETTINGS
@given(calendars(), st.integers(0, 3 * 365))
def test_a_closed_day_holds_no_working_time_and_an_open_day_exactly_its_window(
    cal: WorkingCalendar, offset: int
) -> None:
    day = date(2025, 1, 1) + timedelta(offset)
    midnight = datetime.combine(day, time(0), tzinfo=cal.tz)
    next_midnight = datetime.combine(day + timedelta(1), time(0), tzinfo=cal.tz)
    measured = cal.business_seconds(midnight, next_midnight)
    if day.weekday() >= 5 or day in bank_holidays(day.year) or day in cal.closure_dates:
        assert not cal.is_working_day(day)
    if not cal.is_working_day(day):
        assert measured == 0
    else:
        opens = datetime.combine(day, cal.day_starts, tzinfo=cal.tz).astimezone(UTC)
        closes = datetime.combine(day, cal.day_ends, tzinfo=cal.tz).astimezone(UTC)
        assert measured == max(0, (closes - opens).total_seconds())


def _assert_in_window(cal: WorkingCalendar, moment: datetime, *, closed_end: bool) -> None:
    day = moment.astimezone(cal.tz).date()
    window = cal.working_window(day)
    assert window is not None, f"{moment} is on {day}, which has no working window"
    assert window[0] <= moment
    assert moment <= window[1] if closed_end else moment < window[1]


@PROPERTY_SETTINGS
@given(calendars(), precise_instants, durations)
def test_a_due_time_always_lies_inside_a_working_window(
    cal: WorkingCalendar, start: datetime, seconds: int
) -> None:
    due = _add(cal, start, seconds)
    if seconds == 0:
        assert due == start
    else:
        assert due > start
        _assert_in_window(cal, due, closed_end=True)
        assert due > cal.working_window(due.astimezone(cal.tz).date())[0]  # type: ignore[index]


@PROPERTY_SETTINGS
@given(calendars(), precise_instants)
def test_the_next_working_moment_skips_no_working_time(cal: WorkingCalendar, at: datetime) -> None:
    moment = cal.next_working_moment(at)
    assert moment >= at
    _assert_in_window(cal, moment, closed_end=False)
    assert cal.business_seconds(at, moment) == 0
    if moment != at:
        assert moment == cal.working_window(moment.astimezone(cal.tz).date())[0]  # type: ignore[index]


# --- Oracle: businesstimedelta -----------------------------------------------------------

_PYTZ_LONDON = pytz.timezone("Europe/London")
_ORACLE_HOLIDAYS = frozenset(
    holidays.country_holidays("GB", subdiv="ENG", years=range(2024, 2031)).keys()
)
ORACLE = businesstimedelta.Rules(
    [
        businesstimedelta.WorkDayRule(
            start_time=SCHOOL_DAY[0],
            end_time=SCHOOL_DAY[1],
            working_days=[0, 1, 2, 3, 4],
            tz=_PYTZ_LONDON,
        ),
        businesstimedelta.HolidayRule(_ORACLE_HOLIDAYS, tz=_PYTZ_LONDON),
    ]
)


def test_the_oracle_agrees_with_the_worked_example() -> None:
    start = datetime(2026, 4, 2, 14, 0, tzinfo=UTC)  # Thu 15:00 BST
    assert start + businesstimedelta.BusinessTimeDelta(ORACLE, hours=8) == london(2026, 4, 7, 15)


@PROPERTY_SETTINGS
@given(instants(), st.integers(1, 200 * HOUR))
def test_add_business_seconds_agrees_with_businesstimedelta(start: datetime, seconds: int) -> None:
    cal = WorkingCalendar().with_hours(*SCHOOL_DAY)
    expected = start + businesstimedelta.BusinessTimeDelta(ORACLE, seconds=seconds)
    assert cal.add_business_seconds(start, seconds) == expected


@PROPERTY_SETTINGS
@given(instants(), st.integers(0, 60 * 24 * HOUR))
def test_business_seconds_agree_with_businesstimedelta(start: datetime, span: int) -> None:
    cal = WorkingCalendar().with_hours(*SCHOOL_DAY)
    end = start + timedelta(seconds=span)
    expected = ORACLE.difference(start, end).timedelta
    assert cal.business_seconds(start, end) == expected.total_seconds()
