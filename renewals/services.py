"""Agreement terms, value reviews and renewal decisions. Keyword-only, atomic; a role
that may not act gets PermissionDenied (403), a bad value ValidationError (400)."""

from __future__ import annotations

import calendar
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.utils import timezone

from accounts.models import Partnership, Stage, User
from accounts.scoping import scope_for
from accounts.services import partnership_end_by_school

from .figures import review_figures
from .models import AgreementTerm, ValueReview
from .survey import survey_close

COMMITMENTS = (
    "onsite_hours_per_term",
    "first_response_target_hours",
    "resolution_target_hours",
    "nudges_per_contact_per_week",
    "nudges_per_contact_per_term",
)


def _leads(user: User | None, school_id: int) -> bool:
    s = scope_for(user)
    return s.leads_school(school_id) or school_id in s.trust_school_ids


def _either_side(user: User, p: Partnership | AgreementTerm) -> str:
    """ "supplier" or "school" for whoever may run the agreement (the supplier's admins and
    account managers, the school's lead or its trust's lead); 403 for anyone else."""
    s = scope_for(user)
    if s.manages_supplier(p.supplier_id):
        return ValueReview.Opener.SUPPLIER
    if _leads(user, p.school_id):
        return ValueReview.Opener.SCHOOL
    raise PermissionDenied(
        "Only the supplier's admins and account managers or the school's lead may do this."
    )


def _check_dates(starts_on: date, ends_on: date, notice_days: int) -> None:
    if ends_on <= starts_on:
        raise ValidationError({"ends_on": "The agreement must end after it starts."})
    if notice_days >= (ends_on - starts_on).days:
        raise ValidationError({"notice_days": "The notice period must be shorter than the term."})


def _next_end(term: AgreementTerm, starts_on: date) -> date:
    """The last day of a term starting on ``starts_on`` as long as ``term``: in calendar
    months when ``term`` runs whole months (1 Sep to 31 Aug renews as 1 Sep to 31 Aug, leap
    day or not), else in days."""
    after = term.ends_on + timedelta(days=1)
    months = (after.year - term.starts_on.year) * 12 + after.month - term.starts_on.month
    if after.day != term.starts_on.day or months <= 0:
        return starts_on + (term.ends_on - term.starts_on)
    index = starts_on.year * 12 + starts_on.month - 1 + months
    year, month = divmod(index, 12)
    day = min(starts_on.day, calendar.monthrange(year, month + 1)[1])
    return date(year, month + 1, day) - timedelta(days=1)


def _mirror(partnership: Partnership, term: AgreementTerm) -> None:
    """The partnership's contract dates are the current term's."""
    partnership.contract_start, partnership.contract_end = term.starts_on, term.ends_on
    partnership.save(update_fields=["contract_start", "contract_end", "updated_at"])


@transaction.atomic
def term_save(
    *,
    by: User,
    partnership: Partnership,
    starts_on: date,
    ends_on: date,
    notice_days: int = 90,
    annual_value: Decimal | None = None,
) -> AgreementTerm:
    """Set the dates, notice and value of the partnership's current term (its first one
    when it has none). The commitments come from the partnership as it stands."""
    _either_side(by, partnership)
    locked = Partnership.objects.select_for_update().get(pk=partnership.pk)
    if locked.stage == Stage.ENDED:
        raise ValidationError({"partnership": "This partnership has ended."})
    _check_dates(starts_on, ends_on, notice_days)
    term = AgreementTerm.objects.filter(partnership=locked, status="current").first()
    if term is not None and hasattr(term, "review") and term.review.status == "decided":
        raise ValidationError({"ends_on": "This term's renewal is decided; it can't change."})
    if term is None:
        number = AgreementTerm.objects.filter(partnership=locked).count() + 1
        term = AgreementTerm(
            partnership=locked,
            supplier_id=locked.supplier_id,
            school_id=locked.school_id,
            number=number,
            created_by=by,
            **{f: getattr(locked, f) for f in COMMITMENTS},
        )
    term.starts_on, term.ends_on = starts_on, ends_on
    term.notice_days, term.annual_value = notice_days, annual_value
    term.full_clean(exclude=["partnership", "supplier", "school", "created_by", "notice_on"])
    term.save()
    _mirror(locked, term)
    return term


def due_terms(user: Any, today: date, weeks: int) -> QuerySet[AgreementTerm]:
    """Current terms the user may see whose notice date is within ``weeks`` of today
    (or already passed while the term runs), soonest first."""
    return (
        AgreementTerm.objects.visible_to(user)
        .filter(
            status=AgreementTerm.Status.CURRENT,
            notice_on__lte=today + timedelta(weeks=weeks),
            ends_on__gte=today,
        )
        .exclude(partnership__stage=Stage.ENDED)
        .order_by("notice_on", "id")
    )


