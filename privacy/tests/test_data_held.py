"""The school's "data held" page, one person's export page and JSON, the erase
confirmation, and the people API, as each role."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from accounts.tests import factories as f


@pytest.fixture
def login(world: Any) -> Callable[[str], Client]:
    def make(name: str) -> Client:
        client = Client()
        client.force_login(world.users[name])
        return client

    return make


def test_the_lead_sees_who_holds_each_member_of_staff_and_the_retention(
    world: Any, login: Any
) -> None:
    page = login("a_lead").get(reverse("data-held"))
    assert page.status_code == 200
    html = page.content.decode()
    assert "<table" not in html  # cards, readable at 375px
    ivan = html[html.index(f'id="held-{world.c_a_it.pk}"') :]
    ivan = ivan[: ivan.index("</li>")]
    assert "Acme Learning" in ivan and "Brightboard" not in ivan
    assert "Visit" in ivan  # v_a1 is the latest contact with Ivan
    una = html[html.index(f'id="held-{world.c_a_unlinked.pk}"') :]
    assert "Held by the school only" in una[: una.index("</li>")]
    assert "3 years" in html and "90 days" in html
    assert reverse("data-held-erase", args=[world.c_a_it.pk]) in html
    assert 'href="/school/data-held/"' in html or reverse("data-held") in html  # nav link


def test_the_page_reads_a_constant_number_of_queries(world: Any, login: Any) -> None:
    client = login("a_lead")
    client.get(reverse("data-held"))
    with CaptureQueriesContext(connection) as few:
        assert client.get(reverse("data-held")).status_code == 200
    for i in range(25):
        contact = f.ContactFactory(school=world.school_a, first_name=f"Extra{i}")
        f.PartnershipContactFactory(partnership=world.p_a1, contact=contact)
    with CaptureQueriesContext(connection) as many:
        page = client.get(reverse("data-held"))
    assert page.content.decode().count('class="card"') >= 29
    assert len(many) == len(few)


def test_the_trust_lead_reads_and_exports_but_does_not_erase(world: Any, login: Any) -> None:
    client = login("trust_lead")
    html = client.get(reverse("data-held")).content.decode()
    assert world.c_a_it.first_name in html
    assert reverse("data-held-erase", args=[world.c_a_it.pk]) not in html
    assert client.get(reverse("data-held-person", args=[world.c_a_it.pk])).status_code == 200
    erase = reverse("data-held-erase", args=[world.c_a_it.pk])
    assert client.post(erase).status_code == 403
    world.c_a_it.refresh_from_db()
    assert world.c_a_it.erased_at is None


def test_teachers_and_suppliers_do_not_get_the_school_page(world: Any, login: Any) -> None:
    for who in ("a_teacher", "s1_admin"):
        assert login(who).get(reverse("data-held")).status_code == 403


def test_another_school_gets_404(world: Any, login: Any) -> None:
    client = login("b_lead")
    pk = world.c_a_it.pk
    assert client.get(reverse("data-held-person", args=[pk])).status_code == 404
    assert client.post(reverse("data-held-erase", args=[pk])).status_code == 404
    assert client.get(reverse("data-held"), {"school": world.school_a.pk}).status_code == 404


def test_export_page_and_json_download(world: Any, login: Any) -> None:
    client = login("a_lead")
    url = reverse("data-held-person", args=[world.c_a_teacher.pk])
    page = client.get(url)
    assert page.status_code == 200 and "Ticket t_a1" in page.content.decode()
    assert "Message m_a1_internal" not in page.content.decode()
    download = client.get(url, {"format": "json"})
    assert download["Content-Disposition"].startswith("attachment;")
    data = json.loads(download.content)
    assert data["contacts"][0]["id"] == world.c_a_teacher.pk


def test_a_supplier_exports_its_own_data_from_the_partnership_page(world: Any, login: Any) -> None:
    client = login("s1_admin")
    partnership_page = client.get(reverse("partnership", args=[world.p_a1.pk])).content.decode()
    url = reverse("data-held-person", args=[world.c_a_it.pk])
    assert url in partnership_page
    page = client.get(url).content.decode()
    assert "Note cn_s1_it" in page
    data = json.loads(client.get(url, {"format": "json"}).content)
    assert "tags" not in data["contacts"][0]
    # The supplier may not erase, and another supplier does not see the person at all.
    assert client.post(reverse("data-held-erase", args=[world.c_a_it.pk])).status_code == 403
    assert login("s2_admin").get(url).status_code == 404


def test_the_lead_erases_after_a_confirmation(world: Any, login: Any) -> None:
    client = login("a_lead")
    url = reverse("data-held-erase", args=[world.c_a_it.pk])
    confirm = client.get(url)
    assert confirm.status_code == 200 and "cannot be undone" in confirm.content.decode()
    world.c_a_it.refresh_from_db()
    assert world.c_a_it.erased_at is None
    done = client.post(url, follow=True)
    assert f"Erased person #{world.c_a_it.pk}" in done.content.decode()
    world.c_a_it.refresh_from_db()
    assert world.c_a_it.erased_at is not None


def test_the_people_api(world: Any) -> None:
    pk = world.c_a_it.pk
    access = f"/api/v1/people/{pk}/subject-access/"
    erase = f"/api/v1/people/{pk}/erase/"
    assert world.client("s1_admin").get(access).json()["scope"] == "supplier"
    assert world.client("b_lead").get(access).status_code == 404
    assert world.client("s1_admin").post(erase).status_code == 403
    assert world.client("s2_admin").post(erase).status_code == 404
    assert world.client("b_lead").post(erase).status_code == 404
    own = f"/api/v1/people/{world.c_a_teacher.pk}/erase/"
    assert world.client("a_teacher").post(own).status_code == 403
    answer = world.client("a_lead").post(erase)
    assert answer.status_code == 200 and answer.json()["contact_id"] == pk
    again = world.client("a_lead").post(erase)
    assert again.status_code == 400
