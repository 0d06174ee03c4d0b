from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from .models import IdempotencyKey, Ticket, TicketEvent, TicketMessage


class TenancyReadOnlyMixin:
    """For rows filed under a partnership (tickets, visits, time entries): ``supplier``
    and ``school`` are copies of the partnership's that every scope filter reads (the
    model's ``save()`` derives them), and the partnership is fixed once the row exists,
    so the admin can never move a row to another tenant."""

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        readonly = [*super().get_readonly_fields(request, obj), "supplier", "school"]  # type: ignore[misc]
        if obj is not None:
            readonly.append("partnership")
        return readonly


class TicketMessageInline(admin.TabularInline):
    model = TicketMessage
    extra = 0
    fields = ["created_at", "author", "is_internal", "body"]
    readonly_fields = ["created_at", "author"]
    autocomplete_fields = ["author"]


class TicketEventInline(admin.TabularInline):
    model = TicketEvent
    extra = 0
    can_delete = False
    fields = ["at", "kind", "from_value", "to_value", "by"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False


@admin.register(Ticket)
class TicketAdmin(TenancyReadOnlyMixin, admin.ModelAdmin):
    list_display = [
        "id",
        "subject",
        "school",
        "supplier",
        "category",
        "priority",
        "status",
        "created_at",
        "first_response_due_at",
        "first_response_at",
        "resolution_breached",
        "rating",
    ]
    list_filter = [
        "status",
        "category",
        "priority",
        "resolution_breached",
        ("supplier", admin.RelatedOnlyFieldListFilter),
    ]
    search_fields = ["subject", "school__name", "school__urn", "raised_by__email"]
    list_select_related = ["school", "supplier"]
    raw_id_fields = ["partnership", "product", "raised_by", "assignee"]
    date_hierarchy = "created_at"
    # The workflow and the SLA clock move only through tickets.services.
    readonly_fields = [
        "status",
        "first_response_target_seconds",
        "resolution_target_seconds",
        "first_response_due_at",
        "first_response_at",
        "sla_used_seconds",
        "clock_started_at",
        "resolution_due_at",
        "resolved_at",
        "closed_at",
        "resolution_breached",
        "reopen_count",
        "rating",
        "rating_comment",
        "rated_at",
        "outcome",
        "outcome_reason",
    ]
    inlines = [TicketMessageInline, TicketEventInline]
    show_full_result_count = False  # no COUNT(*) over a million rows on every page

    def has_add_permission(self, request: HttpRequest) -> bool:
        # A ticket is raised by school staff (tickets.services.ticket_create starts its SLA
        # clock from the agreement); here it is looked after, not made up.
        return False


@admin.register(TicketMessage)
class TicketMessageAdmin(admin.ModelAdmin):
    list_display = ["id", "ticket", "author", "is_internal", "created_at"]
    list_filter = ["is_internal"]
    raw_id_fields = ["ticket", "author"]
    show_full_result_count = False


@admin.register(IdempotencyKey)
class IdempotencyKeyAdmin(admin.ModelAdmin):
    list_display = ["key", "user", "ticket", "created_at"]
    raw_id_fields = ["user", "ticket"]
