"""Schools' working calendars from the database, and the term-date importers."""

from __future__ import annotations

import io
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import icalendar
import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.calendars import (
    TermDatesFileError,
    calendar_for_school,
    calendars_for_schools,
    classify_summary,
    import_term_dates_csv,
    import_term_dates_ics,
)
from accounts.models import ClosureDay, Organisation, Term
from accounts.tests.factories import SchoolFactory
from accounts.working_time import LONDON, WorkingCalendar

pytestmark = pytest.mark.django_db

HOUR = 3600


def london(*args: int) -> datetime:
    return datetime(*args, tzinfo=LONDON)  # type: ignore[misc]


def _school_with_calendar(**fields: object) -> Organisation:
    school = SchoolFactory(**fields)
    ClosureDay.objects.create(school=school, date=date(2026, 9, 2), kind="inset")
    Term.objects.create(
        school=school, name="Summer 2026", starts_on=date(2026, 4, 13), ends_on=date(2026, 7, 22)
    )
    Term.objects.create(
        school=school, name="Autumn 2026", starts_on=date(2026, 9, 3), ends_on=date(2026, 12, 18)
    )
    return school


# --- Calendars ---------------------------------------------------------------------------


def test_a_schools_calendar_has_its_hours_timezone_closures_and_terms() -> None:
    school = _school_with_calendar(day_starts=time(8, 45), day_ends=time(15, 30))
    cal = calendar_for_school(school)
    assert cal == WorkingCalendar(
        tz=LONDON,
        day_starts=time(8, 45),
        day_ends=time(15, 30),
        closure_dates=frozenset({date(2026, 9, 2)}),
        terms=((date(2026, 4, 13), date(2026, 7, 22)), (date(2026, 9, 3), date(2026, 12, 18))),
    )
    # 14:30 on the last day of the summer term + 2 h: 1 h that day, the summer holiday
    # and the INSET day skipped, 1 h on the first day of the autumn term.
    due = cal.add_business_seconds(london(2026, 7, 22, 14, 30), 2 * HOUR)
    assert due == london(2026, 9, 3, 9, 45)


def test_a_schools_timezone_is_honoured() -> None:
    school = SchoolFactory(timezone="America/New_York")
    cal = calendar_for_school(school)
    assert cal.tz == ZoneInfo("America/New_York")
    assert cal.next_working_moment(datetime(2026, 3, 2, 12, 0, tzinfo=UTC)) == datetime(
        2026, 3, 2, 13, 0, tzinfo=UTC
    )


def test_an_unknown_timezone_falls_back_to_london_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    school = SchoolFactory(timezone="Europe/Lodnon")
    assert calendar_for_school(school).tz == LONDON
    assert "Europe/Lodnon" in caplog.text
    assert school.zone == LONDON  # the same fallback for pages, visits, nudges and feeds


def test_a_calendar_takes_two_queries_and_none_when_prefetched() -> None:
    school = _school_with_calendar()
    with CaptureQueriesContext(connection) as ctx:
        cal = calendar_for_school(school)
    assert len(ctx) == 2
    prefetched = Organisation.objects.prefetch_related("closure_days", "terms").get(pk=school.pk)
    with CaptureQueriesContext(connection) as ctx:
        assert calendar_for_school(prefetched) == cal
    assert len(ctx) == 0


def test_calendars_for_many_schools_take_the_same_number_of_queries_as_for_one() -> None:
    schools = [_school_with_calendar() for _ in range(10)]
    schools[3].day_starts = time(9, 0)
    schools[3].save()
    with CaptureQueriesContext(connection) as one:
        single = calendars_for_schools([schools[0].pk])
    with CaptureQueriesContext(connection) as ten:
        many = calendars_for_schools([s.pk for s in schools])
    assert len(one) == len(ten) == 3
    assert single == {schools[0].pk: calendar_for_school(schools[0])}
    assert many == {s.pk: calendar_for_school(s) for s in schools}
    assert many[schools[3].pk].day_starts == time(9, 0)


def test_calendars_for_schools_accept_a_queryset_and_skip_unknown_ids() -> None:
    school = _school_with_calendar(local_authority="York")
    SchoolFactory(local_authority="Leeds")
    with CaptureQueriesContext(connection) as ctx:
        cals = calendars_for_schools(Organisation.objects.filter(local_authority="York"))
    assert len(ctx) == 3
    assert cals == {school.pk: calendar_for_school(school)}
    assert calendars_for_schools([987654]) == {}
    with CaptureQueriesContext(connection) as ctx:
        assert calendars_for_schools([]) == {}
    assert len(ctx) == 0


