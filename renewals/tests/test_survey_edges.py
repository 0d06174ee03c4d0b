"""The survey's edges that other parts of the product reach: deciding closes it, the
supplier cannot stop the school's survey, and a reply quoting the email does not hand the
supplier the working link."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.exceptions import PermissionDenied

from nudges.models import Nudge
from nudges.replies import record_reply
from nudges.services import nudge_cancel
from renewals.services import review_decide
from renewals.survey import read_survey_token, survey_send, survey_url

from .test_survey import open_review

pytestmark = pytest.mark.django_db


def test_deciding_the_review_cancels_survey_emails_not_yet_sent(world: Any) -> None:
    review = open_review(world)
    [inv] = survey_send(by=world.users["a_lead"], review=review)
    review_decide(by=world.users["a_lead"], review=review, decision="renew", reason="It is used")
    assert Nudge.objects.get(pk=inv.nudge_id).status == Nudge.Status.CANCELLED


def test_the_supplier_cannot_cancel_the_school_s_survey(world: Any) -> None:
    [inv] = survey_send(by=world.users["a_lead"], review=open_review(world))
    with pytest.raises(PermissionDenied):
        nudge_cancel(nudge=Nudge.objects.get(pk=inv.nudge_id), by=world.users["s1_am"])
    assert Nudge.objects.get(pk=inv.nudge_id).status == Nudge.Status.SCHEDULED


def test_a_reply_quoting_the_survey_email_keeps_no_working_link(world: Any) -> None:
    [inv] = survey_send(by=world.users["a_lead"], review=open_review(world))
    link = survey_url(inv)
    token = link.rstrip("/").rsplit("/", 1)[1]
    assert read_survey_token(token) is not None
    reply = record_reply(
        nudge=Nudge.objects.get(pk=inv.nudge_id),
        subject="Re: survey",
        body=f"Done!\n\n> Answer here: {link}\n> Thanks",
        is_auto=False,
    )
    assert token not in reply.body
    assert "Done!" in reply.body and "/survey/" in reply.body
