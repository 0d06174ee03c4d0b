from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.gias import import_schools
from accounts.models import Organisation
from accounts.tests import factories as f

SAMPLE = Path(__file__).parent / "data" / "gias_sample.csv"

# A realistic slice of the GIAS header: columns the import ignores sit between the ones
# it reads, as in the real file.
HEADER = (
    "URN,LA (code),LA (name),EstablishmentNumber,EstablishmentName,"
    "TypeOfEstablishment (name),EstablishmentStatus (name),PhaseOfEducation (name),"
    "StatutoryLowAge,Trusts (code),Trusts (name),Street,Postcode"
)


def gias_file(tmp_path: Path, *rows: str, header: str = HEADER, encoding: str = "cp1252") -> Path:
    path = tmp_path / "edubasealldata.csv"
    path.write_bytes(("\r\n".join([header, *rows]) + "\r\n").encode(encoding))
    return path


def run(path: Path, *args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("import_schools", str(path), *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


StringIO = io.StringIO

MARYS = (
    "104698,341,Liverpool,3402,St Mary’s Catholic Primary School,Voluntary aided school,"
    'Open,Primary,4,,,"Rice Lane, Walton",l9  1de'
)
YSGOL = (
    "401937,681,Cardiff,2316,Ysgol Gymraeg Trelái,Welsh establishment,Open,Primary,3,,,"
    "Bishopston Road,CF5 5DY"
)
ACADEMY = (
    "144873,383,Leeds,4012,Roundhay Vale Academy,Academy sponsor led,Open,Secondary,11,"
    "17421,Pennine Crest Learning Trust,Wetherby Road,LS8 2JU"
)
SPECIAL = (
    "145337,381,Calderdale,7003,Elland Bridge School,Academy special converter,Open,"
    "Not applicable,2,17421,Pennine Crest Learning Trust,Exley Lane,HX5 0SW"
)


def test_import_reads_a_cp1252_file_with_curly_quotes_and_welsh_names(
    tmp_path: Path, db: Any
) -> None:
    path = gias_file(tmp_path, MARYS, YSGOL)
    assert b"\x92" in path.read_bytes()  # the curly apostrophe, as Windows-1252 writes it

    out, err = run(path)

    marys = Organisation.objects.get(urn="104698")
    assert marys.name == "St Mary’s Catholic Primary School"
    assert (marys.kind, marys.phase, marys.local_authority) == ("school", "primary", "Liverpool")
    assert marys.postcode == "L9 1DE"
    assert Organisation.objects.get(urn="401937").name == "Ysgol Gymraeg Trelái"
    assert "2 created, 0 updated, 0 unchanged" in out
    assert "(cp1252)" in out
    assert err == ""


def test_import_reads_utf8_with_a_byte_order_mark(tmp_path: Path, db: Any) -> None:
    path = gias_file(tmp_path, YSGOL, header="\ufeff" + HEADER, encoding="utf-8")

    result = import_schools(path)

    assert (result.created, result.errors, result.encoding) == (1, [], "utf-8-sig")
    assert Organisation.objects.get(urn="401937").name == "Ysgol Gymraeg Trelái"


def test_import_accepts_text_and_binary_streams(db: Any) -> None:
    text = f"{HEADER}\r\n{MARYS}\r\n"
    assert import_schools(io.StringIO(text, newline="")).created == 1
    assert import_schools(io.BytesIO(f"{HEADER}\r\n{YSGOL}\r\n".encode("cp1252"))).created == 1
    assert Organisation.objects.filter(kind="school").count() == 2


@pytest.mark.parametrize(
    ("gias_phase", "establishment_type", "phase"),
    [
        ("Primary", "Community school", "primary"),
        ("Middle deemed primary", "Community school", "middle"),
        ("Middle deemed secondary", "Community school", "middle"),
        ("Secondary", "Academy converter", "secondary"),
        ("All-through", "Free schools", "all_through"),
        ("16 plus", "Sixth form centres", "16_plus"),
        ("Nursery", "Local authority nursery school", "nursery"),
        ("Not applicable", "Community special school", "special"),
        ("Not applicable", "Pupil referral unit", "alternative"),
        ("Not applicable", "Further education", "other"),
    ],
)
def test_gias_phases_map_to_crm_phases(
    tmp_path: Path, db: Any, gias_phase: str, establishment_type: str, phase: str
) -> None:
    row = f"123456,383,Leeds,1,Test School,{establishment_type},Open,{gias_phase},4,,,,LS1 1AA"
    import_schools(gias_file(tmp_path, row))
    assert Organisation.objects.get(urn="123456").phase == phase


def test_schools_are_linked_to_one_trust_per_gias_group_code(tmp_path: Path, db: Any) -> None:
    out, _ = run(gias_file(tmp_path, ACADEMY, SPECIAL, MARYS))

    trust = Organisation.objects.get(kind="trust")
    assert (trust.name, trust.gias_group_code) == ("Pennine Crest Learning Trust", "17421")
    assert set(trust.schools.values_list("urn", flat=True)) == {"144873", "145337"}
    assert Organisation.objects.get(urn="145337").phase == "special"
    assert Organisation.objects.get(urn="104698").trust is None
    assert "Trusts: 1 created, 0 updated." in out


def test_a_renamed_trust_is_updated_not_duplicated(tmp_path: Path, db: Any) -> None:
    import_schools(gias_file(tmp_path, ACADEMY))
    renamed = ACADEMY.replace("Pennine Crest Learning Trust", "Pennine Crest Trust")

    result = import_schools(gias_file(tmp_path, renamed))

    assert (result.trusts_created, result.trusts_updated) == (0, 1)
    assert Organisation.objects.get(kind="trust").name == "Pennine Crest Trust"


def test_a_trust_already_in_the_crm_without_a_code_is_adopted_by_name(
    tmp_path: Path, db: Any
) -> None:
    trust = f.TrustFactory(name="Pennine Crest Learning Trust")

    import_schools(gias_file(tmp_path, ACADEMY))

    trust.refresh_from_db()
    assert trust.gias_group_code == "17421"
    assert Organisation.objects.filter(kind="trust").count() == 1
    assert Organisation.objects.get(urn="144873").trust == trust


def test_existing_schools_are_updated_by_urn_and_new_ones_created(tmp_path: Path, db: Any) -> None:
    f.SchoolFactory(urn="104698", name="St Marys RC Primary", local_authority="Sefton")
    f.SchoolFactory(urn="401937", name="Ysgol Gymraeg Trelái", phase="primary",
                    local_authority="Cardiff", postcode="CF5 5DY")  # fmt: skip

    out, _ = run(gias_file(tmp_path, MARYS, YSGOL, ACADEMY))

    assert "1 created, 1 updated, 1 unchanged" in out
    marys = Organisation.objects.get(urn="104698")
    assert (marys.name, marys.local_authority) == ("St Mary’s Catholic Primary School", "Liverpool")
    assert Organisation.objects.filter(kind="school").count() == 3


def test_reimporting_the_same_file_changes_nothing(tmp_path: Path, db: Any) -> None:
    path = gias_file(tmp_path, MARYS, YSGOL, ACADEMY, SPECIAL)
    run(path)
    stamps = dict(Organisation.objects.values_list("id", "updated_at"))

    out, _ = run(path)

    assert "0 created, 0 updated, 4 unchanged" in out
    assert "Trusts: 0 created, 0 updated." in out
    assert dict(Organisation.objects.values_list("id", "updated_at")) == stamps


def test_bad_rows_are_reported_by_line_number_while_good_rows_are_imported(
    tmp_path: Path, db: Any
) -> None:
    path = gias_file(
        tmp_path,
        MARYS,  # line 2
        ",383,Leeds,1,No URN Primary,Community school,Open,Primary,4,,,,LS1 1AA",
        "",  # line 4: a blank line is skipped, but still counts as a line
        "12AB56,383,Leeds,1,Letters Primary,Community school,Open,Primary,4,,,,LS1 1AA",
        "12345,383,Leeds,1,Five Digit Primary,Community school,Open,Primary,4,,,,LS1 1AA",
        "222222,383,Leeds,1,,Community school,Open,Primary,4,,,,LS1 1AA",
        # lines 8-9: a quoted field holding a line break is one row over two lines
        '333333,383,Leeds,1,Two Line School,Community school,Open,Primary,4,,,"Mill Lane\r\n'
        'Headingley",LS6 1AA',
        YSGOL,  # line 10
        MARYS.replace("St Mary’s", "Another St Mary’s"),  # line 11
    )

    out, err = run(path)

    assert sorted(Organisation.objects.values_list("urn", flat=True)) == [
        "104698",
        "333333",
        "401937",
    ]
    assert Organisation.objects.get(urn="104698").name.startswith("St Mary’s")
    assert "3 created" in out
    assert "line 3: Missing URN." in err
    assert "line 5: URN '12AB56' is not a 6-digit number." in err
    assert "line 6: URN '12345' is not a 6-digit number." in err
    assert "line 7: URN 222222: missing EstablishmentName." in err
    assert "line 11: URN 104698 appears again (first on line 2)" in err
    assert err.count("\n  line ") == 5


def test_closed_schools_are_skipped_unless_known_or_asked_for(tmp_path: Path, db: Any) -> None:
    closed = MARYS.replace(",Open,", ",Closed,")
    f.SchoolFactory(urn="401937", name="Old name")
    path = gias_file(tmp_path, closed, YSGOL.replace(",Open,", ",Closed,"))

    out, _ = run(path)

    assert not Organisation.objects.filter(urn="104698").exists()
    assert Organisation.objects.get(urn="401937").name == "Ysgol Gymraeg Trelái"
    assert "1 closed skipped" in out
    run(path, "--include-closed")
    assert Organisation.objects.filter(urn="104698").exists()


def test_columns_missing_from_the_file_are_left_alone(tmp_path: Path, db: Any) -> None:
    trust = f.TrustFactory(name="Oak Trust")
    f.SchoolFactory(urn="104698", name="St Marys", trust=trust, phase="primary", postcode="L9 1DE")
    path = gias_file(tmp_path, "104698,St Mary’s", header="URN,EstablishmentName")

    import_schools(path)

    school = Organisation.objects.get(urn="104698")
    assert (school.name, school.trust, school.phase, school.postcode) == (
        "St Mary’s",
        trust,
        "primary",
        "L9 1DE",
    )


def test_a_file_without_a_urn_column_is_a_command_error(tmp_path: Path, db: Any) -> None:
    path = gias_file(tmp_path, "Ashfield,Leeds", header="EstablishmentName,LA (name)")
    with pytest.raises(CommandError, match="Missing required column 'URN'"):
        run(path)
    assert not Organisation.objects.exists()


def test_a_file_that_cannot_be_read_is_a_command_error(tmp_path: Path, db: Any) -> None:
    with pytest.raises(CommandError, match="Cannot read"):
        run(tmp_path / "missing.csv")


def test_the_sample_file_imports_cleanly(db: Any) -> None:
    out, err = run(SAMPLE)

    assert "14 created, 0 updated, 0 unchanged, 1 closed skipped" in out
    assert "Trusts: 2 created" in out
    assert err == ""
    assert Organisation.objects.filter(name="St Mary’s Catholic Primary School").exists()
    assert Organisation.objects.get(gias_group_code="17421").schools.count() == 3


def test_import_queries_do_not_grow_with_the_number_of_rows(tmp_path: Path, db: Any) -> None:
    def queries(first_urn: int, count: int) -> int:
        rows = [
            f"{urn},383,Leeds,1,School {urn},Academy converter,Open,Primary,4,"
            f"{first_urn + urn % 3},Trust {first_urn + urn % 3},,LS1 1AA"
            for urn in range(first_urn, first_urn + count)
        ]
        with CaptureQueriesContext(connection) as captured:
            import_schools(gias_file(tmp_path, *rows))
        return len(captured)

    # Only the number of INSERT batches may grow (SQLite caps the parameters per query).
    few, many = queries(200000, 5), queries(300000, 300)
    assert many - few <= 300 // 50


# --- Files whose rows cannot be trusted change nothing ---------------------------------

MOORTOWN = (
    "107412,383,Leeds,2051,Moortown Fields Primary School,Community school,Open,Primary,3,"
    ",,Shadwell Lane,LS17 6DR"
)


def _stored() -> dict[str, tuple[str, str, str]]:
    return {
        o.urn: (o.name, o.postcode, o.local_authority)
        for o in Organisation.objects.filter(kind="school")
    }


def test_a_stray_quote_that_runs_to_the_end_of_the_file_refuses_it_and_changes_nothing(
    tmp_path: Path, db: Any
) -> None:
    f.SchoolFactory(urn="104698", name="St Mary’s Catholic Primary School", postcode="L9 1DE")
    before = _stored()
    path = gias_file(
        tmp_path,
        MOORTOWN,  # line 2
        # line 3: the status cell opens a quote that never closes, as in the report
        MARYS.replace(",Open,", ',"Open,').replace("l9  1de", ""),
        YSGOL,  # line 4
        ACADEMY,  # line 5
    )

    err = io.StringIO()
    with pytest.raises(CommandError, match="nothing was imported"):
        call_command("import_schools", str(path), stdout=io.StringIO(), stderr=err)

    assert "line 3: Line 3 is not valid CSV" in err.getvalue()
    assert _stored() == before  # the postcode is intact; Ysgol and the academy not half-in
    assert not Organisation.objects.filter(kind="trust").exists()


def _stderr_of(path: Path) -> str:
    err = io.StringIO()
    with pytest.raises(CommandError):
        call_command("import_schools", str(path), stdout=io.StringIO(), stderr=err)
    return err.getvalue()


def test_the_end_of_file_inside_quotes_is_named_with_the_line_the_row_starts_on(
    tmp_path: Path, db: Any
) -> None:
    stray = MOORTOWN.replace("107412", "107413").replace(",Open,", ',"Open,')
    path = gias_file(tmp_path, MOORTOWN, stray, YSGOL)  # no later quote closes it

    err = _stderr_of(path)

    assert "line 3: The file ends inside a quoted field" in err
    assert "row starting on line 3" in err
    assert not Organisation.objects.exists()


def test_a_stray_quote_that_meets_a_later_quoted_field_names_both_lines(
    tmp_path: Path, db: Any
) -> None:
    f.SchoolFactory(urn="107412", name="Moortown Fields", postcode="LS17 6DR")
    before = _stored()
    stray = YSGOL.replace(",Open,", ',"Open,')  # line 3; MARYS on line 5 quotes its street
    path = gias_file(tmp_path, MOORTOWN, stray, ACADEMY, MARYS, SPECIAL)

    err = _stderr_of(path)

    assert (
        "line 3: A quoted field opened in the row starting on line 3 only closes on line 5" in err
    )
    assert _stored() == before


def test_a_stray_quote_closed_by_another_stray_one_is_caught_though_the_rows_look_readable(
    tmp_path: Path, db: Any
) -> None:
    # The quote opened on line 3 is closed by a second stray one on line 5: the reader
    # sees one row holding lines 3-5, and its field count may even line up again.
    swallowing = YSGOL.replace(",Open,", ',"Open,')
    closing = ACADEMY.replace("Roundhay Vale Academy", 'Roundhay Vale Academy"')
    path = gias_file(tmp_path, MOORTOWN, swallowing, MOORTOWN.replace("107412", "107499"),
                     closing, SPECIAL)  # fmt: skip
    f.SchoolFactory(urn="107412", name="Moortown Fields", postcode="LS17 6DR")
    before = _stored()

    err = _stderr_of(path)

    assert "line 3: a quoted field spans" in err
    assert "swallowed the rows after it" in err
    assert _stored() == before


def test_a_row_with_an_extra_comma_is_named_and_the_file_changes_nothing(
    tmp_path: Path, db: Any
) -> None:
    f.SchoolFactory(urn="401937", name="Ysgol Gymraeg Trelái", postcode="CF5 5DY")
    before = _stored()
    # An unquoted comma in the street moves the postcode into a 14th column.
    shifted = YSGOL.replace("Bishopston Road", "Bishopston Road, Caerau")
    short = MOORTOWN.rsplit(",", 1)[0]  # the postcode column left off
    path = gias_file(tmp_path, MARYS, shifted, ACADEMY, short)

    err = _stderr_of(path)

    assert "line 3: this row has 14 fields where the header has 13" in err
    assert "line 5: this row has 12 fields where the header has 13" in err
    assert _stored() == before
    assert Organisation.objects.filter(kind="school").count() == 1


def test_a_closing_quote_followed_by_text_names_the_line(tmp_path: Path, db: Any) -> None:
    bad = MARYS.replace('"Rice Lane, Walton"', '"Rice Lane" Walton')
    err = _stderr_of(gias_file(tmp_path, MOORTOWN, YSGOL, bad))

    assert "line 4: Line 4 is not valid CSV" in err
    assert not Organisation.objects.exists()


def test_a_database_error_while_writing_leaves_nothing_half_imported(
    tmp_path: Path, db: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from accounts import gias

    f.SchoolFactory(urn="104698", name="St Marys RC Primary", postcode="L9 1DE")
    before = _stored()

    def fail(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("connection lost")

    monkeypatch.setattr(gias, "_update_rows", fail)  # after trusts and new schools went in
    with pytest.raises(RuntimeError):
        import_schools(gias_file(tmp_path, MARYS, ACADEMY, SPECIAL))

    assert _stored() == before
    assert not Organisation.objects.filter(kind="trust").exists()


# --- Names --------------------------------------------------------------------------------


def test_line_breaks_and_runs_of_spaces_in_names_become_single_spaces(
    tmp_path: Path, db: Any
) -> None:
    row = (
        '144873,383,Leeds,4012,"Roundhay  Vale\r\nAcademy ",Academy sponsor led,Open,'
        'Secondary,11,17421,"Pennine Crest\tLearning\xa0Trust",Wetherby Road,LS8 2JU'
    )
    result = import_schools(gias_file(tmp_path, row))

    assert result.errors == []
    assert Organisation.objects.get(urn="144873").name == "Roundhay Vale Academy"
    assert Organisation.objects.get(kind="trust").name == "Pennine Crest Learning Trust"


# --- Encodings ----------------------------------------------------------------------------


def test_a_utf16_file_with_a_byte_order_mark_is_read(tmp_path: Path, db: Any) -> None:
    path = gias_file(tmp_path, MARYS, YSGOL, encoding="utf-16")
    assert path.read_bytes()[:2] == b"\xff\xfe"

    out, err = run(path)

    assert "(utf-16)" in out
    assert Organisation.objects.get(urn="104698").name == "St Mary’s Catholic Primary School"
    assert Organisation.objects.get(urn="401937").name == "Ysgol Gymraeg Trelái"
    assert err == ""


def test_excels_unicode_text_export_utf16_with_tabs_is_read(db: Any) -> None:
    lines = [HEADER, MARYS.replace('"Rice Lane, Walton"', "Rice Lane"), YSGOL]
    data = "\r\n".join(line.replace(",", "\t") for line in lines).encode("utf-16")

    result = import_schools(io.BytesIO(data))

    assert (result.created, result.errors, result.encoding) == (2, [], "utf-16")
    assert Organisation.objects.get(urn="104698").postcode == "L9 1DE"


def test_windows_1252_behind_a_utf8_byte_order_mark_is_refused_with_what_to_do(
    tmp_path: Path, db: Any
) -> None:
    f.SchoolFactory(urn="104698", name="St Marys RC Primary")
    before = _stored()
    path = tmp_path / "edubase.csv"
    path.write_bytes(
        b"\xef\xbb\xbf" + "\r\n".join([HEADER, YSGOL, MARYS]).encode("cp1252") + b"\r\n"
    )  # Trelái's á is one cp1252 byte (0xE1) on line 2

    with pytest.raises(CommandError) as raised:
        run(path)

    message = str(raised.value)
    assert (
        "Line 2: the file starts with a UTF-8 byte-order mark but this line is not UTF-8" in message
    )
    assert "CSV UTF-8" in message  # what to do
    assert _stored() == before


def test_the_bad_byte_is_found_on_its_line_in_a_large_file(tmp_path: Path, db: Any) -> None:
    rows = [MOORTOWN.replace("107412", f"{300000 + i}") for i in range(20_000)]
    path = tmp_path / "edubase.csv"
    body = "\r\n".join([HEADER, *rows, MARYS]).encode("cp1252")
    path.write_bytes(b"\xef\xbb\xbf" + body + b"\r\n")  # ~2 MB: the ’ is past the first chunk

    with pytest.raises(CommandError, match="Line 20002: "):
        run(path)


def test_utf16_without_a_byte_order_mark_is_refused_with_what_to_do(
    tmp_path: Path, db: Any
) -> None:
    path = tmp_path / "edubase.csv"
    path.write_bytes("\r\n".join([HEADER, YSGOL]).encode("utf-16-le"))

    with pytest.raises(CommandError, match="UTF-16 text without a byte-order mark") as raised:
        run(path)

    assert "CSV UTF-8" in str(raised.value)
    assert not Organisation.objects.exists()


def test_a_plain_utf8_file_is_read_as_utf8_and_cp1252_stays_the_default(
    tmp_path: Path, db: Any
) -> None:
    utf8 = import_schools(gias_file(tmp_path, YSGOL, encoding="utf-8"))
    assert utf8.encoding == "utf-8"
    cp1252 = import_schools(io.BytesIO(f"{HEADER}\r\n{MARYS}\r\n".encode("cp1252")))
    assert cp1252.encoding == "cp1252"
    assert Organisation.objects.get(urn="104698").name == "St Mary’s Catholic Primary School"


# --- Nation ---------------------------------------------------------------------------------


def test_welsh_schools_are_told_apart_by_their_gias_region(db: Any) -> None:
    run(SAMPLE)

    assert Organisation.objects.get(name="Ysgol Gymraeg Trelái").nation == "wales"
    assert set(
        Organisation.objects.filter(kind="school")
        .exclude(name="Ysgol Gymraeg Trelái")
        .values_list("nation", flat=True)
    ) == {"england"}


def test_a_nation_set_by_hand_survives_a_file_that_does_not_say(tmp_path: Path, db: Any) -> None:
    # A cross-border school set to Scotland by hand; this extract has no region column,
    # and a later full one carries "Not applicable".
    f.SchoolFactory(urn="104698", nation="scotland")
    import_schools(gias_file(tmp_path, MARYS))
    assert Organisation.objects.get(urn="104698").nation == "scotland"

    header = f"{HEADER},GOR (name)"
    import_schools(gias_file(tmp_path, f"{MARYS},Not Applicable", f"{YSGOL},", header=header))
    assert Organisation.objects.get(urn="104698").nation == "scotland"
    assert Organisation.objects.get(urn="401937").nation == "england"  # new: the default

    import_schools(
        gias_file(tmp_path, f"{MARYS},North West", f"{YSGOL},Wales (pseudo)", header=header)
    )
    assert Organisation.objects.get(urn="104698").nation == "england"
    assert Organisation.objects.get(urn="401937").nation == "wales"