# --- CSV ---------------------------------------------------------------------------------


def _csv(text: str) -> io.BytesIO:
    return io.BytesIO(text.encode("utf-8"))


def test_a_csv_by_urn_upserts_terms_and_expands_closures_into_days() -> None:
    school = SchoolFactory(urn="100001")
    data = (
        "urn,kind,name,start,end\n"
        "100001,term,Autumn 2026,2026-09-03,2026-12-18\n"
        "100001,inset,Training,2026-09-02,\n"
        "100001,holiday,October half term,2026-10-26,2026-10-30\n"
    )
    result = import_term_dates_csv(_csv(data))
    assert result.errors == []
    assert (result.rows, result.schools, result.terms_created, result.closures_created) == (
        3,
        1,
        1,
        6,
    )
    assert list(Term.objects.filter(school=school).values_list("name", "starts_on", "ends_on")) == [
        ("Autumn 2026", date(2026, 9, 3), date(2026, 12, 18))
    ]
    closures = dict(ClosureDay.objects.filter(school=school).values_list("date", "kind"))
    assert closures == {
        date(2026, 9, 2): "inset",
        **{date(2026, 10, 26) + timedelta(d): "holiday" for d in range(5)},
    }

    # The same file again changes nothing; a corrected end date updates the term.
    again = import_term_dates_csv(_csv(data))
    assert (again.terms_unchanged, again.closures_unchanged) == (1, 6)
    assert again.terms_created == again.closures_created == 0
    corrected = import_term_dates_csv(
        _csv("urn,kind,name,start,end\n100001,term,Autumn 2026,2026-09-03,2026-12-17\n")
    )
    assert corrected.terms_updated == 1
    assert Term.objects.get(school=school).ends_on == date(2026, 12, 17)


def test_a_csv_row_for_a_local_authority_applies_to_each_of_its_schools() -> None:
    leeds = [SchoolFactory(local_authority="Leeds") for _ in range(2)]
    york = SchoolFactory(local_authority="York")
    data = (
        "Local Authority,Kind,Name,Start,End\n"
        "leeds,term,,2027-01-05,2027-02-12\n"
        "Leeds,holiday,Half term,2027-02-15,2027-02-19\n"
    )
    result = import_term_dates_csv(_csv(data))
    assert result.errors == []
    assert result.schools == 2
    for school in leeds:
        term = Term.objects.get(school=school)
        assert (term.name, term.starts_on, term.ends_on) == (
            "Spring 2027",
            date(2027, 1, 5),
            date(2027, 2, 12),
        )
        assert ClosureDay.objects.filter(school=school).count() == 5
    assert not Term.objects.filter(school=york).exists()
    assert not ClosureDay.objects.filter(school=york).exists()


def test_bad_csv_rows_are_reported_by_line_and_good_rows_still_go_in() -> None:
    school = SchoolFactory(urn="100002", local_authority="Leeds")
    data = (
        "urn,local_authority,kind,note,start,end\n"  # line 1
        "100002,,inset,ok,2026-09-02,\n"  # 2: good
        "100002,,party,,2026-09-04,\n"  # 3: bad kind
        '100002,,other,"Snow,\nall day",2026-12-01,\n'  # 4-5: good, note spans two lines
        "100002,,inset,,03/09/2026,\n"  # 6: not ISO
        "999999,,inset,,2026-09-07,\n"  # 7: unknown URN
        "100002,,holiday,,2026-09-10,2026-09-08\n"  # 8: ends before it starts
        "100002,,term,Autumn,2026-09-03,\n"  # 9: a term needs an end
        ",Atlantis,inset,,2026-09-07,\n"  # 10: no such LA
        ",,inset,,2026-09-07,\n"  # 11: no target
        "\n"  # 12: blank, ignored
        "100002,,holiday,,2026-01-01,2026-12-31\n"  # 13: a year-long "closure"
        ",leeds,holiday,,2026-09-11,\n"  # 14: good, by LA
    )
    result = import_term_dates_csv(_csv(data))
    assert [line for line, _ in result.errors] == [3, 6, 7, 8, 9, 10, 11, 13]
    messages = dict(result.errors)
    assert "party" in messages[3]
    assert "2026-09-03" in messages[6] or "like" in messages[6]
    assert "999999" in messages[7]
    assert "before" in messages[8]
    assert "end" in messages[9]
    assert "Atlantis" in messages[10]
    assert "too long" in messages[13]
    assert dict(ClosureDay.objects.filter(school=school).values_list("date", "note")) == {
        date(2026, 9, 2): "ok",
        date(2026, 12, 1): "Snow,\nall day",
        date(2026, 9, 11): "",
    }


