from django.contrib import admin

from .models import TermDateFeed


@admin.register(TermDateFeed)
class TermDateFeedAdmin(admin.ModelAdmin):
    list_display = ["school", "url", "checked_at", "error", "pending_since", "applied_at"]
    readonly_fields = [
        "checked_at",
        "error",
        "pending_body",
        "pending_changes",
        "pending_since",
        "applied_hash",
        "applied_at",
        "applied_by",
    ]
    autocomplete_fields = ["school"]
