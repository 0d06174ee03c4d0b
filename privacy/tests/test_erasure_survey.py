"""Erasing a person removes what they wrote in a renewal's staff survey, while the review
keeps counting their tick."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

import pytest

from accounts.services import contact_create
from privacy.erasure import erase_contact
from renewals.models import AgreementTerm, SurveyInvitation, ValueReview

pytestmark = pytest.mark.django_db


def test_erasure_blanks_survey_words_and_keeps_the_answer(world: Any) -> None:
    p = world.p_a1
    contact = contact_create(
        by=world.users["a_lead"],
        partnership=p,
        first_name="Ottoline",
        last_name="Vance",
        email="o.vance@ashfield.example",
    )
    term = AgreementTerm.objects.create(
        partnership=p,
        supplier_id=p.supplier_id,
        school_id=p.school_id,
        number=9,
        starts_on=date(2025, 9, 1),
        ends_on=date(2026, 8, 31),
        status="renewed",
    )
    review = ValueReview.objects.create(
        term=term,
        partnership=p,
        supplier_id=p.supplier_id,
        school_id=p.school_id,
        opened_how="school",
    )
    invitation = SurveyInvitation.objects.create(
        review=review,
        school_id=p.school_id,
        contact=contact,
        nonce=uuid.uuid4(),
        notice="a_lot",
        uses="Ottoline uses it for Year 9 homework",
        change="Ask Ottoline Vance before changing the login",
    )

    erase_contact(by=world.users["a_lead"], contact=contact)

    invitation.refresh_from_db()
    assert invitation.uses == "" and invitation.change == ""
    assert invitation.notice == "a_lot"
    assert SurveyInvitation.objects.filter(review=review, notice="a_lot").count() == 1
