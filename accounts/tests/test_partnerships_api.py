from accounts import stages
from accounts.models import Partnership, StageChange
from accounts.stages import register_readiness_check


def _transition(world, user, partnership, stage, **extra):
    return world.client(user).post(
        f"/api/v1/partnerships/{partnership.pk}/transition/", {"stage": stage, **extra}
    )


def test_an_account_manager_opens_an_enquiry_with_a_school_from_the_directory(world):
    response = world.client("s1_am").post(
        "/api/v1/partnerships/",
        {"school": world.school_b.pk, "products": [world.prod1.pk], "onsite_hours_per_term": "6"},
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["supplier"] == world.s1.pk
    assert body["stage"] == "enquiry"
    assert body["account_manager"] == world.s1_am.pk
    assert body["stage_history"][0]["to_stage"] == "enquiry"
    # The school lead now sees it, and the other supplier still does not.
    assert world.client("b_lead").get(f"/api/v1/partnerships/{body['id']}/").status_code == 200
    assert world.client("s2_am").get(f"/api/v1/partnerships/{body['id']}/").status_code == 404


def test_a_second_live_partnership_with_the_same_school_is_refused(world):
    response = world.client("s1_am").post("/api/v1/partnerships/", {"school": world.school_a.pk})
    assert response.status_code == 400
    assert "already has a live partnership" in response.json()["school"][0]


def test_another_suppliers_product_cannot_be_attached(world):
    response = world.client("s1_am").patch(
        f"/api/v1/partnerships/{world.p_a1.pk}/", {"products": [world.prod2.pk]}
    )
    assert response.status_code == 400
    assert world.p_a1.products.get() == world.prod1


def test_bad_agreement_values_are_field_errors_and_nothing_changes(world):
    response = world.client("s1_am").patch(
        f"/api/v1/partnerships/{world.p_a1.pk}/",
        {
            "first_response_target_hours": 50,
            "resolution_target_hours": 10,
            "contract_start": "2026-09-01",
            "contract_end": "2026-01-01",
            "onsite_hours_per_term": "-3",
        },
    )
    assert response.status_code == 400
    assert "onsite_hours_per_term" in response.json()
    world.p_a1.refresh_from_db()
    assert world.p_a1.first_response_target_hours == 8


def test_contract_dates_out_of_order_are_refused(world):
    response = world.client("s1_am").patch(
        f"/api/v1/partnerships/{world.p_a1.pk}/",
        {"contract_start": "2026-09-01", "contract_end": "2026-01-01"},
    )
    assert response.status_code == 400
    assert response.json()


def test_school_side_and_support_agents_may_read_but_not_change_a_partnership(world):
    for user in ("s1_agent", "a_lead", "trust_lead", "a_teacher"):
        response = world.client(user).patch(
            f"/api/v1/partnerships/{world.p_a1.pk}/", {"onsite_hours_per_term": "99"}
        )
        assert response.status_code == 403, user
        assert _transition(world, user, world.p_a1, "technical_review").status_code == 403
    world.p_a1.refresh_from_db()
    assert world.p_a1.stage == "enquiry"


def test_an_illegal_move_is_refused_with_the_allowed_stages(world):
    response = _transition(world, "s1_am", world.p_a1, "whole_school")
    assert response.status_code == 400
    assert response.json()["allowed_stages"] == ["technical_review", "paused", "ended"]
    assert "cannot move" in response.json()["stage"][0]


def test_the_pilot_needs_a_ready_technical_survey(world):
    assert _transition(world, "s1_am", world.p_a1, "technical_review").status_code == 200
    response = _transition(world, "s1_am", world.p_a1, "pilot")
    assert response.status_code == 400
    assert "technical survey" in response.json()["stage"][0]
    world.p_a1.refresh_from_db()
    assert world.p_a1.stage == "technical_review"


def test_readiness_evidence_opens_the_gate(world, monkeypatch):
    monkeypatch.setattr(stages, "_readiness_checks", [])
    register_readiness_check(lambda p: p.pk == world.p_a1.pk)
    _transition(world, "s1_am", world.p_a1, "technical_review")
    response = _transition(world, "s1_am", world.p_a1, "pilot")
    assert response.status_code == 200
    assert response.json()["overrides"] == []


def test_only_a_supplier_admin_may_override_the_gate_and_the_school_sees_why(world):
    _transition(world, "s1_am", world.p_a1, "technical_review")
    denied = _transition(world, "s1_am", world.p_a1, "pilot", override_reason="trust me")
    assert denied.status_code == 403
    blank = _transition(world, "s1_admin", world.p_a1, "pilot", override_reason="   ")
    assert blank.status_code == 400
    ok = _transition(
        world, "s1_admin", world.p_a1, "pilot", override_reason="Survey done on paper in July"
    )
    assert ok.status_code == 200
    seen_by_school = world.client("a_lead").get(f"/api/v1/partnerships/{world.p_a1.pk}/").json()
    assert seen_by_school["stage"] == "pilot"
    [override] = seen_by_school["overrides"]
    assert override["reason"] == "Survey done on paper in July"
    assert override["by"] == "S1 Admin"
    change = StageChange.objects.get(partnership=world.p_a1, to_stage="pilot")
    assert change.is_override and change.by == world.s1_admin


def test_a_paused_partnership_resumes_where_it_was(world):
    _transition(world, "s1_am", world.p_a1, "technical_review")
    paused = _transition(world, "s1_am", world.p_a1, "paused").json()
    assert paused["allowed_next_stages"] == ["technical_review", "ended"]
    resumed = _transition(world, "s1_am", world.p_a1, "technical_review")
    assert resumed.status_code == 200
    assert [c["to_stage"] for c in resumed.json()["stage_history"]] == [
        "technical_review",
        "paused",
        "technical_review",
    ]


def test_an_ended_partnership_goes_nowhere_and_a_new_one_may_start(world):
    _transition(world, "s1_am", world.p_a1, "ended")
    assert _transition(world, "s1_am", world.p_a1, "enquiry").json()["allowed_stages"] == []
    again = world.client("s1_am").post("/api/v1/partnerships/", {"school": world.school_a.pk})
    assert again.status_code == 201
    assert Partnership.objects.filter(supplier=world.s1, school=world.school_a).count() == 2


def test_the_stage_cannot_be_written_directly(world):
    world.client("s1_am").patch(f"/api/v1/partnerships/{world.p_a1.pk}/", {"stage": "renewal"})
    world.p_a1.refresh_from_db()
    assert world.p_a1.stage == "enquiry"


def test_partnerships_filter_by_stage_and_school_and_order_by_school_name(world):
    client = world.client("s2_am")
    _transition(world, "s2_am", world.p_b2, "technical_review")
    by_stage = client.get("/api/v1/partnerships/", {"stage": "technical_review"}).json()
    assert [r["id"] for r in by_stage["results"]] == [world.p_b2.pk]
    by_school = client.get("/api/v1/partnerships/", {"school": world.school_a.pk}).json()
    assert [r["id"] for r in by_school["results"]] == [world.p_a2.pk]
    ordered = client.get("/api/v1/partnerships/", {"ordering": "-school__name"}).json()
    assert [r["school_name"] for r in ordered["results"]] == ["Beacon Academy", "Ashfield Primary"]
    search = client.get("/api/v1/partnerships/", {"search": "100002"}).json()
    assert [r["id"] for r in search["results"]] == [world.p_b2.pk]