def _create_review(term: AgreementTerm, opened_how: str, by: User | None) -> ValueReview:
    review = ValueReview(
        term=term,
        partnership_id=term.partnership_id,
        supplier_id=term.supplier_id,
        school_id=term.school_id,
        opened_how=opened_how,
        opened_by=by,
    )
    try:
        with transaction.atomic():
            review.save()
    except IntegrityError as exc:  # a concurrent open of the same term won
        raise ValidationError({"term": "This term already has a value review."}) from exc
    return review


@transaction.atomic
def review_open(*, by: User, term: AgreementTerm) -> ValueReview:
    """Either side opens the term's value review by hand (once per term)."""
    side = _either_side(by, term)
    if term.status != AgreementTerm.Status.CURRENT:
        raise ValidationError({"term": "Only the current term is reviewed."})
    if ValueReview.objects.filter(term=term).exists():
        raise ValidationError({"term": "This term already has a value review."})
    return _create_review(term, side, by)


def open_due_reviews(today: date, weeks_before_notice: int) -> int:
    """The daily task: open the review of every current term whose notice date is within
    ``weeks_before_notice`` weeks, once per term (the one-to-one keeps it once when two
    runs overlap). Returns how many it opened."""
    opened = 0
    due = (
        AgreementTerm.objects.filter(
            status=AgreementTerm.Status.CURRENT,
            notice_on__lte=today + timedelta(weeks=weeks_before_notice),
            ends_on__gte=today,
            review__isnull=True,
        )
        .exclude(partnership__stage=Stage.ENDED)
        .order_by("id")
    )
    for term in due.iterator():
        try:
            _create_review(term, ValueReview.Opener.AUTOMATIC, None)
        except ValidationError:
            continue
        opened += 1
    return opened


@transaction.atomic
def review_decide(
    *,
    by: User,
    review: ValueReview,
    decision: str,
    reason: str,
    changes_agreed: str = "",
    next_ends_on: date | None = None,
    annual_value: Decimal | None = None,
) -> ValueReview:
    """The school's lead decides: renew (a new term from the day after this one ends, as
    long as this one unless ``next_ends_on`` says otherwise), renew with the changes
    agreed, or end (the partnership moves to ended). The figures (renewals/figures.py), as
    the deciding lead saw them, are kept with the review."""
    if not _leads(by, review.school_id):
        raise PermissionDenied("Only the school's lead decides the renewal.")
    locked = ValueReview.objects.select_for_update().select_related("term").get(pk=review.pk)
    if locked.status == ValueReview.Status.DECIDED:
        raise ValidationError({"decision": "This renewal has already been decided."})
    if decision not in ValueReview.Decision.values:
        raise ValidationError({"decision": "Choose renew, renew with changes or end."})
    reason = reason.strip()
    changes_agreed = changes_agreed.strip()
    if not reason:
        raise ValidationError({"decision_reason": "Say why, for the record both sides keep."})
    if decision == ValueReview.Decision.RENEW_WITH_CHANGES and not changes_agreed:
        raise ValidationError({"changes_agreed": "Say which changes were agreed."})
    if len(reason) > 2000 or len(changes_agreed) > 2000:
        raise ValidationError(
            {"decision_reason": "Keep the reason and changes to 2,000 characters."}
        )

    term = locked.term
    locked.decided_at = now = timezone.now()
    partnership = Partnership.objects.select_for_update().get(pk=locked.partnership_id)
    if decision == ValueReview.Decision.END:
        term.status = AgreementTerm.Status.ENDED
        term.save(update_fields=["status"])
        partnership_end_by_school(partnership=partnership, by=by, reason=f"Renewal: {reason}")
    else:
        starts_on = term.ends_on + timedelta(days=1)
        ends_on = next_ends_on or _next_end(term, starts_on)
        try:
            _check_dates(starts_on, ends_on, term.notice_days)
        except ValidationError as exc:  # the decision's own field: the next term's end
            raise ValidationError({"next_ends_on": exc.messages}) from exc
        term.status = AgreementTerm.Status.RENEWED
        term.save(update_fields=["status"])
        new = AgreementTerm(
            partnership=partnership,
            supplier_id=term.supplier_id,
            school_id=term.school_id,
            number=term.number + 1,
            starts_on=starts_on,
            ends_on=ends_on,
            notice_days=term.notice_days,
            annual_value=term.annual_value if annual_value is None else annual_value,
            created_by=by,
            **{f: getattr(partnership, f) for f in COMMITMENTS},
        )
        new.save()
        locked.next_term = new
        _mirror(partnership, new)
    locked.status = ValueReview.Status.DECIDED
    locked.decision = decision
    locked.decision_reason = reason
    locked.changes_agreed = changes_agreed
    locked.decided_by = by
    locked.decided_at = now
    locked.figures = review_figures(locked, user=by, now=now)
    survey_close(review=locked)  # survey emails not yet sent would only say it closed
    locked.save()
    return locked
