from __future__ import annotations

from typing import Any

import django_filters as df
from django.conf import settings
from django.db.models import QuerySet
from django.utils import timezone

from .models import AgreementTerm, ValueReview
from .services import due_terms


class AgreementTermFilter(df.FilterSet):
    partnership = df.NumberFilter(field_name="partnership_id")
    school = df.NumberFilter(field_name="school_id")
    supplier = df.NumberFilter(field_name="supplier_id")
    status = df.MultipleChoiceFilter(choices=AgreementTerm.Status.choices, distinct=False)
    notice_after = df.DateFilter(
        field_name="notice_on", lookup_expr="gte", label="Notice date on or after"
    )
    notice_before = df.DateFilter(
        field_name="notice_on", lookup_expr="lte", label="Notice date on or before"
    )
    due = df.BooleanFilter(
        method="filter_due",
        label=f"Renewal due: a current term whose notice date is within "
        f"{settings.RENEWAL_DUE_WEEKS} weeks (or passed while the term runs)",
    )

    class Meta:
        model = AgreementTerm
        fields = ["partnership", "school", "supplier", "status"]

    def filter_due(self, queryset: QuerySet[AgreementTerm], name: str, value: Any) -> Any:
        if value is None:
            return queryset
        # The one definition of "due" (services.due_terms), within the user's own scope.
        due = due_terms(self.request.user, timezone.localdate(), settings.RENEWAL_DUE_WEEKS).values(
            "pk"
        )
        return queryset.filter(pk__in=due) if value else queryset.exclude(pk__in=due)


class ValueReviewFilter(df.FilterSet):
    partnership = df.NumberFilter(field_name="partnership_id")
    school = df.NumberFilter(field_name="school_id")
    supplier = df.NumberFilter(field_name="supplier_id")
    term = df.NumberFilter(field_name="term_id")
    status = df.ChoiceFilter(choices=ValueReview.Status.choices)
    decision = df.ChoiceFilter(choices=ValueReview.Decision.choices)

    class Meta:
        model = ValueReview
        fields = ["partnership", "school", "supplier", "term", "status", "decision"]
