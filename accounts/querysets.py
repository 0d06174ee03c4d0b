"""One ``visible_to(user)`` per model: the only way rows reach a view, page or export."""

from __future__ import annotations

from typing import Any

from django.apps import apps
from django.db import models
from django.db.models import Q

from .scoping import scope_for


def _model(name: str) -> Any:
    return apps.get_model("accounts", name)


class OrganisationQuerySet(models.QuerySet):
    def visible_to(self, user: Any) -> OrganisationQuerySet:
        s = scope_for(user)
        if s.user_id is None:
            return self.none()
        own = s.supplier_ids | s.school_ids | s.trust_ids
        q = Q(id__in=own) | Q(id__in=s.trust_school_ids) | Q(id__in=s.own_school_trust_ids)
        if s.is_supplier_staff:
            # Schools and trusts are the public GIAS directory: a supplier needs them to
            # open an enquiry. Other suppliers stay invisible.
            q |= Q(kind__in=["school", "trust"])
        if s.is_school_side:
            partner_suppliers = _model("Partnership").objects.visible_to(user).values("supplier_id")
            q |= Q(id__in=partner_suppliers)
        return self.filter(q)


class PartnershipQuerySet(models.QuerySet):
    def visible_to(self, user: Any) -> PartnershipQuerySet:
        s = scope_for(user)
        if s.user_id is None:
            return self.none()
        q = Q(supplier_id__in=s.supplier_ids) | Q(school_id__in=s.all_school_ids)
        if s.teacher_school_ids:
            # A teacher sees the partnerships of their school that they take part in.
            in_cohort = (
                _model("TrialPhase")
                .cohort.through.objects.filter(contact__user_id=s.user_id)
                .values("trialphase__partnership_id")
            )
            linked = (
                _model("PartnershipContact")
                .objects.filter(contact__user_id=s.user_id)
                .values("partnership_id")
            )
            q |= Q(school_id__in=s.teacher_school_ids) & (Q(id__in=in_cohort) | Q(id__in=linked))
        return self.filter(q)


class ContactQuerySet(models.QuerySet):
    def visible_to(self, user: Any) -> ContactQuerySet:
        s = scope_for(user)
        if s.user_id is None:
            return self.none()
        q = Q(school_id__in=s.all_school_ids) | Q(school_id__in=s.school_ids, user_id=s.user_id)
        if s.is_supplier_staff:
            linked = (
                _model("PartnershipContact")
                .objects.filter(partnership__supplier_id__in=s.supplier_ids)
                .values("contact_id")
            )
            q |= Q(id__in=linked)
        return self.filter(q)

    def with_tag(self, tag: str) -> ContactQuerySet:
        return self.filter(tags__contains=f",{tag},")


class ProductQuerySet(models.QuerySet):
    def visible_to(self, user: Any) -> ProductQuerySet:
        s = scope_for(user)
        if s.user_id is None:
            return self.none()
        q = Q(supplier_id__in=s.supplier_ids)
        if s.is_school_side:
            through = _model("Partnership").products.through.objects.filter(
                partnership_id__in=_model("Partnership").objects.visible_to(user).values("id")
            )
            q |= Q(id__in=through.values("product_id"))
        return self.filter(q)


class TrialPhaseQuerySet(models.QuerySet):
    def visible_to(self, user: Any) -> TrialPhaseQuerySet:
        s = scope_for(user)
        if s.user_id is None:
            return self.none()
        return self.filter(
            partnership_id__in=_model("Partnership").objects.visible_to(user).values("id")
        )


class ContactProposalQuerySet(models.QuerySet):
    def visible_to(self, user: Any) -> ContactProposalQuerySet:
        """The proposing supplier's staff, and the school's (and its trust's) leads; never
        teachers or another supplier."""
        s = scope_for(user)
        if s.user_id is None:
            return self.none()
        return self.filter(
            Q(partnership__supplier_id__in=s.supplier_ids)
            | Q(partnership__school_id__in=s.all_school_ids)
        )

    def pending(self) -> ContactProposalQuerySet:
        return self.filter(status="pending")


class SupplierContactNoteQuerySet(models.QuerySet):
    def visible_to(self, user: Any) -> SupplierContactNoteQuerySet:
        """Only the writing supplier's own staff, and only about contacts they still see
        through one of that supplier's partnerships. Never the school, never another
        supplier."""
        s = scope_for(user)
        if not s.supplier_ids:
            return self.none()
        linked = _model("PartnershipContact").objects.filter(
            partnership__supplier_id=models.OuterRef("supplier_id"),
            contact_id=models.OuterRef("contact_id"),
        )
        return self.filter(supplier_id__in=s.supplier_ids).filter(models.Exists(linked))