def test_a_csv_without_urn_or_la_uses_the_school_given_on_the_command_line() -> None:
    school = SchoolFactory(urn="100003")
    data = "kind,name,start,end\nterm,Autumn 2026,2026-09-03,2026-12-18\n"
    result = import_term_dates_csv(_csv(data), school_urn="100003")
    assert result.errors == []
    assert Term.objects.filter(school=school).count() == 1
    with pytest.raises(TermDatesFileError, match="urn or local_authority"):
        import_term_dates_csv(_csv(data))
    with pytest.raises(TermDatesFileError, match="kind"):
        import_term_dates_csv(_csv("urn,start\n100003,2026-09-03\n"))


def test_correcting_a_term_start_warns_that_the_old_term_overlaps() -> None:
    SchoolFactory(urn="100004")
    import_term_dates_csv(_csv("urn,kind,start,end\n100004,term,2026-09-01,2026-12-18\n"))
    result = import_term_dates_csv(_csv("urn,kind,start,end\n100004,term,2026-09-03,2026-12-18\n"))
    assert result.terms_created == 1
    assert len(result.warnings) == 1
    assert "overlaps" in result.warnings[0]


# --- iCalendar ---------------------------------------------------------------------------


def _event(
    summary: str, start: date | datetime, end: date | datetime | None = None
) -> icalendar.Event:
    event = icalendar.Event()
    event.add("uid", f"{summary}-{start}@test")
    event.add("dtstamp", datetime(2026, 6, 1, tzinfo=UTC))
    event.add("summary", summary)
    event.add("dtstart", start)
    if end is not None:
        event.add("dtend", end)
    return event


def _ics(tmp_path: Path, *events: icalendar.Event) -> Path:
    cal = icalendar.Calendar()
    cal.add("prodid", "-//Partnership CRM tests//EN")
    cal.add("version", "2.0")
    for event in events:
        cal.add_component(event)
    path = tmp_path / "terms.ics"
    path.write_bytes(cal.to_ical())
    return path


def _event_line(path: Path, n: int) -> int:
    """The line of the n-th (0-based) BEGIN:VEVENT in the file."""
    lines = path.read_text().splitlines()
    return [i for i, line in enumerate(lines, start=1) if line == "BEGIN:VEVENT"][n]


def test_an_ics_calendar_gives_terms_a_half_term_holiday_and_an_inset_day(tmp_path: Path) -> None:
    school = SchoolFactory(urn="100005")
    path = _ics(
        tmp_path,
        # All-day DTEND is exclusive (RFC 5545): this term's last day is Fri 23 Oct.
        _event("Autumn term", date(2026, 9, 3), date(2026, 10, 24)),
        _event("Half term", date(2026, 10, 26), date(2026, 10, 31)),
        _event("Autumn term (second half)", date(2026, 11, 2), date(2026, 12, 19)),
        _event("INSET day", date(2026, 9, 2)),  # no DTEND: one day
        _event("Spring Term 2027", date(2027, 1, 5), date(2027, 3, 27)),
        _event("Christmas holidays", date(2026, 12, 21), date(2027, 1, 5)),
    )
    result = import_term_dates_ics(path, school_urn="100005")
    assert result.errors == []
    assert list(Term.objects.filter(school=school).values_list("name", "starts_on", "ends_on")) == [
        ("Autumn term", date(2026, 9, 3), date(2026, 10, 23)),
        ("Autumn term (second half)", date(2026, 11, 2), date(2026, 12, 18)),
        ("Spring Term 2027", date(2027, 1, 5), date(2027, 3, 26)),
    ]
    closures = dict(ClosureDay.objects.filter(school=school).values_list("date", "kind"))
    assert closures[date(2026, 9, 2)] == "inset"
    assert [d for d, k in closures.items() if k == "holiday" and d.month == 10] == [
        date(2026, 10, 26) + timedelta(d) for d in range(5)
    ]
    assert date(2026, 10, 31) not in closures
    assert len(closures) == 1 + 5 + 15

    cal = calendar_for_school(school)
    assert not cal.is_working_day(date(2026, 10, 28))  # half term
    assert cal.is_working_day(date(2026, 10, 23))  # last day of the first half
    assert cal.is_working_day(date(2026, 11, 2))
    # Friday afternoon before half term + 2 h: due on the Monday after it.
    due = cal.add_business_seconds(london(2026, 10, 23, 16, 0), 2 * HOUR)
    assert due == london(2026, 11, 2, 9, 0)


