"""Agreement terms, value reviews and renewal decisions: the services' rules."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from types import SimpleNamespace

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from accounts.models import Stage
from accounts.services import partnership_update
from renewals.models import AgreementTerm, ValueReview
from renewals.services import review_decide, review_open, term_save

from .conftest import TERM_END, TERM_START

pytestmark = pytest.mark.django_db


# --- Terms ------------------------------------------------------------------------------


def test_the_first_term_carries_the_partnerships_commitments_and_mirrors_its_dates(
    cast: SimpleNamespace,
) -> None:
    term = cast.term
    assert (term.number, term.status) == (1, AgreementTerm.Status.CURRENT)
    assert term.notice_on == TERM_END - timedelta(days=90)
    assert term.onsite_hours_per_term == Decimal("12.0")
    assert (term.first_response_target_hours, term.resolution_target_hours) == (6, 30)
    cast.partnership.refresh_from_db()
    assert (cast.partnership.contract_start, cast.partnership.contract_end) == (
        TERM_START,
        TERM_END,
    )


def test_saving_again_changes_the_current_term_instead_of_adding_one(
    cast: SimpleNamespace,
) -> None:
    again = term_save(
        by=cast.lead,
        partnership=cast.partnership,
        starts_on=TERM_START,
        ends_on=date(2027, 7, 31),
        notice_days=30,
    )
    assert again.pk == cast.term.pk
    assert again.notice_on == date(2027, 7, 1)
    assert again.annual_value is None
    assert AgreementTerm.objects.filter(partnership=cast.partnership).count() == 1


@pytest.mark.parametrize(
    ("starts_on", "ends_on", "notice_days", "field"),
    [
        (date(2026, 9, 1), date(2026, 9, 1), 0, "ends_on"),
        (date(2026, 9, 1), date(2026, 8, 1), 0, "ends_on"),
        (date(2026, 9, 1), date(2026, 10, 1), 30, "notice_days"),
        (date(2026, 9, 1), date(2026, 10, 1), 31, "notice_days"),
    ],
)
def test_a_term_must_end_after_it_starts_and_its_notice_be_shorter_than_it(
    cast: SimpleNamespace, starts_on: date, ends_on: date, notice_days: int, field: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        term_save(
            by=cast.am,
            partnership=cast.partnership,
            starts_on=starts_on,
            ends_on=ends_on,
            notice_days=notice_days,
        )
    assert field in caught.value.message_dict
    cast.term.refresh_from_db()
    assert (cast.term.starts_on, cast.term.ends_on) == (TERM_START, TERM_END)


@pytest.mark.parametrize("who", ["teacher", "agent", "other_am", "other_lead"])
def test_only_the_suppliers_managers_and_the_schools_lead_set_a_term(
    cast: SimpleNamespace, who: str
) -> None:
    with pytest.raises(PermissionDenied):
        term_save(
            by=cast.users[who],
            partnership=cast.partnership,
            starts_on=TERM_START,
            ends_on=date(2027, 6, 30),
        )
    cast.term.refresh_from_db()
    assert cast.term.ends_on == TERM_END


def test_a_decided_term_no_longer_changes(cast: SimpleNamespace) -> None:
    review = review_open(by=cast.lead, term=cast.term)
    review_decide(by=cast.lead, review=review, decision="end", reason="Budget")
    with pytest.raises(ValidationError):
        term_save(
            by=cast.lead,
            partnership=cast.partnership,
            starts_on=TERM_START,
            ends_on=date(2027, 6, 30),
        )


# --- Opening a review -------------------------------------------------------------------


@pytest.mark.parametrize(("who", "how"), [("lead", "school"), ("am", "supplier")])
def test_either_side_opens_the_review_once_per_term(
    cast: SimpleNamespace, who: str, how: str
) -> None:
    review = review_open(by=cast.users[who], term=cast.term)
    assert (review.opened_how, review.opened_by, review.status) == (
        how,
        cast.users[who],
        ValueReview.Status.OPEN,
    )
    assert (review.partnership_id, review.supplier_id, review.school_id) == (
        cast.partnership.pk,
        cast.supplier.pk,
        cast.school.pk,
    )
    with pytest.raises(ValidationError) as caught:
        review_open(by=cast.lead, term=cast.term)
    assert "term" in caught.value.message_dict
    assert ValueReview.objects.filter(term=cast.term).count() == 1


@pytest.mark.parametrize("who", ["teacher", "agent", "other_am", "other_lead"])
def test_nobody_else_opens_a_review(cast: SimpleNamespace, who: str) -> None:
    with pytest.raises(PermissionDenied):
        review_open(by=cast.users[who], term=cast.term)
    assert not ValueReview.objects.exists()


# --- Deciding ---------------------------------------------------------------------------


@pytest.fixture
def review(cast: SimpleNamespace) -> ValueReview:
    return review_open(by=cast.am, term=cast.term)


@pytest.mark.parametrize("who", ["am", "admin", "teacher", "other_lead"])
def test_only_the_schools_lead_decides(
    cast: SimpleNamespace, review: ValueReview, who: str
) -> None:
    with pytest.raises(PermissionDenied):
        review_decide(by=cast.users[who], review=review, decision="renew", reason="Good value")
    review.refresh_from_db()
    assert review.status == ValueReview.Status.OPEN
    assert AgreementTerm.objects.filter(partnership=cast.partnership).count() == 1


def test_renewing_starts_the_next_term_the_day_after_with_the_same_length(
    cast: SimpleNamespace, review: ValueReview
) -> None:
    # The partnership's live commitments have changed since the term began: the new term
    # carries today's, the old one keeps its own.
    partnership_update(
        partnership=cast.partnership,
        by=cast.am,
        onsite_hours_per_term=Decimal("15.0"),
        first_response_target_hours=4,
    )

    decided = review_decide(by=cast.lead, review=review, decision="renew", reason="Staff use it")

    old = AgreementTerm.objects.get(pk=cast.term.pk)
    new = decided.next_term
    assert old.status == AgreementTerm.Status.RENEWED
    assert (new.number, new.status) == (2, AgreementTerm.Status.CURRENT)
    # A school year renews as a school year (1 Sep to 31 Aug), across 2028's leap day.
    assert (new.starts_on, new.ends_on) == (date(2027, 9, 1), date(2028, 8, 31))
    assert (new.notice_days, new.annual_value) == (90, Decimal("2400.00"))
    assert (new.onsite_hours_per_term, new.first_response_target_hours) == (Decimal("15.0"), 4)
    assert (old.onsite_hours_per_term, old.first_response_target_hours) == (Decimal("12.0"), 6)
    cast.partnership.refresh_from_db()
    assert (cast.partnership.contract_start, cast.partnership.contract_end) == (
        new.starts_on,
        new.ends_on,
    )
    assert (decided.status, decided.decision, decided.decided_by) == (
        ValueReview.Status.DECIDED,
        "renew",
        cast.lead,
    )
    assert decided.figures["term"]["number"] == 1
    assert decided.figures["targets"]["onsite_hours_per_term"] == 12.0


def test_renewing_with_a_new_end_and_value(cast: SimpleNamespace, review: ValueReview) -> None:
    decided = review_decide(
        by=cast.lead,
        review=review,
        decision="renew_with_changes",
        reason="Useful in maths",
        changes_agreed="Two training sessions a term",
        next_ends_on=date(2028, 3, 31),
        annual_value=Decimal("1800.00"),
    )
    assert decided.changes_agreed == "Two training sessions a term"
    assert (decided.next_term.ends_on, decided.next_term.annual_value) == (
        date(2028, 3, 31),
        Decimal("1800.00"),
    )


def test_a_term_of_days_renews_for_as_many_days(cast: SimpleNamespace) -> None:
    term = term_save(
        by=cast.am,
        partnership=cast.partnership,
        starts_on=date(2026, 9, 3),
        ends_on=date(2027, 7, 21),
        notice_days=30,
    )
    review = review_open(by=cast.lead, term=term)
    new = review_decide(by=cast.lead, review=review, decision="renew", reason="Good").next_term
    assert new.starts_on == date(2027, 7, 22)
    assert new.ends_on - new.starts_on == term.ends_on - term.starts_on


def test_the_next_term_must_end_after_it_starts_and_outlast_the_notice(
    cast: SimpleNamespace, review: ValueReview
) -> None:
    for ends in (date(2027, 8, 31), date(2027, 10, 15)):
        with pytest.raises(ValidationError) as caught:
            review_decide(
                by=cast.lead, review=review, decision="renew", reason="Good", next_ends_on=ends
            )
        assert "next_ends_on" in caught.value.message_dict
    review.refresh_from_db()
    assert review.status == ValueReview.Status.OPEN
    assert AgreementTerm.objects.get(pk=cast.term.pk).status == AgreementTerm.Status.CURRENT


def test_renewing_with_changes_needs_the_changes(
    cast: SimpleNamespace, review: ValueReview
) -> None:
    with pytest.raises(ValidationError) as caught:
        review_decide(
            by=cast.lead,
            review=review,
            decision="renew_with_changes",
            reason="Useful",
            changes_agreed="   ",
        )
    assert "changes_agreed" in caught.value.message_dict
    review.refresh_from_db()
    assert review.status == ValueReview.Status.OPEN


def test_a_decision_needs_a_reason(cast: SimpleNamespace, review: ValueReview) -> None:
    with pytest.raises(ValidationError) as caught:
        review_decide(by=cast.lead, review=review, decision="renew", reason=" ")
    assert "decision_reason" in caught.value.message_dict


def test_ending_ends_the_partnership_and_the_term(
    cast: SimpleNamespace, review: ValueReview
) -> None:
    decided = review_decide(by=cast.lead, review=review, decision="end", reason="Not used")
    cast.partnership.refresh_from_db()
    assert cast.partnership.stage == Stage.ENDED
    assert AgreementTerm.objects.get(pk=cast.term.pk).status == AgreementTerm.Status.ENDED
    assert decided.next_term is None
    assert AgreementTerm.objects.filter(partnership=cast.partnership).count() == 1
    # An ended partnership has no current term to review or set.
    with pytest.raises(ValidationError):
        term_save(
            by=cast.am,
            partnership=cast.partnership,
            starts_on=date(2027, 9, 1),
            ends_on=date(2028, 8, 31),
        )


def test_a_renewal_is_decided_once(cast: SimpleNamespace, review: ValueReview) -> None:
    review_decide(by=cast.lead, review=review, decision="renew", reason="Good")
    with pytest.raises(ValidationError) as caught:
        review_decide(by=cast.lead, review=review, decision="end", reason="Changed our mind")
    assert "decision" in caught.value.message_dict
    cast.partnership.refresh_from_db()
    assert cast.partnership.stage != Stage.ENDED
    assert AgreementTerm.objects.filter(partnership=cast.partnership).count() == 2


def test_the_next_terms_review_opens_by_hand_and_the_old_one_cannot(
    cast: SimpleNamespace, review: ValueReview
) -> None:
    decided = review_decide(by=cast.lead, review=review, decision="renew", reason="Good")
    with pytest.raises(ValidationError):
        review_open(by=cast.lead, term=AgreementTerm.objects.get(pk=cast.term.pk))
    nxt = review_open(by=cast.am, term=decided.next_term)
    assert nxt.term.number == 2
