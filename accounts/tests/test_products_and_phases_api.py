from accounts.models import PartnershipContact, Product, TrialPhase


def test_a_supplier_admin_manages_the_product_catalogue(world):
    client = world.client("s1_admin")
    created = client.post("/api/v1/products/", {"name": "Acme Science"})
    assert created.status_code == 201
    assert created.json()["supplier"] == world.s1.pk
    duplicate = client.post("/api/v1/products/", {"name": "Acme Science"})
    assert duplicate.status_code == 400
    assert "name" in duplicate.json()
    pk = created.json()["id"]
    assert (
        client.patch(f"/api/v1/products/{pk}/", {"is_active": False}).json()["is_active"] is False
    )
    assert client.delete(f"/api/v1/products/{pk}/").status_code == 204


def test_account_managers_and_schools_cannot_change_products(world):
    assert world.client("s1_am").post("/api/v1/products/", {"name": "X"}).status_code == 403
    url = f"/api/v1/products/{world.prod1.pk}/"
    assert world.client("a_lead").patch(url, {"name": "Hacked"}).status_code == 403
    assert Product.objects.get(pk=world.prod1.pk).name == "Acme Maths"


def test_a_product_in_use_cannot_be_deleted(world):
    response = world.client("s1_admin").delete(f"/api/v1/products/{world.prod1.pk}/")
    assert response.status_code == 400
    assert "inactive" in response.json()["product"][0]


def test_an_account_manager_plans_a_pilot_with_a_cohort_and_criteria(world):
    response = world.client("s1_am").post(
        "/api/v1/trial-phases/",
        {
            "partnership": world.p_a1.pk,
            "kind": "pilot",
            "start_date": "2027-01-06",
            "end_date": "2027-03-27",
            "cohort": [world.c_a_teacher.pk, world.c_a_it.pk],
            "intent": "Year 5 maths homework completion",
            "criteria": [{"description": "80% of pupils log in weekly", "target": "80%"}],
        },
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert sorted(body["cohort"]) == sorted([world.c_a_teacher.pk, world.c_a_it.pk])
    assert body["criteria"][0]["description"] == "80% of pupils log in weekly"
    phase = TrialPhase.objects.get(pk=body["id"])
    assert phase.criteria.count() == 1


def test_a_cohort_of_school_staff_becomes_linked_to_the_partnership(world):
    response = world.client("a_lead").get("/api/v1/contacts/", {"partnership": world.p_a1.pk})
    before = {c["id"] for c in response.json()["results"]}
    assert world.c_a_unlinked.pk not in before
    # The school lead's unlinked colleague cannot be put into a supplier's cohort: the
    # supplier cannot see them until the school or the supplier links them.
    refused = world.client("s1_am").patch(
        f"/api/v1/trial-phases/{world.ph_a1.pk}/", {"cohort": [world.c_a_unlinked.pk]}
    )
    assert refused.status_code == 400
    assert not PartnershipContact.objects.filter(contact=world.c_a_unlinked).exists()


def test_a_phase_that_ends_before_it_starts_is_refused(world):
    response = world.client("s1_am").post(
        "/api/v1/trial-phases/",
        {
            "partnership": world.p_a1.pk,
            "kind": "pilot",
            "start_date": "2027-03-01",
            "end_date": "2027-01-01",
        },
    )
    assert response.status_code == 400
    assert "end_date" in response.json()


def test_schools_read_phases_but_do_not_edit_them(world):
    url = f"/api/v1/trial-phases/{world.ph_a1.pk}/"
    assert world.client("a_lead").get(url).status_code == 200
    assert world.client("a_lead").patch(url, {"intent": "x"}).status_code == 403
    assert world.client("a_teacher").get(url).status_code == 200
