from __future__ import annotations

from io import StringIO
from itertools import pairwise
from typing import Any

import pytest
from django.core.management import call_command
from django.db.models import Model
from rest_framework.test import APIClient

from accounts.demo import DEMO_PASSWORD
from accounts.models import (
    Contact,
    Membership,
    Organisation,
    Partnership,
    PartnershipContact,
    Product,
    Role,
    Stage,
    StageChange,
    SuccessCriterion,
    TrialPhase,
    User,
)
from accounts.stages import TRANSITIONS
from accounts.tests import factories as f

MODELS: list[type[Model]] = [
    Organisation,
    User,
    Membership,
    Contact,
    Product,
    Partnership,
    Partnership.products.through,
    PartnershipContact,
    StageChange,
    TrialPhase,
    TrialPhase.cohort.through,
    SuccessCriterion,
]
AT_PILOT_OR_BEYOND = {Stage.PILOT, Stage.EXPANSION, Stage.WHOLE_SCHOOL, Stage.RENEWAL}


def seed(*args: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("seed_demo", "--public-password-ok", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_seed_demo_refuses_with_debug_off_unless_told_the_password_is_public(db: Any) -> None:
    from django.core.management import CommandError

    with pytest.raises(CommandError, match="DEBUG"):
        call_command("seed_demo", stdout=StringIO())
    assert not User.objects.exists()


def row_counts() -> dict[str, int]:
    return {m._meta.label: m._default_manager.count() for m in MODELS}


def reached_pilot(p: Partnership) -> bool:
    return p.stage_changes.filter(to_stage=Stage.PILOT).exists()


def test_seed_demo_creates_three_suppliers_forty_schools_and_two_trusts(db: Any) -> None:
    seed()
    orgs = Organisation.objects
    assert orgs.filter(kind="supplier").count() == 3
    assert orgs.filter(kind="trust").count() == 2
    schools = orgs.filter(kind="school")
    assert schools.count() == 40
    assert len(set(schools.values_list("urn", flat=True))) == 40
    assert set(schools.values_list("phase", flat=True)) == {"primary", "secondary", "special"}
    assert all(s.local_authority and s.postcode for s in schools)
    for trust in orgs.filter(kind="trust"):
        assert trust.gias_group_code
        assert trust.schools.count() >= 3
    for supplier in orgs.filter(kind="supplier"):
        assert 1 <= supplier.products.count() <= 3


def test_seed_demo_gives_every_role_a_user(db: Any) -> None:
    seed()
    assert set(Membership.objects.values_list("role", flat=True)) == set(Role.values)
    for supplier in Organisation.objects.filter(kind="supplier"):
        roles = set(supplier.memberships.values_list("role", flat=True))
        assert roles == {"supplier_admin", "account_manager", "support_agent"}
    for trust in Organisation.objects.filter(kind="trust"):
        assert trust.memberships.filter(role="trust_lead").exists()
    assert (
        Membership.objects.filter(role="school_lead").values("organisation").distinct().count() > 1
    )
    assert Membership.objects.filter(role="teacher").values("organisation").distinct().count() > 1


def test_seed_demo_puts_partnerships_at_every_stage_with_an_agreement(db: Any) -> None:
    seed()
    assert set(Partnership.objects.values_list("stage", flat=True)) == set(Stage.values)
    for p in Partnership.objects.all():
        assert p.account_manager is not None
        assert p.products.exists()
        assert p.onsite_hours_per_term > 0
        assert p.contract_start and p.contract_end and p.contract_end >= p.contract_start
        assert p.resolution_target_hours >= p.first_response_target_hours


def test_each_partnerships_stage_history_is_a_legal_path_to_its_stage(db: Any) -> None:
    seed()
    for p in Partnership.objects.prefetch_related("stage_changes"):
        changes = list(p.stage_changes.all())
        assert (changes[0].from_stage, changes[0].to_stage) == ("", Stage.ENQUIRY)
        for before, after in pairwise(changes):
            assert after.from_stage == before.to_stage
            assert after.to_stage in TRANSITIONS[before.to_stage]
            assert after.at > before.at
        assert changes[-1].to_stage == p.stage
        assert p.stage_changed_at == changes[-1].at
        if p.stage == Stage.PAUSED:
            assert p.stage_before_pause == changes[-1].from_stage


def test_every_move_into_pilot_is_an_override_with_a_reason(db: Any) -> None:
    # No visits app yet, so no partnership can show a ready technical survey.
    seed()
    into_pilot = StageChange.objects.filter(to_stage=Stage.PILOT)
    assert into_pilot.exists()
    for change in into_pilot.select_related("by"):
        assert change.is_override
        assert change.reason.strip()
        assert change.by.memberships.filter(role="supplier_admin").exists()


def test_partnerships_at_pilot_or_beyond_have_phases_with_cohort_and_criteria(db: Any) -> None:
    seed()
    for p in Partnership.objects.all():
        phases = list(p.trial_phases.all())
        if p.stage in AT_PILOT_OR_BEYOND or reached_pilot(p):
            assert phases, f"{p} has no trial phase"
        else:
            assert not phases
        for phase in phases:
            assert phase.end_date >= phase.start_date
            assert phase.criteria.exists()
            cohort = list(phase.cohort.all())
            assert cohort
            assert all(c.school_id == p.school_id for c in cohort)
            # Cohort members are part of the partnership, as trial_phase_create makes them.
            linked = set(p.contact_links.values_list("contact_id", flat=True))
            assert {c.pk for c in cohort} <= linked


def test_school_staff_carry_stakeholder_tags(db: Any) -> None:
    seed()
    for tag in ("senior_leader", "it_lead", "dsl", "senco", "finance", "teacher"):
        assert Contact.objects.with_tag(tag).exists(), tag
    assert all(c.tags.startswith(",") and c.tags.endswith(",") for c in Contact.objects.all())


def test_running_seed_demo_twice_creates_nothing_new(db: Any) -> None:
    seed()
    before = row_counts()
    out, _ = seed()
    assert row_counts() == before
    assert "nothing new created" in out


def test_if_empty_leaves_an_existing_database_alone(db: Any) -> None:
    f.SupplierFactory(name="Someone's real supplier")
    before = row_counts()
    out, _ = seed("--if-empty")
    assert row_counts() == before
    assert "leaves the database alone" in out
    assert DEMO_PASSWORD not in out  # not the demo's database: no demo logins to offer


def test_if_empty_seeds_an_empty_database(db: Any) -> None:
    seed("--if-empty")
    assert Organisation.objects.filter(kind="school").count() == 40


def test_seed_demo_prints_a_working_login_for_every_role(db: Any) -> None:
    out, _ = seed()
    assert DEMO_PASSWORD in out
    for role in Role.values:
        line = next(line for line in out.splitlines() if line.split()[:1] == [role])
        email = line.split()[1]
        user = User.objects.get(email=email)
        assert user.check_password(DEMO_PASSWORD)
        assert user.memberships.filter(role=role).exists()


def test_each_demo_teacher_sees_at_least_one_partnership_through_the_api(db: Any) -> None:
    seed()
    teachers = User.objects.filter(memberships__role="teacher")
    assert teachers.count() >= 3
    for teacher in teachers:
        client = APIClient()
        client.force_authenticate(teacher)
        response = client.get("/api/v1/partnerships/")
        assert response.status_code == 200
        body = response.json()
        assert body["count"] >= 1, teacher.email
        school_id = teacher.memberships.get().organisation_id
        assert {row["school"] for row in body["results"]} == {school_id}


def test_seed_demo_writes_in_bulk(db: Any, django_assert_max_num_queries: Any) -> None:
    # Hundreds of rows, a bounded number of statements: one read and one insert per table.
    with django_assert_max_num_queries(40):  # 26 on SQLite
        seed()
