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


def test_a_school_lead_adds_staff_straight_to_one_of_the_schools_partnerships(world):
    response = world.client("a_lead").post(
        "/api/v1/contacts/",
        {"partnership": world.p_a1.pk, "first_name": "Nia", "email": "nia@ashfield.sch.uk"},
    )
    assert response.status_code == 201, response.json()
    contact = Contact.objects.get(pk=response.json()["id"])
    assert contact.school == world.school_a
    assert PartnershipContact.objects.filter(partnership=world.p_a1, contact=contact).exists()
    assert world.client("s1_am").get(f"/api/v1/contacts/{contact.pk}/").status_code == 200
    assert world.client("s2_am").get(f"/api/v1/contacts/{contact.pk}/").status_code == 404


def test_a_supplier_cannot_create_or_take_over_a_staff_record_and_learns_nothing(world):
    """Suppliers propose (contact-proposals/); a direct add answers the same 403 whether
    or not the school holds the address, so it cannot be used to probe for staff."""
    existing = world.c_a_dsl  # s2's contact at school A, tagged dsl
    client = world.client("s1_am")
    answers = []
    for email in (existing.email.upper(), "nobody-yet@ashfield.sch.uk"):
        response = client.post(
            "/api/v1/contacts/",
            {"partnership": world.p_a1.pk, "first_name": "X", "email": email},
        )
        answers.append((response.status_code, response.json()))
    assert answers[0] == answers[1]
    assert answers[0][0] == 403 and "contact-proposals" in answers[0][1]["detail"]
    assert not PartnershipContact.objects.filter(partnership=world.p_a1, contact=existing).exists()
    assert not Contact.objects.filter(email="nobody-yet@ashfield.sch.uk").exists()
    assert client.get(f"/api/v1/contacts/{existing.pk}/").status_code == 404


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


def test_only_the_school_edits_its_staff_record_not_a_linked_supplier(world):
    url = f"/api/v1/contacts/{world.c_a_it.pk}/"
    before = Contact.objects.get(pk=world.c_a_it.pk)
    for user in ("s1_am", "s1_admin", "s1_agent"):
        r = world.client(user).patch(url, {"email": "attacker@elsewhere.example"})
        assert r.status_code == 403, user
    assert Contact.objects.get(pk=world.c_a_it.pk).email == before.email
    ok = world.client("a_lead").patch(url, {"job_title": "Network manager", "tags": ["it_lead"]})
    assert ok.status_code == 200 and ok.json()["job_title"] == "Network manager"
    moved = world.client("a_lead").patch(url, {"school": world.school_b.pk})
    assert moved.status_code == 400


def test_another_suppliers_partnership_in_a_filter_is_like_a_missing_one(world):
    client = world.client("s1_am")
    foreign = client.get("/api/v1/contacts/", {"partnership": world.p_a2.pk})
    missing = client.get("/api/v1/contacts/", {"partnership": 999999})
    assert foreign.status_code == missing.status_code == 400
    assert foreign.json() == missing.json() or set(foreign.json()) == set(missing.json())
    own = client.get("/api/v1/contacts/", {"partnership": world.p_a1.pk})
    assert own.status_code == 200 and own.json()["count"] >= 1


def test_contacts_filter_by_tag_and_partnership(world):
    client = world.client("a_lead")
    it = client.get("/api/v1/contacts/", {"tag": "it_lead"}).json()["results"]
    assert [c["id"] for c in it] == [world.c_a_it.pk]
    linked = client.get("/api/v1/contacts/", {"partnership": world.p_a2.pk}).json()["results"]
    assert [c["id"] for c in linked] == [world.c_a_dsl.pk]
