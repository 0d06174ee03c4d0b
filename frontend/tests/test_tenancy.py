"""No page shows another tenant's data: every page a user can open is rendered, and none
contains a marker of something outside their scope (another supplier, another school,
a supplier's internal notes for school users)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone
from django.utils.html import escape

from accounts.models import Partnership, TrialPhase
from accounts.scoping import scope_for
from nudges.models import Nudge
from renewals.models import AgreementTerm, ValueReview
from tickets.models import Ticket


def _pages(world: Any, user: str) -> list[str]:
    u = world.users[user]
    s = scope_for(u)
    next_week = timezone.localdate() + timedelta(days=7)
    urls: list[str] = []
    if s.is_supplier_staff:
        urls += [
            "/portfolio/?mine=0&ended=1",
            "/tickets/?status=",
            f"/visits/?week={next_week:%Y-%m-%d}",
            "/nudges/",
        ]
        for t in Ticket.objects.visible_to(u):
            urls.append(f"/tickets/{t.pk}/")
        for p in {t.partnership_id for t in Ticket.objects.visible_to(u)}:
            urls.append(f"/partnerships/{p}/")
        for n in Nudge.objects.visible_to(u):
            urls.append(f"/nudges/{n.pk}/preview/")
        for ph in TrialPhase.objects.visible_to(u):
            urls.append(f"/partnerships/{ph.partnership_id}/phases/{ph.pk}/")
        for p in Partnership.objects.visible_to(u):
            if s.manages_supplier(p.supplier_id):  # planning a phase lists the school's staff
                urls.append(f"/partnerships/{p.pk}/phases/new/")
    if s.school_ids:
        urls += ["/feedback/", "/my-tickets/"]
    if s.all_school_ids:
        urls.append("/school/tickets/")
        for school_id in s.all_school_ids:
            urls += [
                f"/school/scorecard/?school={school_id}",
                f"/school/contacts/?school={school_id}",
                f"/school/phases/?school={school_id}",
                f"/school/term-dates/?school={school_id}",
            ]
    if s.school_ids or s.all_school_ids:
        for t in Ticket.objects.visible_to(u):
            urls.append(f"/school/tickets/{t.pk}/" if s.all_school_ids else f"/my-tickets/{t.pk}/")
    if s.trust_ids:
        urls.append("/trust/")
    if s.all_school_ids or any(r == "supplier_admin" for r in s.supplier_roles.values()):
        urls.append("/audit/")  # the audit trail (privacy/trail.py)
    # Renewals: the lists, each visible agreement and review (not the PDF: binary)
    if s.all_school_ids:
        urls.append("/school/renewals/")
    if any(s.manages_supplier(sid) for sid in s.supplier_ids):
        urls.append("/supplier/renewals/")
    for term in AgreementTerm.objects.visible_to(u):
        urls.append(f"/renewals/partnerships/{term.partnership_id}/")
    for review in ValueReview.objects.visible_to(u):
        urls.append(f"/renewals/reviews/{review.pk}/")
    return urls


def _forbidden(world: Any, user: str) -> list[str]:
    c = world.contacts
    # Internal notes, and the files on them (named after their attachment, e.g.
    # at_a1_internal.pdf).
    internal = [
        "Message m_a1_internal",
        "Message m_a2_internal",
        "at_a1_internal",
        "at_a2_internal",
    ]
    return {
        "s1_am": [
            "Reply nr_b2",
            "Brightboard",
            "Beacon Academy",
            "Ticket t_a2",
            "Ticket t_b2",
            "Message m_a2",
            "Message m_b2",
            "at_a2_internal",
            str(c["c_a_dsl"]),
            str(c["c_b_it"]),
        ],
        "s1_agent": [
            "Brightboard",
            "Beacon Academy",
            "Ticket t_a2",
            "Message m_a2_internal",
            "at_a2_internal",
        ],
        "s2_am": [
            "Reply nr_a1",
            "Acme Learning",
            "Acme Maths",
            "Ticket t_a1",
            "Message m_a1",
            "at_t_a1",
            "at_a1_",
            str(c["c_a_it"]),
            str(c["c_a_teacher"]),
        ],
        "a_teacher": [
            "Brightboard",
            "Beacon Academy",
            "Ticket t_a2",
            "Ticket t_b2",
            "Message m_a2",
            *internal,
        ],
        "a_lead": [
            "Beacon Academy",
            "Ticket t_b2",
            "Message m_b2",
            str(c["c_b_teacher"]),
            *internal,
        ],
        "b_lead": [
            "Ashfield Primary",
            "Acme Learning",
            "Ticket t_a1",
            "Ticket t_a2",
            str(c["c_a_it"]),
        ],
        "b_teacher": ["Ashfield Primary", "Acme Learning", "Ticket t_a"],
        "trust_lead": ["Beacon Academy", "Ticket t_b2", "Message m_b2", *internal],
    }[user]


@pytest.mark.parametrize(
    "user",
    ["s1_am", "s1_agent", "s2_am", "a_teacher", "a_lead", "b_lead", "b_teacher", "trust_lead"],
)
def test_no_page_shows_another_tenants_data(world, login, user):
    client = login(user)
    urls = _pages(world, user)
    assert len(urls) >= 3
    for url in urls:
        response = client.get(url)
        assert response.status_code == 200, (url, response.status_code)
        html = response.content.decode()
        for marker in _forbidden(world, user):
            # As a page would write it: a name like O'Donnell is HTML-escaped.
            assert escape(marker) not in html, f"{user} sees {marker!r} on {url}"


def test_school_users_never_see_internal_notes_but_the_supplier_does(world, login):
    supplier_view = login("s1_am").get(f"/tickets/{world.t_a1.pk}/").content.decode()
    assert "Message m_a1_internal" in supplier_view and "Message m_a1_public" in supplier_view
    assert "at_a1_internal.pdf" in supplier_view and "at_a1_public.pdf" in supplier_view
    for user in ("a_teacher", "a_lead", "trust_lead"):
        url = f"/school/tickets/{world.t_a1.pk}/"
        html = login(user).get(url).content.decode()
        assert "Message m_a1_public" in html and "at_a1_public.pdf" in html
        assert "Message m_a1_internal" not in html
        assert "at_a1_internal" not in html
