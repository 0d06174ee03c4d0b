"""The school's term dates page: a school lead (or a trust lead, for one or all of the
trust's schools) enters terms and closure days or uploads a file, and the SLA clock keeps
them. Others' schools are 404, other roles 403, and an upload touches only the user's
schools."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import time_machine
from django.core.files.uploadedfile import SimpleUploadedFile

from accounts.calendars import calendar_for_school
from accounts.models import ClosureDay, Organisation, Term
from accounts.tests import factories as f

PAGE = "/school/term-dates/"


def _add(client: Any, school: Organisation, **data: Any) -> Any:
    return client.post(f"{PAGE}?school={school.pk}", {"action": "add", **data})


def test_a_school_lead_enters_a_term_and_an_inset_day_and_the_clock_keeps_them(
    world: Any, login: Any
) -> None:
    client = login("a_lead")
    school = world.school_a

    term = _add(
        client, school, kind="term", first="2026-09-03", last="2026-12-18", name="Autumn 2026"
    )
    inset = _add(client, school, kind="inset", first="2026-11-30", name="Staff training")
    _add(client, school, kind="term", first="2026-04-13", last="2026-07-22")  # named "Summer 2026"

    assert term.status_code == inset.status_code == 302
    page = client.get(term["Location"]).content.decode()
    assert "Autumn 2026" in page and "Mon 30 Nov 2026" in page and "Staff training" in page
    cal = calendar_for_school(Organisation.objects.get(pk=school.pk))
    assert not cal.is_working_day(date(2026, 11, 30))  # the INSET day
    assert not cal.is_working_day(date(2026, 9, 2))  # the summer holiday between the terms
    assert cal.is_working_day(date(2026, 12, 1))
    # A ticket raised at 16:00 on the Friday before is first due on Tuesday morning.
    with time_machine.travel(datetime(2026, 11, 27, 16, 0, tzinfo=UTC), tick=False):
        created = (
            world.client("a_teacher")
            .post(
                "/api/v1/tickets/",
                {"partnership": world.p_a1.pk, "subject": "S", "description": "D"},
            )
            .json()
        )
    assert created["sla"]["first_response_due_at"].startswith("2026-12-01")


def test_a_trust_lead_enters_an_inset_day_for_every_school_of_the_trust(
    world: Any, login: Any
) -> None:
    sibling = f.SchoolFactory(name="Alder Academy", trust=world.trust)
    client = login("trust_lead")
    assert (
        "Every school of Oak Trust (2 schools)"
        in client.get(PAGE, {"school": world.school_a.pk}).content.decode()
    )

    response = _add(
        client, world.school_a, kind="inset", first="2027-01-04", all_trust_schools="on"
    )

    assert response.status_code == 302
    assert set(
        ClosureDay.objects.filter(date=date(2027, 1, 4)).values_list("school", flat=True)
    ) == {
        world.school_a.pk,
        sibling.pk,
    }
    assert not ClosureDay.objects.filter(school=world.school_b).exists()


def test_dates_out_of_order_or_missing_are_field_messages_and_save_nothing(
    world: Any, login: Any
) -> None:
    client = login("a_lead")
    backwards = _add(client, world.school_a, kind="term", first="2026-12-18", last="2026-09-03")
    no_end = _add(client, world.school_a, kind="term", first="2026-09-03")
    garbage = _add(client, world.school_a, kind="inset", first="soon")
    too_long = _add(client, world.school_a, kind="term", first="2026-09-03", last="2027-09-03")

    assert backwards.status_code == no_end.status_code == garbage.status_code == 422
    assert "is before the first" in backwards.content.decode()
    assert "A term needs its last day." in no_end.content.decode()
    assert "Enter a valid date." in garbage.content.decode()
    assert "is too long: check the year" in too_long.content.decode()
    assert not Term.objects.exists() and not ClosureDay.objects.exists()


def test_only_the_schools_leads_open_the_page_and_other_schools_are_404(
    world: Any, login: Any
) -> None:
    assert login("a_teacher").get(PAGE).status_code == 403
    assert login("s1_am").get(PAGE).status_code == 403
    assert login("b_lead").get(PAGE, {"school": world.school_a.pk}).status_code == 404
    refused = _add(login("b_lead"), world.school_a, kind="inset", first="2026-11-30")
    assert refused.status_code == 404
    assert not ClosureDay.objects.exists()


def test_removing_takes_only_this_schools_rows(world: Any, login: Any) -> None:
    mine = Term.objects.create(
        school=world.school_a, name="Autumn", starts_on=date(2026, 9, 3), ends_on=date(2026, 12, 18)
    )
    theirs = Term.objects.create(
        school=world.school_b, name="Autumn", starts_on=date(2026, 9, 3), ends_on=date(2026, 12, 18)
    )
    client = login("a_lead")

    client.post(PAGE, {"action": "remove", "term": [theirs.pk]})
    assert Term.objects.filter(pk=theirs.pk).exists()
    client.post(PAGE, {"action": "remove", "term": [mine.pk]})
    assert not Term.objects.filter(pk=mine.pk).exists()


def test_an_uploaded_csv_goes_into_the_users_school_and_never_another(
    world: Any, login: Any
) -> None:
    csv = (
        "urn,kind,name,start,end\n"
        ",term,Spring 2027,2027-01-05,2027-03-26\n"
        ",inset,Training,2027-01-04,\n"
        f"{world.school_b.urn},inset,Not theirs to set,2027-01-04,\n"
        ",holiday,Half term,2027-02-15,2027-02-19\n"
    )
    upload = SimpleUploadedFile("terms.csv", csv.encode(), content_type="text/csv")

    response = login("a_lead").post(PAGE, {"action": "upload", "file": upload})

    assert response.status_code == 200
    html = response.content.decode()
    assert "Terms: 1 added" in html and "Closure days: 6 added" in html
    assert f"Line 4: no school with URN {world.school_b.urn} among yours" in html
    assert Term.objects.filter(school=world.school_a, name="Spring 2027").exists()
    assert not ClosureDay.objects.filter(school=world.school_b).exists()


def test_an_uploaded_ics_file_is_read_and_a_bad_file_is_a_field_message(
    world: Any, login: Any
) -> None:
    ics = (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//LA//Terms//EN\r\n"
        "BEGIN:VEVENT\r\nUID:1\r\nDTSTAMP:20260101T000000Z\r\nSUMMARY:Autumn term\r\n"
        "DTSTART;VALUE=DATE:20260903\r\nDTEND;VALUE=DATE:20261219\r\nEND:VEVENT\r\n"
        "BEGIN:VEVENT\r\nUID:2\r\nDTSTAMP:20260101T000000Z\r\nSUMMARY:INSET day\r\n"
        "DTSTART;VALUE=DATE:20261130\r\nEND:VEVENT\r\n"
        "END:VCALENDAR\r\n"
    )
    client = login("a_lead")
    ok = client.post(PAGE, {"action": "upload", "file": SimpleUploadedFile("la.ics", ics.encode())})
    assert ok.status_code == 200
    assert Term.objects.get(school=world.school_a).ends_on == date(2026, 12, 18)
    assert ClosureDay.objects.get(school=world.school_a).kind == "inset"

    wrong = client.post(
        PAGE, {"action": "upload", "file": SimpleUploadedFile("terms.pdf", b"%PDF-1.7")}
    )
    empty = client.post(
        PAGE,
        {
            "action": "upload",
            "file": SimpleUploadedFile("x.ics", b"BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n"),
        },
    )
    assert wrong.status_code == empty.status_code == 422
    assert "Upload a .csv or an .ics file." in wrong.content.decode()
    assert "no events" in empty.content.decode()
