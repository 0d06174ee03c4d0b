"""One ``visible_to(user)`` per model (see accounts/scoping.py)."""

from __future__ import annotations

from typing import Any

from django.db import models
from django.db.models import Q

from accounts.scoping import scope_for


def _supplier_staff_or_school_leads(qs: models.QuerySet, user: Any) -> models.QuerySet:
    s = scope_for(user)
    if s.user_id is None:
        return qs.none()
    return qs.filter(Q(supplier_id__in=s.supplier_ids) | Q(school_id__in=s.all_school_ids))


class AgreementTermQuerySet(models.QuerySet):
    def visible_to(self, user: Any) -> AgreementTermQuerySet:
        """An agreement's terms (dates, notice, annual value): the supplier's staff and the
        school's leads (school lead, trust lead). Not teachers."""
        return _supplier_staff_or_school_leads(self, user)


class ValueReviewQuerySet(models.QuerySet):
    def visible_to(self, user: Any) -> ValueReviewQuerySet:
        """A value review and its decision: whoever sees the agreement's terms."""
        return _supplier_staff_or_school_leads(self, user)


class SurveyInvitationQuerySet(models.QuerySet):
    def visible_to(self, user: Any) -> SurveyInvitationQuerySet:
        """Who was asked and what each person answered: the school's leads only. The
        supplier sees the answers aggregated through the review (renewals/survey.py)."""
        s = scope_for(user)
        if s.user_id is None:
            return self.none()
        return self.filter(school_id__in=s.all_school_ids)
