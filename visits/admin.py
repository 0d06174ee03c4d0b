from django.contrib import admin

from tickets.admin import TenancyReadOnlyMixin

from .models import (
    CalendarFeed,
    FollowUpAction,
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


@admin.register(CalendarFeed)
class CalendarFeedAdmin(admin.ModelAdmin):
    list_display = ["user", "created_at", "last_fetched_at"]
    raw_id_fields = ["user"]
    readonly_fields = ["token_hash"]
