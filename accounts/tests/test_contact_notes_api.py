"""A supplier's own notes on the school's staff it works with: its staff only, and the
school's record is untouched."""

from __future__ import annotations

from accounts.models import SupplierContactNote

URL = "/api/v1/contact-notes/"


def test_supplier_staff_keep_a_note_on_a_contact_and_the_record_is_untouched(world):
    contact = world.c_a_teacher  # linked to s1's p_a1
    before = (contact.first_name, contact.email, contact.tags, contact.updated_at)
    response = world.client("s1_am").post(
        URL, {"contact": contact.pk, "body": "Prefers a call after 3:30."}
    )
    assert response.status_code == 201, response.json()
    assert response.json()["supplier"] == world.s1.pk
    assert response.json()["updated_by_name"] == "S1 Am"
    contact.refresh_from_db()
    assert (contact.first_name, contact.email, contact.tags, contact.updated_at) == before
    # A colleague (any role at the supplier) reads and edits it.
    note_id = response.json()["id"]
    agent = world.client("s1_agent")
    response = agent.patch(f"{URL}{note_id}/", {"body": "Calls after 3:30 only."})
    assert response.status_code == 200
    assert response.json()["updated_by_name"] == "S1 Agent"
    listed = agent.get(URL, {"contact": contact.pk}).json()["results"]
    assert [n["body"] for n in listed] == ["Calls after 3:30 only."]


def test_the_school_and_other_suppliers_never_see_a_suppliers_note(world):
    note = world.cn_s2_dsl  # s2 on c_a_dsl
    for user in ("s1_admin", "a_lead", "trust_lead", "a_teacher"):
        client = world.client(user)
        assert client.get(f"{URL}{note.pk}/").status_code == 404, user
        assert client.patch(f"{URL}{note.pk}/", {"body": "x"}).status_code == 404, user
        assert client.delete(f"{URL}{note.pk}/").status_code == 404, user
    assert world.client("a_lead").get(URL).json()["results"] == []
    note.refresh_from_db()
    assert note.body == "Note cn_s2_dsl"


def test_a_note_on_another_suppliers_contact_is_refused_like_a_missing_one(world):
    response = world.client("s1_am").post(URL, {"contact": world.c_a_dsl.pk, "body": "x"})
    assert response.status_code == 400 and "does not exist" in str(response.json()["contact"])


def test_school_staff_cannot_write_notes(world):
    response = world.client("a_lead").post(URL, {"contact": world.c_a_it.pk, "body": "x"})
    assert response.status_code == 403


def test_one_note_per_supplier_and_contact_and_an_empty_note_is_refused(world):
    response = world.client("s1_am").post(URL, {"contact": world.c_a_it.pk, "body": "Again"})
    assert response.status_code == 400 and "PATCH" in response.json()["contact"][0]
    response = world.client("s1_am").post(URL, {"contact": world.c_a_teacher.pk, "body": ""})
    assert response.status_code == 400 and "body" in response.json()


def test_a_note_cannot_move_to_another_contact(world):
    response = world.client("s1_am").patch(
        f"{URL}{world.cn_s1_it.pk}/", {"contact": world.c_a_teacher.pk}
    )
    assert response.status_code == 400 and "contact" in response.json()


def test_filtering_by_a_competitors_partnership_finds_nothing(world):
    # c_a_dsl is linked to s2's p_a2; s2's note must come back only for s2's own id.
    s2 = world.client("s2_am")
    assert [n["id"] for n in s2.get(URL, {"partnership": world.p_a2.pk}).json()["results"]] == [
        world.cn_s2_dsl.pk
    ]
    assert s2.get(URL, {"partnership": world.p_a1.pk}).json()["results"] == []


def test_a_supplier_deletes_its_own_note(world):
    response = world.client("s1_admin").delete(f"{URL}{world.cn_s1_it.pk}/")
    assert response.status_code == 204
    assert not SupplierContactNote.objects.filter(pk=world.cn_s1_it.pk).exists()
