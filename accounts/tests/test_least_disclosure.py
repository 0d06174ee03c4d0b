"""Least disclosure (issue 14, item 5): supplier staff see a contact's name, work email and
role for the partnerships they serve; the school's stakeholder tags stay the school's."""

from accounts.models import Contact


def test_a_supplier_sees_name_email_and_role_but_not_the_schools_tags(world):
    it = world.contacts["c_a_it"]
    body = world.client("s1_am").get(f"/api/v1/contacts/{it.pk}/").json()
    assert body["email"] == it.email
    assert body["first_name"] == "Ivan"
    assert body["tags"] is None
    assert body["user"] is None
    listed = world.client("s1_am").get("/api/v1/contacts/").json()["results"]
    assert listed and all(row["tags"] is None for row in listed)


def test_the_school_lead_still_sees_the_tags(world):
    it = world.contacts["c_a_it"]
    body = world.client("a_lead").get(f"/api/v1/contacts/{it.pk}/").json()
    assert body["tags"] == ["it_lead"]


def test_a_supplier_cannot_find_who_holds_a_tag_by_filtering(world):
    supplier = world.client("s1_am").get("/api/v1/contacts/?tag=it_lead").json()
    assert supplier["results"] == []
    lead = world.client("a_lead").get("/api/v1/contacts/?tag=it_lead").json()
    assert world.contacts["c_a_it"].pk in {row["id"] for row in lead["results"]}


def test_the_supplier_partnership_page_shows_no_tags(world, client):
    client.force_login(world.users["s1_am"])
    page = client.get(f"/partnerships/{world.p_a1.pk}/").content.decode()
    # The contact's own entry (the propose form below lists every tag as a choice).
    item = page.split(f'id="contact-{world.contacts["c_a_it"].pk}"', 1)[1].split("</li>", 1)[0]
    assert "Ivan" in item
    assert "it_lead" not in item and "IT lead" not in item


def test_proposing_an_address_the_school_holds_returns_nothing_of_the_record(world):
    # Held by school A, linked to no partnership, with tags only the school set.
    dsl = world.contacts["c_a_unlinked"]
    Contact.objects.filter(pk=dsl.pk).update(first_name="Dina", tags=",dsl,senior_leader,")
    response = world.client("s1_am").post(
        "/api/v1/contact-proposals/",
        {
            "partnership": world.p_a1.pk,
            "first_name": "Someone",
            "last_name": "Else",
            "email": dsl.email,
        },
    )
    assert response.status_code in (200, 201, 202), response.content
    text = response.content.decode()
    assert "Dina" not in text and "dsl" not in text and "senior_leader" not in text
    assert Contact.objects.get(pk=dsl.pk).first_name == "Dina"
