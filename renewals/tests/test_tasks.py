"""The daily task opens the review of each term whose notice date is near, once."""

from __future__ import annotations

from datetime import date, timedelta
from types import SimpleNamespace

import pytest
from django.utils import timezone

from accounts.models import Stage
from accounts.tests import factories as f
from renewals.models import AgreementTerm, ValueReview
from renewals.services import term_save
from renewals.tasks import open_due_reviews

pytestmark = pytest.mark.django_db


def _term(cast: SimpleNamespace, notice_in_days: int, **partnership: object) -> AgreementTerm:
    p = f.PartnershipFactory(supplier=cast.supplier, school=f.SchoolFactory(), **partnership)
    ends_on = timezone.localdate() + timedelta(days=notice_in_days + 30)
    return term_save(
        by=cast.am,
        partnership=p,
        starts_on=ends_on - timedelta(days=365),
        ends_on=ends_on,
        notice_days=30,
    )


def test_a_term_whose_notice_date_is_within_eight_weeks_gets_its_review_once(
    cast: SimpleNamespace, settings: object
) -> None:
    settings.RENEWAL_REVIEW_WEEKS = 8
    AgreementTerm.objects.filter(pk=cast.term.pk).delete()  # its notice date is fixed
    near = _term(cast, notice_in_days=8 * 7)
    passed = _term(cast, notice_in_days=-5)  # notice passed, the term still runs
    far = _term(cast, notice_in_days=8 * 7 + 1)
    ending = _term(cast, notice_in_days=10)
    ending.partnership.stage = Stage.ENDED
    ending.partnership.save(update_fields=["stage"])

    assert open_due_reviews.delay().get() == 2

    opened = ValueReview.objects.all()
    assert {r.term_id for r in opened} == {near.pk, passed.pk}
    assert {r.opened_how for r in opened} == {"automatic"}
    assert {r.opened_by for r in opened} == {None}
    assert not ValueReview.objects.filter(term__in=[far, ending]).exists()
    # Once per term: the next run opens nothing more.
    assert open_due_reviews() == 0
    assert ValueReview.objects.count() == 2


def test_a_term_reviewed_by_hand_is_not_opened_again(cast: SimpleNamespace) -> None:
    from renewals.services import review_open

    AgreementTerm.objects.filter(pk=cast.term.pk).delete()
    term = _term(cast, notice_in_days=7)
    review_open(by=cast.am, term=term)
    assert open_due_reviews() == 0
    assert ValueReview.objects.get().opened_how == "supplier"


def test_a_term_that_is_over_gets_no_review(cast: SimpleNamespace) -> None:
    AgreementTerm.objects.filter(pk=cast.term.pk).delete()
    p = f.PartnershipFactory(supplier=cast.supplier, school=f.SchoolFactory())
    today = timezone.localdate()
    term_save(
        by=cast.am,
        partnership=p,
        starts_on=date(today.year - 2, 1, 1),
        ends_on=today - timedelta(days=1),
        notice_days=30,
    )
    assert open_due_reviews() == 0
