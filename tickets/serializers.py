"""Input and output shapes only; the rules live in services.py."""

from __future__ import annotations

from typing import Any

from django.urls import reverse
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from accounts.models import Partnership, Product
from accounts.serializers import SupplierStaffField
from partnership_crm.api import ScopedPrimaryKeyRelatedField

from .models import Status, Ticket, TicketAttachment, TicketEvent, TicketMessage


class SlaSerializer(serializers.Serializer):
    first_response_due_at = serializers.DateTimeField()
    first_response_at = serializers.DateTimeField(allow_null=True)
    first_response_breached = serializers.BooleanField()
    resolution_due_at = serializers.DateTimeField(
        allow_null=True, help_text="Null while the clock is stopped (waiting on the school)."
    )
    resolved_at = serializers.DateTimeField(allow_null=True)
    resolution_breached = serializers.BooleanField()
    is_paused = serializers.BooleanField()


class SlaDetailSerializer(SlaSerializer):
    business_seconds_elapsed = serializers.IntegerField(
        help_text="School working seconds counted against the resolution target."
    )


class AttachmentSerializer(serializers.ModelSerializer):
    url = serializers.SerializerMethodField(
        help_text="Where to download it (the same sign-in; 404 outside your scope)."
    )

    class Meta:
        model = TicketAttachment
        fields = ["id", "message", "name", "content_type", "size", "url", "created_at"]
        read_only_fields = fields
        extra_kwargs = {
            "message": {"help_text": "The message it is on; null: given with the ticket."},
            "content_type": {"help_text": "Found in the file's content, not its name."},
            "size": {"help_text": "Bytes."},
        }

    def get_url(self, obj: TicketAttachment) -> str:
        return reverse("ticket-attachment", args=[obj.ticket_id, obj.pk])


def files_field(**kwargs: Any) -> serializers.ListField:
    """Files sent as multipart/form-data, repeating the ``files`` part (checked and
    stored by tickets/attachments.py: size, count, type found in the content)."""
    return serializers.ListField(
        child=serializers.FileField(allow_empty_file=False),
        write_only=True,
        help_text="Photos, PDFs or Word, Excel and PowerPoint files (multipart/form-data, "
        "one `files` part each).",
        **kwargs,
    )


class TicketSerializer(serializers.ModelSerializer):
    """A ticket with its SLA figures. ``context["sla"]`` maps a ticket to its SlaView."""

    partnership = ScopedPrimaryKeyRelatedField(Partnership)
    product = ScopedPrimaryKeyRelatedField(Product, required=False, allow_null=True)
    assignee = SupplierStaffField(required=False, allow_null=True)
    supplier_name = serializers.CharField(source="supplier.name", read_only=True)
    school_name = serializers.CharField(source="school.name", read_only=True)
    raised_by_name = serializers.CharField(source="raised_by.get_full_name", read_only=True)
    sla = serializers.SerializerMethodField()

    class Meta:
        model = Ticket
        fields = [
            "id",
            "partnership",
            "supplier",
            "supplier_name",
            "school",
            "school_name",
            "product",
            "raised_by",
            "raised_by_name",
            "assignee",
            "subject",
            "description",
            "category",
            "priority",
            "status",
            "outcome",
            "outcome_reason",
            "rating",
            "rating_comment",
            "reopen_count",
            "created_at",
            "updated_at",
            "sla",
        ]
        read_only_fields = [
            "supplier",
            "school",
            "raised_by",
            "status",
            "outcome",
            "outcome_reason",
            "rating",
            "rating_comment",
            "reopen_count",
            "created_at",
            "updated_at",
        ]

    @extend_schema_field(SlaSerializer)
    def get_sla(self, obj: Ticket) -> dict[str, Any]:
        sla = self.context["sla"](obj)
        return SlaSerializer(sla).data

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if self.instance is not None:
            for field in ("partnership", "product"):
                if field in attrs:
                    raise serializers.ValidationError({field: "This cannot change."})
        return attrs


class MessageSerializer(serializers.ModelSerializer):
    author_name = serializers.CharField(source="author.get_full_name", read_only=True)
    attachments = AttachmentSerializer(many=True, read_only=True)
    files = files_field(required=False)

    class Meta:
        model = TicketMessage
        fields = [
            "id",
            "author",
            "author_name",
            "body",
            "is_internal",
            "channel",
            "reopened",
            "reopen",
            "created_at",
            "attachments",
            "files",
        ]
        read_only_fields = ["author", "channel", "reopened", "created_at"]

    reopen = serializers.BooleanField(
        write_only=True,
        required=False,
        allow_null=True,
        default=None,
        help_text="Required from the school side on a resolved or closed ticket: whether "
        "this message reopens it.",
    )


class TicketCreateSerializer(TicketSerializer):
    files = files_field(required=False)

    class Meta(TicketSerializer.Meta):
        fields = [*TicketSerializer.Meta.fields, "files"]


