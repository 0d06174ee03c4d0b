"""Filters for list endpoints. Foreign keys filter by plain id (NumberFilter), so an id
outside the user's scope behaves exactly like a missing one: no rows, no error that
would reveal it exists."""

import django_filters as df
from django.db import models

from .models import (
    Contact,
    ContactProposal,
    Organisation,
    Partnership,
    PartnershipContact,
    Product,
    Stage,
    StakeholderTag,
    SupplierContactNote,
    TrialPhase,
)
from .scoping import scope_for


class OrganisationFilter(df.FilterSet):
    kind = df.ChoiceFilter(choices=Organisation.Kind.choices)
    phase = df.ChoiceFilter(choices=Organisation.Phase.choices)
    urn = df.CharFilter()
    local_authority = df.CharFilter(lookup_expr="iexact")
    trust = df.NumberFilter(field_name="trust_id")

    class Meta:
        model = Organisation
        fields = ["kind", "phase", "urn", "local_authority", "trust"]


class ContactFilter(df.FilterSet):
    school = df.NumberFilter(field_name="school_id")
    # Only partnerships the user can see: another supplier's id is "not a valid choice",
    # exactly like one that does not exist (it must not tell which partnerships exist).
    partnership = df.ModelChoiceFilter(
        field_name="partnership_links__partnership",
        queryset=lambda request: Partnership.objects.visible_to(request.user),
    )
    tag = df.ChoiceFilter(choices=StakeholderTag.choices, method="filter_tag")

    class Meta:
        model = Contact
        fields = ["school", "partnership", "tag"]

    def filter_tag(self, queryset, name, value):  # type: ignore[no-untyped-def]
        # The school's tags are the school's: filtering by one would tell a supplier who
        # holds it, so for supplier staff the filter applies to no school's contacts.
        scope = scope_for(self.request.user)
        return queryset.with_tag(value).filter(
            school_id__in=scope.school_ids | scope.all_school_ids
        )


class ProductFilter(df.FilterSet):
    supplier = df.NumberFilter(field_name="supplier_id")
    is_active = df.BooleanFilter()

    class Meta:
        model = Product
        fields = ["supplier", "is_active"]


class PartnershipFilter(df.FilterSet):
    stage = df.MultipleChoiceFilter(choices=Stage.choices, distinct=False)
    supplier = df.NumberFilter(field_name="supplier_id")
    school = df.NumberFilter(field_name="school_id")
    trust = df.NumberFilter(field_name="school__trust_id")
    account_manager = df.NumberFilter(field_name="account_manager_id")
    product = df.NumberFilter(field_name="products__id", distinct=True)
    local_authority = df.CharFilter(field_name="school__local_authority", lookup_expr="iexact")
    contract_end_before = df.DateFilter(field_name="contract_end", lookup_expr="lte")

    class Meta:
        model = Partnership
        fields = ["stage", "supplier", "school", "trust", "account_manager", "product"]


class TrialPhaseFilter(df.FilterSet):
    partnership = df.NumberFilter(field_name="partnership_id")
    school = df.NumberFilter(field_name="partnership__school_id")
    kind = df.ChoiceFilter(choices=TrialPhase.Kind.choices)
    decision = df.ChoiceFilter(choices=TrialPhase.Decision.choices)
    active_on = df.DateFilter(method="filter_active_on")

    class Meta:
        model = TrialPhase
        fields = ["partnership", "school", "kind", "decision"]

    def filter_active_on(self, queryset, name, value):  # type: ignore[no-untyped-def]
        return queryset.filter(start_date__lte=value, end_date__gte=value)


class ContactProposalFilter(df.FilterSet):
    partnership = df.NumberFilter(field_name="partnership_id")
    school = df.NumberFilter(field_name="partnership__school_id")
    status = df.ChoiceFilter(choices=ContactProposal.Status.choices)

    class Meta:
        model = ContactProposal
        fields = ["partnership", "school", "status"]


class ContactNoteFilter(df.FilterSet):
    contact = df.NumberFilter(field_name="contact_id")
    # The notes on the contacts of one of the user's partnerships (another supplier's id
    # is like a missing one: no rows, since notes are only ever the user's own).
    partnership = df.NumberFilter(method="filter_partnership")

    class Meta:
        model = SupplierContactNote
        fields = ["contact", "partnership"]

    def filter_partnership(self, queryset, name, value):  # type: ignore[no-untyped-def]
        # The partnership must be the note's own supplier's: a contact linked to another
        # supplier's partnership must not tell this one that the partnership exists.
        links = PartnershipContact.objects.filter(
            partnership_id=value,
            partnership__supplier_id=models.OuterRef("supplier_id"),
            contact_id=models.OuterRef("contact_id"),
        )
        return queryset.filter(models.Exists(links))