def test_unusable_ics_events_are_reported_by_the_line_they_begin_on(tmp_path: Path) -> None:
    school = SchoolFactory(urn="100006")
    london_dt = datetime(2026, 9, 10, 18, 0, tzinfo=UTC)
    path = _ics(
        tmp_path,
        _event("Autumn term", date(2026, 9, 3), date(2026, 12, 19)),
        _event("Autumn term starts", date(2026, 9, 3)),  # a marker, not a term
        _event("Parents' evening", london_dt, london_dt + timedelta(hours=2)),  # timed
        _event("INSET day", date(2026, 9, 2)),
    )
    result = import_term_dates_ics(path, school_urn="100006")
    assert [line for line, _ in result.errors] == [_event_line(path, 1), _event_line(path, 2)]
    assert "single day" in result.errors[0][1]
    assert "all-day" in result.errors[1][1]
    assert Term.objects.filter(school=school).count() == 1
    assert ClosureDay.objects.filter(school=school).count() == 1


def test_an_ics_import_needs_a_known_school(tmp_path: Path) -> None:
    path = _ics(tmp_path, _event("INSET day", date(2026, 9, 2)))
    with pytest.raises(TermDatesFileError, match="school"):
        import_term_dates_ics(path)
    with pytest.raises(TermDatesFileError, match="No school with URN 123456"):
        import_term_dates_ics(path, school_urn="123456")


@pytest.mark.parametrize(
    ("summary", "kind"),
    [
        ("Autumn term", "term"),
        ("Spring Term 2027", "term"),
        ("Summer terms", "term"),
        ("Half term", "holiday"),
        ("October half-term", "holiday"),
        ("HALF TERM (Spring)", "holiday"),
        ("INSET day", "inset"),
        ("Inset Day - start of term", "inset"),
        ("Staff training day", "inset"),
        ("Christmas holidays", "holiday"),
        ("Bank holiday", "holiday"),
        ("Terminal exams", "holiday"),
    ],
)
def test_an_ics_summary_is_read_as_a_term_a_holiday_or_an_inset_day(
    summary: str, kind: str
) -> None:
    assert classify_summary(summary) == kind


# --- The command -------------------------------------------------------------------------


def test_the_command_imports_a_csv_and_lists_bad_rows_by_line(tmp_path: Path) -> None:
    SchoolFactory(urn="100007")
    path = tmp_path / "terms.csv"
    path.write_text(
        "urn,kind,name,start,end\n"
        "100007,term,Autumn 2026,2026-09-03,2026-12-18\n"
        "100007,inset,,2026-13-01,\n"
    )
    out, err = io.StringIO(), io.StringIO()
    call_command("import_term_dates", str(path), stdout=out, stderr=err)
    assert "Terms: 1 created" in out.getvalue()
    assert "line 3:" in err.getvalue()


def test_the_command_imports_an_ics_file_for_the_school_given(tmp_path: Path) -> None:
    school = SchoolFactory(urn="100008")
    path = _ics(tmp_path, _event("INSET day", date(2026, 9, 2)))
    out = io.StringIO()
    call_command("import_term_dates", str(path), "--school", "100008", stdout=out)
    assert "Closure days: 1 created" in out.getvalue()
    assert "No errors." in out.getvalue()
    assert ClosureDay.objects.get(school=school).kind == "inset"
    with pytest.raises(CommandError, match="--school"):
        call_command("import_term_dates", str(path))
    other = tmp_path / "terms.xlsx"
    other.write_bytes(b"")
    with pytest.raises(CommandError, match=r"\.csv or \.ics"):
        call_command("import_term_dates", str(other))


# --- Nations -------------------------------------------------------------------------------


