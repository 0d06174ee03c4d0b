"""Read-only admin views of what the dispatcher did. Nudges are changed only through the
services (cancel, a supplier admin's resend or drop of one held in doubt): an edit here
could send an email twice or move it to another tenant."""

from __future__ import annotations

from django.contrib import admin

from accounts.admin import ReadOnlyAdmin, ReadOnlyInline

from .models import Nudge, NudgeEvent, NudgeReply, SendAttempt


class NudgeEventInline(ReadOnlyInline):
    model = NudgeEvent
    fields = ["occurred_at", "event", "email", "reason", "sg_event_id"]
    readonly_fields = fields


@admin.register(Nudge)
class NudgeAdmin(ReadOnlyAdmin):
    list_display = ["id", "due_at", "supplier", "school", "contact", "status", "delivery"]
    list_filter = [
        "status",
        "delivery",
        ("supplier", admin.RelatedOnlyFieldListFilter),
        ("school", admin.RelatedOnlyFieldListFilter),
    ]
    list_select_related = ["supplier", "school", "contact"]
    search_fields = ["contact__email", "rendered_subject", "subject", "sendgrid_message_id"]
    date_hierarchy = "due_at"
    inlines = [NudgeEventInline]


@admin.register(SendAttempt)
class SendAttemptAdmin(ReadOnlyAdmin):
    list_display = ["id", "started_at", "emails", "outcome", "http_status", "message_id"]
    list_filter = ["outcome"]
    date_hierarchy = "started_at"


@admin.register(NudgeReply)
class NudgeReplyAdmin(ReadOnlyAdmin):
    list_display = ["id", "received_at", "supplier", "contact", "is_auto", "resumed_at"]
    list_filter = ["is_auto", ("supplier", admin.RelatedOnlyFieldListFilter)]
    list_select_related = ["supplier", "contact"]
