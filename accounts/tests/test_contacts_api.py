from accounts.models import Contact, PartnershipContact


def test_a_school_lead_adds_staff_with_stakeholder_tags(world):
    response = world.client("a_lead").post(
        "/api/v1/contacts/",
        {
            "school": world.school_a.pk,
            "first_name": "Sam",
            "last_name": "Okafor",
            "email": "S.Okafor@Ashfield.sch.uk",
            "tags": ["senco", "senior_leader", "senco"],
        },
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["email"] == "s.okafor@ashfield.sch.uk"
    assert body["tags"] == ["senco", "senior_leader"]
    # No supplier sees a contact until it is linked to one of its partnerships.
    assert world.client("s1_am").get(f"/api/v1/contacts/{body['id']}/").status_code == 404


def test_unknown_tags_and_missing_names_are_field_errors(world):
    response = world.client("a_lead").post(
        "/api/v1/contacts/",
        {"school": world.school_a.pk, "email": "x@ashfield.sch.uk", "tags": ["headmaster"]},
    )
    assert response.status_code == 400
    assert {"tags", "first_name"} <= set(response.json())


def test_a_supplier_adds_a_contact_through_its_partnership_and_sees_only_that(world):
    response = world.client("s1_am").post(
        "/api/v1/contacts/",
        {"partnership": world.p_a1.pk, "first_name": "Nia", "email": "nia@ashfield.sch.uk"},
    )
    assert response.status_code == 201, response.json()
    contact = Contact.objects.get(pk=response.json()["id"])
    assert contact.school == world.school_a
    assert PartnershipContact.objects.filter(partnership=world.p_a1, contact=contact).exists()
    assert world.client("s2_am").get(f"/api/v1/contacts/{contact.pk}/").status_code == 404
    assert world.client("a_lead").get(f"/api/v1/contacts/{contact.pk}/").status_code == 200


def test_a_supplier_adding_someone_the_school_already_holds_links_the_same_record(world):
    existing = world.c_a_unlinked
    response = world.client("s1_am").post(
        "/api/v1/contacts/",
        {"partnership": world.p_a1.pk, "first_name": "Una", "email": existing.email.upper()},
    )
    assert response.status_code == 201
    assert response.json()["id"] == existing.pk
    assert Contact.objects.filter(school=world.school_a, email=existing.email).count() == 1


def test_a_supplier_cannot_add_staff_to_a_school_directly(world):
    response = world.client("s1_am").post(
        "/api/v1/contacts/",
        {"school": world.school_a.pk, "first_name": "Zed", "email": "zed@ashfield.sch.uk"},
    )
    assert response.status_code == 403


def test_a_duplicate_email_at_the_same_school_is_a_field_error(world):
    response = world.client("a_lead").post(
        "/api/v1/contacts/",
        {"school": world.school_a.pk, "first_name": "Ivan", "email": world.c_a_it.email},
    )
    assert response.status_code == 400
    assert "email" in response.json()


def test_only_the_school_lead_erases_a_staff_record(world):
    url = f"/api/v1/contacts/{world.c_a_it.pk}/"
    for user in ("s1_am", "s1_admin", "trust_lead"):
        assert world.client(user).delete(url).status_code == 403, user
    assert world.client("a_teacher").delete(url).status_code == 404  # not theirs to see
    assert world.client("a_lead").delete(url).status_code == 204
    assert not Contact.objects.filter(pk=world.c_a_it.pk).exists()


def test_a_linked_supplier_may_correct_a_contact_but_not_move_it(world):
    url = f"/api/v1/contacts/{world.c_a_it.pk}/"
    ok = world.client("s1_am").patch(url, {"job_title": "Network manager", "tags": ["it_lead"]})
    assert ok.status_code == 200
    assert ok.json()["job_title"] == "Network manager"
    moved = world.client("s1_am").patch(url, {"school": world.school_a.pk})
    assert moved.status_code == 400
    assert world.client("s1_agent").patch(url, {"job_title": "x"}).status_code == 403


def test_contacts_filter_by_tag_and_partnership(world):
    client = world.client("a_lead")
    it = client.get("/api/v1/contacts/", {"tag": "it_lead"}).json()["results"]
    assert [c["id"] for c in it] == [world.c_a_it.pk]
    linked = client.get("/api/v1/contacts/", {"partnership": world.p_a2.pk}).json()["results"]
    assert [c["id"] for c in linked] == [world.c_a_dsl.pk]
