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
