"""One ``visible_to(user)`` per model (see accounts/scoping.py)."""

from __future__ import annotations

from typing import Any

from django.db import models
from django.db.models import Q

from accounts.models import Partnership
from accounts.scoping import scope_for


class VisitQuerySet(models.QuerySet):
    def visible_to(self, user: Any) -> VisitQuerySet:
        """Visits of the partnerships the user can see: supplier staff their supplier's,
        school and trust leads their schools', teachers those of their partnerships."""
        s = scope_for(user)
        if s.user_id is None:
            return self.none()
        q = Q(supplier_id__in=s.supplier_ids) | Q(school_id__in=s.all_school_ids)
        if s.teacher_school_ids:
            q |= Q(
                school_id__in=s.teacher_school_ids,
                partnership_id__in=Partnership.objects.visible_to(user).values("id"),
            )
        return self.filter(q)


class FollowUpActionQuerySet(models.QuerySet):
    def visible_to(self, user: Any) -> FollowUpActionQuerySet:
        from .models import Visit

        return self.filter(assessment__visit_id__in=Visit.objects.visible_to(user).values("id"))


class TimeEntryQuerySet(models.QuerySet):
    def visible_to(self, user: Any) -> TimeEntryQuerySet:
        """Time is the supplier's record of its own work, shown to the school's leads (who
        judge the hours on site against the agreement). Teachers do not see it."""
        s = scope_for(user)
        if s.user_id is None:
            return self.none()
        return self.filter(Q(supplier_id__in=s.supplier_ids) | Q(school_id__in=s.all_school_ids))


class OnsiteCorrectionQuerySet(models.QuerySet):
    def visible_to(self, user: Any) -> OnsiteCorrectionQuerySet:
        """Corrections of on-site time: seen by whoever sees the time (TimeEntry's rule),
        the supplier's staff and the school's leads."""
        s = scope_for(user)
        if s.user_id is None:
            return self.none()
        return self.filter(Q(supplier_id__in=s.supplier_ids) | Q(school_id__in=s.all_school_ids))
