"""Read-only admin views of agreement terms and value reviews. Terms change, reviews open
and renewals are decided only through renewals/services.py (a decision starts the next
term or ends the partnership, and keeps the figures as they stood): an edit here would
skip all of that. Staff survey answers are the school's and are not shown here."""

from __future__ import annotations

from django.contrib import admin

from accounts.admin import ReadOnlyAdmin

from .models import AgreementTerm, ValueReview


@admin.register(AgreementTerm)
class AgreementTermAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "partnership_id",
        "supplier",
        "school",
        "number",
        "starts_on",
        "ends_on",
        "notice_on",
        "annual_value",
        "status",
    ]
    list_filter = [
        "status",
        ("supplier", admin.RelatedOnlyFieldListFilter),
        ("school", admin.RelatedOnlyFieldListFilter),
    ]
    list_select_related = ["supplier", "school"]
    search_fields = ["school__name", "school__urn", "supplier__name"]
    date_hierarchy = "notice_on"
    ordering = ["notice_on", "id"]


@admin.register(ValueReview)
class ValueReviewAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "partnership_id",
        "supplier",
        "school",
        "opened_how",
        "opened_at",
        "status",
        "decision",
        "decided_at",
    ]
    list_filter = [
        "status",
        "decision",
        "opened_how",
        ("supplier", admin.RelatedOnlyFieldListFilter),
        ("school", admin.RelatedOnlyFieldListFilter),
    ]
    list_select_related = ["supplier", "school"]
    search_fields = ["school__name", "school__urn", "supplier__name"]
    date_hierarchy = "opened_at"
    # The figures kept at the decision are read on the review's page and its pack.
    exclude = ["figures"]
