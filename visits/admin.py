from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from accounts.admin import ReadOnlyAdmin
from tickets.admin import TenancyReadOnlyMixin

from .corrections import is_evidence
from .models import (
    CalendarFeed,
    FollowUpAction,
    OnsiteCorrection,
    ReadinessAssessment,
    ReadinessCheck,
    TimeEntry,
    Visit,
)


class ReadinessCheckInline(admin.TabularInline):
    model = ReadinessCheck
    extra = 0


class FollowUpActionInline(admin.TabularInline):
    model = FollowUpAction
    extra = 0
    raw_id_fields = ["done_by"]


@admin.register(Visit)
class VisitAdmin(TenancyReadOnlyMixin, admin.ModelAdmin):
    list_display = ["id", "kind", "school", "supplier", "starts_at", "ends_at", "status"]
    list_filter = ["kind", "status", ("supplier", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["school__name", "school__urn", "agenda"]
    list_select_related = ["school", "supplier"]
    raw_id_fields = ["partnership", "created_by"]
    filter_horizontal = ["attendees"]
    autocomplete_fields = ["contacts"]
    date_hierarchy = "starts_at"
    # Status moves through visits.services (time entries, the pilot gate).
    readonly_fields = ["status", "status_reason", "completed_at", "sequence"]


@admin.register(ReadinessAssessment)
class ReadinessAssessmentAdmin(admin.ModelAdmin):
    list_display = ["visit", "outcome", "updated_at"]
    list_filter = ["outcome"]
    raw_id_fields = ["visit", "assessed_by"]
    inlines = [ReadinessCheckInline, FollowUpActionInline]


@admin.register(TimeEntry)
class TimeEntryAdmin(TenancyReadOnlyMixin, admin.ModelAdmin):
    list_display = ["date", "school", "supplier", "user", "minutes", "mode", "activity"]
    list_filter = ["mode", "activity", ("supplier", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["school__name", "school__urn", "notes"]
    list_select_related = ["school", "supplier", "user"]
    raw_id_fields = ["partnership", "visit", "ticket", "user"]
    date_hierarchy = "date"

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        readonly = list(super().get_readonly_fields(request, obj))
        if obj is not None and is_evidence(obj):
            # A completed visit's on-site time changes only with a reason the school sees:
            # through the API (visits.corrections), not here.
            readonly += ["minutes", "date", "mode", "visit"]
        return readonly

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if obj is not None and is_evidence(obj):
            return False
        return super().has_delete_permission(request, obj)


@admin.register(OnsiteCorrection)
class OnsiteCorrectionAdmin(ReadOnlyAdmin):
    """Read-only: the record of changes to on-site time, written by visits.corrections."""

    list_display = ["at", "school", "supplier", "change", "old_value", "new_value", "by"]
    list_filter = ["change", ("supplier", admin.RelatedOnlyFieldListFilter)]
    list_select_related = ["school", "supplier", "by"]
    search_fields = ["school__name", "school__urn", "reason"]
    date_hierarchy = "at"


@admin.register(CalendarFeed)
class CalendarFeedAdmin(admin.ModelAdmin):
    list_display = ["user", "created_at", "last_fetched_at"]
    raw_id_fields = ["user"]
    readonly_fields = ["token_hash"]
