"""Each page answers 200 for the roles it serves, 403 for other roles, sends the signed-out
to sign in, and answers 404 for objects outside the user's scope."""

from __future__ import annotations

import pytest

SUPPLIER = {"s1_admin", "s1_am", "s1_agent", "s2_admin", "s2_am", "s2_agent"}
SCHOOL_STAFF = {"a_lead", "a_teacher", "b_lead", "b_teacher"}
LEADS = {"a_lead", "b_lead", "trust_lead"}
EVERYONE = SUPPLIER | SCHOOL_STAFF | {"trust_lead", "outsider"}

PAGES = {
    "/portfolio/": SUPPLIER,
    "/tickets/": SUPPLIER,
    "/visits/": SUPPLIER,
    "/nudges/": SUPPLIER,
    "/feedback/": SCHOOL_STAFF,
    "/my-tickets/": SCHOOL_STAFF,
    "/school/scorecard/": LEADS,
    "/school/tickets/": LEADS,
    "/school/contacts/": LEADS,
    "/trust/": {"trust_lead"},
}


@pytest.mark.parametrize("url", PAGES)
def test_each_page_serves_its_roles_and_refuses_the_others(world, login, url):
    for user in sorted(EVERYONE):
        response = login(user).get(url)
        expected = 200 if user in PAGES[url] else 403
        assert response.status_code == expected, (user, url, response.status_code)


@pytest.mark.parametrize("url", [*PAGES, "/"])
def test_signed_out_people_are_sent_to_sign_in(world, login, url):
    response = login(None).get(url)
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/sign-in/?next=")


@pytest.mark.parametrize(
    ("user", "start"),
    [
        ("s1_am", "/portfolio/"),
        ("s2_agent", "/portfolio/"),
        ("a_teacher", "/feedback/"),
        ("a_lead", "/school/scorecard/"),
        ("trust_lead", "/trust/"),
    ],
)
def test_home_sends_each_role_to_its_main_page(world, login, user, start):
    response = login(user).get("/")
    assert response.status_code == 302
    assert response["Location"] == start


def test_someone_with_no_role_is_told_what_to_do(world, login):
    response = login("outsider").get("/")
    assert response.status_code == 200
    assert b"not part of a supplier, school or trust" in response.content


def test_the_pages_name_their_own_nav_and_a_skip_link(world, login):
    html = login("s1_am").get("/portfolio/").content.decode()
    assert 'href="#main"' in html and 'id="main"' in html
    assert 'aria-current="page"' in html
    assert 'nav aria-label="Main"' in html
    assert "/static/django_htmx/htmx-2" in html  # served locally, no CDN
    assert "//cdn" not in html and "unpkg" not in html


def _detail_urls(world):
    return {
        "partnership": (f"/partnerships/{world.p_a2.pk}/", f"/partnerships/{world.p_a1.pk}/"),
        "ticket": (f"/tickets/{world.t_a2.pk}/", f"/tickets/{world.t_a1.pk}/"),
        "nudge": (f"/nudges/{world.n_a2.pk}/preview/", f"/nudges/{world.n_a1.pk}/preview/"),
    }


@pytest.mark.parametrize("kind", ["partnership", "ticket", "nudge"])
def test_another_suppliers_objects_are_404_not_403(world, login, kind):
    theirs, ours = _detail_urls(world)[kind]
    client = login("s1_am")
    assert client.get(ours).status_code == 200
    assert client.get(theirs).status_code == 404


def test_school_ticket_pages_are_scoped(world, login):
    own, lead_raised, other_school = world.t_a1, world.t_a2, world.t_b2
    teacher = login("a_teacher")
    assert teacher.get(f"/my-tickets/{own.pk}/").status_code == 200
    assert teacher.get(f"/my-tickets/{lead_raised.pk}/").status_code == 404
    assert teacher.get(f"/my-tickets/{other_school.pk}/").status_code == 404
    lead = login("a_lead")
    assert lead.get(f"/school/tickets/{own.pk}/").status_code == 200
    assert lead.get(f"/school/tickets/{other_school.pk}/").status_code == 404
    assert login("trust_lead").get(f"/school/tickets/{own.pk}/").status_code == 200
    assert login("trust_lead").get(f"/school/tickets/{other_school.pk}/").status_code == 404


def test_leads_cannot_ask_for_another_schools_scorecard(world, login):
    assert login("b_lead").get(f"/school/scorecard/?school={world.school_a.pk}").status_code == 404
    assert login("a_lead").get(f"/school/contacts/?school={world.school_b.pk}").status_code == 404
    assert (
        login("trust_lead").get(f"/school/scorecard/?school={world.school_a.pk}").status_code == 200
    )
    assert (
        login("trust_lead").get(f"/school/scorecard/?school={world.school_b.pk}").status_code == 404
    )
    assert login("a_lead").get("/school/scorecard/?school=nonsense").status_code == 404


def test_writes_answer_405_to_a_get(world, login):
    assert login("s1_am").get(f"/tickets/{world.t_a1.pk}/reply/").status_code == 405
