"""Contacts belong to the school: the lead answers suppliers' proposals on the staff
contacts page; the supplier sees the answer and keeps its own notes on its partnership
page, which nobody else sees."""

from __future__ import annotations

from django.core import mail
from django.utils.html import escape

from accounts.models import ContactProposal, PartnershipContact


def test_the_lead_sees_pending_proposals_with_link_to_existing(world, login):
    html = login("a_lead").get(f"/school/contacts/?school={world.school_a.pk}").content.decode()
    assert 'id="proposals"' in html
    assert f'id="proposal-{world.cp_a1.pk}"' in html  # pending, from Acme Learning
    assert escape(f"Link to existing {world.c_a_dsl}") in html
    assert f'id="accept-{world.cp_a1.pk}"' in html
    assert f'id="proposal-{world.cp_a2.pk}"' not in html  # already declined


def test_a_trust_lead_reads_proposals_but_the_schools_lead_decides(world, login):
    client = login("trust_lead")
    html = client.get(f"/school/contacts/?school={world.school_a.pk}").content.decode()
    assert f'id="proposal-{world.cp_a1.pk}"' in html
    assert f'id="accept-{world.cp_a1.pk}"' not in html
    response = client.post(f"/school/contacts/proposals/{world.cp_a1.pk}/accept/")
    assert response.status_code == 403
    assert ContactProposal.objects.get(pk=world.cp_a1.pk).status == "pending"


def test_accepting_on_the_page_links_the_existing_record_and_emails_nobody(world, login):
    client = login("a_lead")
    response = client.post(f"/school/contacts/proposals/{world.cp_a1.pk}/accept/", follow=True)
    assert response.status_code == 200
    assert PartnershipContact.objects.filter(partnership=world.p_a1, contact=world.c_a_dsl).exists()
    assert (
        escape(f"{world.c_a_dsl} is now a contact of Acme Learning.") in response.content.decode()
    )
    assert mail.outbox == []
    # Deciding twice is refused with the reason, not a crash.
    again = client.post(f"/school/contacts/proposals/{world.cp_a1.pk}/decline/", follow=True)
    assert "already accepted" in again.content.decode()


def test_declining_on_the_page_shows_the_supplier_the_reason(world, login):
    login("a_lead").post(
        f"/school/contacts/proposals/{world.cp_a1.pk}/decline/", {"reason": "Ask the office."}
    )
    html = login("s1_am").get(f"/partnerships/{world.p_a1.pk}/").content.decode()
    assert "Declined" in html and escape("“Ask the office.”") in html


def test_another_schools_lead_or_supplier_cannot_decide(world, login):
    for user in ("b_lead",):
        response = login(user).post(f"/school/contacts/proposals/{world.cp_a1.pk}/accept/")
        assert response.status_code == 404
    response = login("s1_am").post(f"/school/contacts/proposals/{world.cp_a1.pk}/accept/")
    assert response.status_code == 403  # a page for another role


def test_the_partnership_page_lists_contacts_with_the_suppliers_own_notes(world, login):
    html = login("s1_agent").get(f"/partnerships/{world.p_a1.pk}/").content.decode()
    assert f'id="contact-{world.c_a_it.pk}"' in html
    assert "Your note: Note cn_s1_it" in html
    assert "Note cn_s2_dsl" not in html
    s2_html = login("s2_am").get(f"/partnerships/{world.p_a2.pk}/").content.decode()
    assert "Note cn_s2_dsl" in s2_html and "Note cn_s1_it" not in s2_html


def test_a_suppliers_note_is_on_no_page_of_the_school_or_another_supplier(world, login):
    pages = {
        "a_lead": [
            f"/school/contacts/?school={world.school_a.pk}",
            f"/school/scorecard/?school={world.school_a.pk}",
        ],
        "trust_lead": [f"/school/contacts/?school={world.school_a.pk}", "/trust/"],
        "s2_am": [f"/partnerships/{world.p_a2.pk}/", f"/partnerships/{world.p_b2.pk}/"],
    }
    for user, urls in pages.items():
        client = login(user)
        for url in urls:
            html = client.get(url).content.decode()
            assert "Note cn_s1_it" not in html, (user, url)
            if user != "s2_am":
                assert "Note cn_s2_dsl" not in html, (user, url)


def test_writing_editing_and_clearing_a_note_on_the_page(world, login):
    client = login("s1_am")
    url = f"/partnerships/{world.p_a1.pk}/contacts/{world.c_a_teacher.pk}/note/"
    client.post(url, {"body": "Keen on the maths app."})
    html = client.get(f"/partnerships/{world.p_a1.pk}/").content.decode()
    assert "Your note: Keen on the maths app." in html
    client.post(url, {"body": ""})
    html = client.get(f"/partnerships/{world.p_a1.pk}/").content.decode()
    assert "Keen on the maths app." not in html
    # A contact of another supplier's partnership is a 404, like a missing one.
    foreign = f"/partnerships/{world.p_a1.pk}/contacts/{world.c_a_dsl.pk}/note/"
    assert client.post(foreign, {"body": "x"}).status_code == 404
    assert (
        client.post(
            f"/partnerships/{world.p_a2.pk}/contacts/{world.c_a_dsl.pk}/note/", {"body": "x"}
        ).status_code
        == 404
    )


def test_an_account_manager_proposes_on_the_page_and_learns_nothing_about_the_school(world, login):
    client = login("s1_am")
    url = f"/partnerships/{world.p_a1.pk}/contacts/propose/"
    answers = []
    for email in (world.c_a_unlinked.email, "fresh@ashfield.example"):
        response = client.post(url, {"first_name": "Kim", "email": email, "tags": ["it_lead"]})
        assert response.status_code == 302
        page = client.get(response["Location"]).content.decode()
        answers.append(page.count("their lead will accept or decline"))
        assert world.c_a_unlinked.last_name not in page
    assert answers == [1, 1]
    assert ContactProposal.objects.filter(partnership=world.p_a1, status="pending").count() == 3
    html = login("a_lead").get(f"/school/contacts/?school={world.school_a.pk}").content.decode()
    assert escape(f"Link to existing {world.c_a_unlinked}") in html


def test_proposing_on_the_page_shows_field_errors_and_is_for_managers_only(world, login):
    client = login("s1_am")
    url = f"/partnerships/{world.p_a1.pk}/contacts/propose/"
    response = client.post(url, {"first_name": "", "email": "nope"})
    assert response.status_code == 422
    assert 'id="propose_email_errors"' in response.content.decode()
    agent = login("s1_agent")
    assert "Propose a contact" not in agent.get(f"/partnerships/{world.p_a1.pk}/").content.decode()
    assert agent.post(url, {"first_name": "K", "email": "k@ashfield.example"}).status_code == 403
    other = f"/partnerships/{world.p_a2.pk}/contacts/propose/"
    assert client.post(other, {"first_name": "K", "email": "k@a.example"}).status_code == 404
