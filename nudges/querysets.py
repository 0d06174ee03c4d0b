"""One ``visible_to(user)`` per model (see accounts/scoping.py)."""

from __future__ import annotations

from typing import Any

from django.db import models
from django.db.models import Q

from accounts.scoping import scope_for


class NudgeTemplateQuerySet(models.QuerySet):
    def visible_to(self, user: Any) -> NudgeTemplateQuerySet:
        """A supplier's own wording: its staff only."""
        return self.filter(supplier_id__in=scope_for(user).supplier_ids)


class NudgeRuleQuerySet(models.QuerySet):
    def visible_to(self, user: Any) -> NudgeRuleQuerySet:
        return self.filter(supplier_id__in=scope_for(user).supplier_ids)


class NudgeQuerySet(models.QuerySet):
    def visible_to(self, user: Any) -> NudgeQuerySet:
        """Supplier staff: their supplier's nudges. School and trust leads: every nudge to
        their schools' staff, from any supplier (who contacts whom). A member of staff:
        the nudges sent to them."""
        s = scope_for(user)
        if s.user_id is None:
            return self.none()
        return self.filter(
            Q(supplier_id__in=s.supplier_ids)
            | Q(school_id__in=s.all_school_ids)
            | Q(contact__user_id=s.user_id, school_id__in=s.school_ids)
        )

    def due(self, now: Any) -> NudgeQuerySet:
        return self.filter(status="scheduled", next_attempt_at__lte=now)


class OptOutQuerySet(models.QuerySet):
    def visible_to(self, user: Any) -> OptOutQuerySet:
        """The school's leads see every stop on their staff; a supplier sees the stops that
        bind it (its own and global ones) for the contacts it can see; a member of staff
        sees their own."""
        from accounts.models import Contact

        s = scope_for(user)
        if s.user_id is None:
            return self.none()
        q = Q(contact__school_id__in=s.all_school_ids) | Q(
            contact__user_id=s.user_id, contact__school_id__in=s.school_ids
        )
        if s.supplier_ids:
            seen = Contact.objects.visible_to(user).values("id")
            q |= Q(contact_id__in=seen) & (
                Q(supplier_id__in=s.supplier_ids) | Q(supplier__isnull=True)
            )
        return self.filter(q)


class NudgeReplyQuerySet(models.QuerySet):
    def visible_to(self, user: Any) -> NudgeReplyQuerySet:
        """What a member of staff wrote back to a supplier: that supplier's staff, and the
        person themselves. Not their school's leads: it is their correspondence (leads see
        and control who contacts their staff through the nudges and stops)."""
        s = scope_for(user)
        if s.user_id is None:
            return self.none()
        return self.filter(
            Q(supplier_id__in=s.supplier_ids)
            | Q(contact__user_id=s.user_id, contact__school_id__in=s.school_ids)
        )