class AttachmentUploadSerializer(serializers.Serializer):
    files = files_field()
    message = ScopedPrimaryKeyRelatedField(
        TicketMessage,
        required=False,
        allow_null=True,
        help_text="One of your own messages on this ticket; leave it out to attach the files "
        "to the ticket itself (school staff only).",
    )


class EventSerializer(serializers.ModelSerializer):
    by = serializers.StringRelatedField()

    class Meta:
        model = TicketEvent
        fields = ["kind", "from_value", "to_value", "by", "at"]


class TicketTransitionSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=Status.choices)
    outcome = serializers.ChoiceField(choices=Ticket.Outcome.choices, required=False)
    outcome_reason = serializers.CharField(required=False, allow_blank=True, max_length=5000)
    reason = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=5000,
        help_text="The school's reason for reopening a resolved ticket (required then).",
    )


class RatingSerializer(serializers.Serializer):
    rating = serializers.IntegerField(min_value=1, max_value=5)
    comment = serializers.CharField(required=False, allow_blank=True, max_length=2000)


class TicketDetailSerializer(TicketSerializer):
    sla = serializers.SerializerMethodField()
    messages = serializers.SerializerMethodField()
    history = EventSerializer(source="events", many=True, read_only=True)
    allowed_statuses = serializers.SerializerMethodField()
    attachments = AttachmentSerializer(
        source="own_attachments",
        many=True,
        read_only=True,
        help_text="The files given with the ticket as it was raised (each message lists its own).",
    )

    class Meta(TicketSerializer.Meta):
        fields = [
            *TicketSerializer.Meta.fields,
            "rated_at",
            "attachments",
            "messages",
            "history",
            "allowed_statuses",
        ]

    @extend_schema_field(SlaDetailSerializer)
    def get_sla(self, obj: Ticket) -> dict[str, Any]:
        return SlaDetailSerializer(self.context["sla"](obj)).data

    @extend_schema_field(MessageSerializer(many=True))
    def get_messages(self, obj: Ticket) -> Any:
        # Prefetched through TicketMessage.objects.visible_to(user): no internal notes
        # for school users.
        return MessageSerializer(obj.visible_messages, many=True).data

    def get_allowed_statuses(self, obj: Ticket) -> list[str]:
        return self.context["allowed_statuses"](obj)


def _dt(value: Any, tz: Any) -> str | None:
    """What DRF's DateTimeField renders: the current time zone, ISO 8601, 'Z' for UTC."""
    if value is None:
        return None
    text = value.astimezone(tz).isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


# What a list row reads, as plain values (no model instances: building four of them per
# row was most of a page's cost).
LIST_VALUES = [
    "id",
    "partnership_id",
    "supplier_id",
    "supplier__name",
    "school_id",
    "school__name",
    "product_id",
    "raised_by_id",
    "raised_by__full_name",
    "raised_by__email",
    "assignee_id",
    "subject",
    "description",
    "category",
    "priority",
    "status",
    "outcome",
    "outcome_reason",
    "rating",
    "rating_comment",
    "reopen_count",
    "created_at",
    "updated_at",
    # what tickets.sla.view reads
    "first_response_due_at",
    "first_response_at",
    "resolution_due_at",
    "resolved_at",
    "resolution_breached",
    "clock_started_at",
    "sla_used_seconds",
]


def ticket_rows(values: list[dict[str, Any]], now: Any) -> list[dict[str, Any]]:
    """The list's rows from ``.values(*LIST_VALUES)``: the same shape as TicketSerializer (a
    test holds them equal) at a fraction of the cost per row, since a page has up to 200."""
    from types import SimpleNamespace

    from django.utils import timezone

    from . import sla

    tz = timezone.get_current_timezone()
    rows = []
    for t in values:
        v = sla.view(SimpleNamespace(**t), now)  # type: ignore[arg-type]
        rows.append(
            {
                "id": t["id"],
                "partnership": t["partnership_id"],
                "supplier": t["supplier_id"],
                "supplier_name": t["supplier__name"],
                "school": t["school_id"],
                "school_name": t["school__name"],
                "product": t["product_id"],
                "raised_by": t["raised_by_id"],
                "raised_by_name": t["raised_by__full_name"] or t["raised_by__email"],
                "assignee": t["assignee_id"],
                "subject": t["subject"],
                "description": t["description"],
                "category": t["category"],
                "priority": t["priority"],
                "status": t["status"],
                "outcome": t["outcome"],
                "outcome_reason": t["outcome_reason"],
                "rating": t["rating"],
                "rating_comment": t["rating_comment"],
                "reopen_count": t["reopen_count"],
                "created_at": _dt(t["created_at"], tz),
                "updated_at": _dt(t["updated_at"], tz),
                "sla": {
                    "first_response_due_at": _dt(v.first_response_due_at, tz),
                    "first_response_at": _dt(v.first_response_at, tz),
                    "first_response_breached": v.first_response_breached,
                    "resolution_due_at": _dt(v.resolution_due_at, tz),
                    "resolved_at": _dt(v.resolved_at, tz),
                    "resolution_breached": v.resolution_breached,
                    "is_paused": v.is_paused,
                },
            }
        )
    return rows
