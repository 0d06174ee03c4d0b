"""Input and output shapes only; the rules live in services.py."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from accounts.models import Contact, Organisation, Partnership, Stage, StakeholderTag
from partnership_crm.api import ScopedPrimaryKeyRelatedField

from .models import Nudge, NudgeEvent, NudgeReply, NudgeRule, NudgeTemplate, OptOut
from .sanitise import removed
from .templating import VARIABLES


class NudgeTemplateSerializer(serializers.ModelSerializer):
    supplier = ScopedPrimaryKeyRelatedField(Organisation, required=False)
    html_removed = serializers.SerializerMethodField(
        help_text="What sending will strip from body_html (scripts, styles, unsafe links, "
        "tracking pixels...): empty when nothing."
    )

    class Meta:
        model = NudgeTemplate
        fields = [
            "id",
            "supplier",
            "name",
            "subject",
            "body_text",
            "body_html",
            "is_active",
            "html_removed",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["created_at", "updated_at"]
        validators: list[Any] = []
        extra_kwargs = {
            "body_text": {
                "help_text": "Placeholders: " + ", ".join("{{ " + v + " }}" for v in VARIABLES)
            },
        }

    @extend_schema_field(serializers.ListField(child=serializers.CharField()))
    def get_html_removed(self, obj: NudgeTemplate) -> list[str]:
        return removed(obj.body_html)


class PreviewRequestSerializer(serializers.Serializer):
    contact = ScopedPrimaryKeyRelatedField(Contact)
    partnership = ScopedPrimaryKeyRelatedField(Partnership, required=False)


class PreviewSerializer(serializers.Serializer):
    subject = serializers.CharField()
    text = serializers.CharField()
    html = serializers.CharField()


class RulePreviewSerializer(serializers.Serializer):
    """One nudge a rule would schedule (nudge-rules/{id}/preview/; nothing is saved)."""

    contact = serializers.IntegerField()
    contact_name = serializers.CharField()
    partnership = serializers.IntegerField()
    occurrence = serializers.CharField()
    due_at = serializers.DateTimeField()


class NudgeRuleSerializer(serializers.ModelSerializer):
    supplier = ScopedPrimaryKeyRelatedField(Organisation, required=False)
    partnership = ScopedPrimaryKeyRelatedField(Partnership, required=False, allow_null=True)
    template = ScopedPrimaryKeyRelatedField(NudgeTemplate)
    audience_tags = serializers.ListField(
        child=serializers.ChoiceField(choices=StakeholderTag.choices),
        required=False,
        source="tag_list",
    )
    audience_contacts = ScopedPrimaryKeyRelatedField(Contact, many=True, required=False)
    stages = serializers.ListField(
        child=serializers.ChoiceField(choices=Stage.choices), required=False, source="stage_list"
    )

    class Meta:
        model = NudgeRule
        fields = [
            "id",
            "supplier",
            "partnership",
            "stages",
            "template",
            "name",
            "trigger",
            "every_n_school_weeks",
            "days",
            "audience_tags",
            "audience_cohort",
            "audience_contacts",
            "is_active",
            "created_at",
        ]
        read_only_fields = ["created_at"]

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if "tag_list" in attrs:
            attrs["audience_tags"] = attrs.pop("tag_list")
        if "stage_list" in attrs:
            attrs["stages"] = attrs.pop("stage_list")
        return attrs


class NudgeEventSerializer(serializers.ModelSerializer):
    class Meta:
        model = NudgeEvent
        fields = ["event", "occurred_at", "reason"]


class NudgeSerializer(serializers.ModelSerializer):
    partnership = ScopedPrimaryKeyRelatedField(Partnership)
    contact = ScopedPrimaryKeyRelatedField(Contact)
    template = ScopedPrimaryKeyRelatedField(NudgeTemplate, required=False, allow_null=True)
    contact_name = serializers.SerializerMethodField()
    supplier_name = serializers.CharField(source="supplier.name", read_only=True)
    events = NudgeEventSerializer(many=True, read_only=True)
    sent_subject = serializers.CharField(
        source="rendered_subject",
        read_only=True,
        help_text="The subject as rendered for sending (blank until the first attempt).",
    )

    class Meta:
        model = Nudge
        fields = [
            "id",
            "supplier",
            "supplier_name",
            "school",
            "partnership",
            "contact",
            "contact_name",
            "rule",
            "template",
            "subject",
            "body_text",
            "body_html",
            "sent_subject",
            "due_at",
            "next_attempt_at",
            "status",
            "status_reason",
            "decided_at",
            "attempts",
            "sent_at",
            "delivery",
            "delivered_at",
            "opened_at",
            "clicked_at",
            "events",
            "created_at",
        ]
        read_only_fields = [
            "supplier",
            "school",
            "rule",
            "next_attempt_at",
            "status",
            "status_reason",
            "decided_at",
            "attempts",
            "sent_at",
            "delivery",
            "delivered_at",
            "opened_at",
            "clicked_at",
            "created_at",
        ]

    def get_contact_name(self, obj: Nudge) -> str:
        return f"{obj.contact.first_name} {obj.contact.last_name}".strip()


class OptOutSerializer(serializers.ModelSerializer):
    contact = ScopedPrimaryKeyRelatedField(Contact)
    supplier = ScopedPrimaryKeyRelatedField(
        Organisation, required=False, allow_null=True, help_text="Empty: stop every supplier."
    )
    contact_name = serializers.SerializerMethodField()

    class Meta:
        model = OptOut
        fields = ["id", "contact", "contact_name", "supplier", "source", "note", "created_at"]
        read_only_fields = ["source", "created_at"]
        validators: list[Any] = []

    def get_contact_name(self, obj: OptOut) -> str:
        return f"{obj.contact.first_name} {obj.contact.last_name}".strip()


class NudgeReplySerializer(serializers.ModelSerializer):
    contact_name = serializers.SerializerMethodField()
    stopped_rule_name = serializers.SerializerMethodField()
    stopping = serializers.BooleanField(
        source="is_stopping", read_only=True, help_text="The rule is stopped for this contact."
    )

    class Meta:
        model = NudgeReply
        fields = [
            "id",
            "nudge",
            "partnership",
            "contact",
            "contact_name",
            "subject",
            "body",
            "is_auto",
            "received_at",
            "stopped_rule",
            "stopped_rule_name",
            "stopping",
            "resumed_at",
        ]
        read_only_fields = fields

    def get_contact_name(self, obj: NudgeReply) -> str:
        return f"{obj.contact.first_name} {obj.contact.last_name}".strip()

    def get_stopped_rule_name(self, obj: NudgeReply) -> str:
        return obj.stopped_rule.name if obj.stopped_rule else ""
