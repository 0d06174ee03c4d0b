"""Ticket filters. Foreign keys filter by plain id over the user's scoped queryset."""

from __future__ import annotations

from typing import Any

import django_filters as df
from django.db import connection
from django.db.models import F, Q, QuerySet
from django.utils import timezone

from .models import OPEN_STATUSES, Status, Ticket


# Multiple-choice filters on the ticket's own columns can't produce duplicates, so they
# skip django-filter's default DISTINCT (which made a filtered page sort every match).
class TicketFilter(df.FilterSet):
    status = df.MultipleChoiceFilter(choices=Status.choices, distinct=False)
    category = df.MultipleChoiceFilter(choices=Ticket.Category.choices, distinct=False)
    priority = df.MultipleChoiceFilter(choices=Ticket.Priority.choices, distinct=False)
    partnership = df.NumberFilter(field_name="partnership_id")
    school = df.NumberFilter(field_name="school_id")
    supplier = df.NumberFilter(field_name="supplier_id")
    raised_by = df.NumberFilter(field_name="raised_by_id")
    assignee = df.NumberFilter(field_name="assignee_id")
    is_open = df.BooleanFilter(method="filter_open", label="Open (not resolved or closed)")
    breached = df.BooleanFilter(method="filter_breached", label="First response or resolution late")
    created_after = df.IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = df.IsoDateTimeFilter(field_name="created_at", lookup_expr="lt")
    q = df.CharFilter(
        method="filter_text", label="Words in the subject, description or public messages"
    )
    # The API's usual name for it (the viewset has no SearchFilter fields of its own).
    search = df.CharFilter(method="filter_text", label="The same as q")

    class Meta:
        model = Ticket
        fields = ["status", "category", "priority", "partnership", "school", "supplier"]

    def filter_open(self, queryset: QuerySet[Ticket], name: str, value: bool) -> QuerySet[Ticket]:
        open_ = Q(status__in=OPEN_STATUSES)
        return queryset.filter(open_ if value else ~open_)

    def filter_breached(
        self, queryset: QuerySet[Ticket], name: str, value: bool
    ) -> QuerySet[Ticket]:
        q = breached_q(timezone.now())
        return queryset.filter(q if value else ~q)

    def filter_text(self, queryset: QuerySet[Ticket], name: str, value: str) -> QuerySet[Ticket]:
        value = value.strip()
        if not value:
            return queryset
        if connection.vendor == "postgresql":
            from django.contrib.postgres.search import SearchQuery, SearchVector

            # Matches the GIN index made in migration 0002 (same expression).
            vector = SearchVector("search_document", config="english")
            query = SearchQuery(value, config="english", search_type="websearch")
            return queryset.annotate(_search=vector).filter(_search=query)
        for word in value.split():
            queryset = queryset.filter(search_document__icontains=word)
        return queryset


def breached_q(now: Any) -> Q:
    """Late on first response, or on resolution (as of ``now``), in the database."""
    first_late = Q(first_response_at__isnull=True, first_response_due_at__lt=now) | Q(
        first_response_at__gt=F("first_response_due_at")
    )
    resolution_late = Q(resolution_breached=True) | Q(
        clock_started_at__isnull=False, resolution_due_at__lt=now
    )
    return first_late | resolution_late