def test_a_schools_nation_picks_its_bank_holidays_in_every_way_calendars_are_read() -> None:
    scottish = _school_with_calendar(nation=Organisation.Nation.SCOTLAND)
    english = _school_with_calendar()
    st_andrews = date(2026, 11, 30)

    assert not calendar_for_school(scottish).is_working_day(st_andrews)
    assert calendar_for_school(english).is_working_day(st_andrews)
    with CaptureQueriesContext(connection) as ctx:
        cals = calendars_for_schools([scottish.pk, english.pk])
    assert len(ctx) == 3  # the nation comes with the school's row: no extra query
    assert cals[scottish.pk].nation == "scotland"
    assert not cals[scottish.pk].is_working_day(st_andrews)
    assert cals[english.pk].is_working_day(st_andrews)


def test_a_nation_the_model_does_not_know_falls_back_to_england_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    school = SchoolFactory()
    Organisation.objects.filter(pk=school.pk).update(nation="")  # e.g. a raw UPDATE
    school.refresh_from_db()
    assert calendar_for_school(school).nation == "england"
    assert calendars_for_schools([school.pk])[school.pk].nation == "england"
    assert "Unknown nation" in caplog.text


def test_a_scottish_schools_ticket_is_due_on_easter_monday(world: object) -> None:
    """The worked Easter example of tickets/tests/test_sla.py at a Scottish school:
    raised Thu 2 Apr 2026 15:00 (BST), first response in 8 working hours, 08:00-17:00.
    Good Friday is a holiday in Scotland too, Easter Monday is not."""
    import time_machine

    school = world.school_a  # type: ignore[attr-defined]
    Organisation.objects.filter(pk=school.pk).update(nation=Organisation.Nation.SCOTLAND)
    teacher = world.client("a_teacher")  # type: ignore[attr-defined]
    with time_machine.travel(london(2026, 4, 2, 15, 0), tick=False):
        created = teacher.post(
            "/api/v1/tickets/",
            {"partnership": world.p_a1.pk, "subject": "S", "description": "D"},  # type: ignore[attr-defined]
        ).json()

    due = datetime.fromisoformat(created["sla"]["first_response_due_at"].replace("Z", "+00:00"))
    # Thu 15-17 (2 h) + Mon 6 Apr 08-14 (6 h); in England it is Tue 7 Apr 14:00.
    assert due == london(2026, 4, 6, 14, 0)


def test_the_school_lead_sets_the_nation_through_the_api_and_the_clock_follows(
    world: object,
) -> None:
    import time_machine

    school = world.school_a  # type: ignore[attr-defined]
    url = f"/api/v1/organisations/{school.pk}/"
    lead = world.client("a_lead")  # type: ignore[attr-defined]

    response = lead.patch(url, {"nation": "scotland"}, format="json")

    assert response.status_code == 200, response.json()
    assert response.json()["nation"] == "scotland"
    assert not calendar_for_school(Organisation.objects.get(pk=school.pk)).is_working_day(
        date(2026, 11, 30)
    )
    with time_machine.travel(london(2026, 11, 27, 16, 0), tick=False):
        created = (
            world.client("a_teacher")
            .post(  # type: ignore[attr-defined]
                "/api/v1/tickets/",
                {"partnership": world.p_a1.pk, "subject": "S", "description": "D"},  # type: ignore[attr-defined]
            )
            .json()
        )
    due = datetime.fromisoformat(created["sla"]["first_response_due_at"].replace("Z", "+00:00"))
    assert due.astimezone(LONDON).date() == date(2026, 12, 1)  # St Andrew's Day skipped


def test_only_the_schools_own_lead_sets_its_nation_and_bad_values_are_field_errors(
    world: object,
) -> None:
    school = world.school_a  # type: ignore[attr-defined]
    url = f"/api/v1/organisations/{school.pk}/"
    for user in ("s1_am", "s1_admin", "trust_lead", "a_teacher"):
        response = world.client(user).patch(url, {"nation": "wales"}, format="json")  # type: ignore[attr-defined]
        assert response.status_code == 403, user
    assert world.client("b_lead").patch(url, {"nation": "wales"}, format="json").status_code == 404  # type: ignore[attr-defined]
    supplier = world.s1  # type: ignore[attr-defined]
    refused = world.client("s1_admin").patch(  # type: ignore[attr-defined]
        f"/api/v1/organisations/{supplier.pk}/", {"nation": "wales"}, format="json"
    )
    assert refused.status_code == 403
    bad = world.client("a_lead").patch(url, {"nation": "ENG"}, format="json")  # type: ignore[attr-defined]
    assert bad.status_code == 400 and "nation" in bad.json()
    assert Organisation.objects.get(pk=school.pk).nation == "england"
