"""Input and output shapes only; the rules live in services.py."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from accounts.models import Contact, Partnership
from accounts.serializers import SupplierStaffField
from partnership_crm.api import ScopedPrimaryKeyRelatedField
from tickets.models import Ticket

from .models import (
    FollowUpAction,
    ReadinessArea,
    ReadinessAssessment,
    ReadinessCheck,
    TimeEntry,
    Visit,
)


class ReadinessCheckSerializer(serializers.ModelSerializer):
    area = serializers.ChoiceField(choices=ReadinessArea.choices)

    class Meta:
        model = ReadinessCheck
        fields = ["area", "result", "notes"]


class FollowUpActionSerializer(serializers.ModelSerializer):
    is_done = serializers.BooleanField(read_only=True)

    class Meta:
        model = FollowUpAction
        fields = ["id", "description", "owner", "due_on", "is_done", "done_at", "done_by"]
        read_only_fields = ["done_at", "done_by"]


class AssessmentSerializer(serializers.ModelSerializer):
    checks = ReadinessCheckSerializer(many=True, required=False)
    actions = FollowUpActionSerializer(many=True, required=False)
    missing_areas = serializers.SerializerMethodField()

    class Meta:
        model = ReadinessAssessment
        fields = [
            "outcome",
            "summary",
            "checks",
            "actions",
            "missing_areas",
            "assessed_by",
            "updated_at",
        ]
        read_only_fields = ["assessed_by", "updated_at"]

    def get_missing_areas(self, obj: ReadinessAssessment) -> list[str]:
        done = {c.area for c in obj.checks.all()}
        return [a for a in ReadinessArea.values if a not in done]


class VisitSerializer(serializers.ModelSerializer):
    partnership = ScopedPrimaryKeyRelatedField(Partnership)
    attendees = SupplierStaffField(many=True, required=False)
    contacts = ScopedPrimaryKeyRelatedField(Contact, many=True, required=False)
    school_name = serializers.CharField(source="school.name", read_only=True)
    supplier_name = serializers.CharField(source="supplier.name", read_only=True)
    assessment = AssessmentSerializer(read_only=True, allow_null=True)

    class Meta:
        model = Visit
        fields = [
            "id",
            "partnership",
            "supplier",
            "supplier_name",
            "school",
            "school_name",
            "kind",
            "starts_at",
            "ends_at",
            "status",
            "status_reason",
            "attendees",
            "contacts",
            "agenda",
            "notes",
            "completed_at",
            "assessment",
            "created_at",
            "updated_at",
        ]
        read_only_fields = [
            "supplier",
            "school",
            "status",
            "status_reason",
            "completed_at",
            "created_at",
            "updated_at",
        ]

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if self.instance is not None and "partnership" in attrs:
            raise serializers.ValidationError({"partnership": "A visit cannot move partnership."})
        return attrs


class CompleteSerializer(serializers.Serializer):
    notes = serializers.CharField(required=False, allow_blank=True)
    record_time = serializers.BooleanField(default=True, help_text="Record the on-site time entry.")
    minutes = serializers.IntegerField(
        required=False, min_value=1, max_value=24 * 60, help_text="Defaults to the visit's length."
    )


class CancelSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=2000)
    no_show = serializers.BooleanField(default=False)


class ActionDoneSerializer(serializers.Serializer):
    done = serializers.BooleanField()


class TimeEntrySerializer(serializers.ModelSerializer):
    partnership = ScopedPrimaryKeyRelatedField(Partnership)
    visit = ScopedPrimaryKeyRelatedField(Visit, required=False, allow_null=True)
    ticket = ScopedPrimaryKeyRelatedField(Ticket, required=False, allow_null=True)
    user_name = serializers.CharField(source="user.get_full_name", read_only=True)
    reason = serializers.CharField(
        write_only=True,
        required=False,
        allow_blank=True,
        max_length=2000,
        help_text="Required to change the minutes, day, mode or visit of a completed visit's "
        "on-site entry: recorded and shown to the school's leads.",
    )

    class Meta:
        model = TimeEntry
        fields = [
            "id",
            "partnership",
            "supplier",
            "school",
            "visit",
            "ticket",
            "user",
            "user_name",
            "date",
            "minutes",
            "mode",
            "activity",
            "notes",
            "reason",
            "created_at",
        ]
        read_only_fields = ["supplier", "school", "user", "created_at"]
        validators: list[Any] = []  # one on-site entry per visit: the service, then the DB

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if self.instance is not None and "partnership" in attrs:
            raise serializers.ValidationError({"partnership": "Time cannot move partnership."})
        return attrs


class TermSerializer(serializers.Serializer):
    name = serializers.CharField()
    starts_on = serializers.DateField()
    ends_on = serializers.DateField()
    from_school_calendar = serializers.BooleanField()


class OnsiteSummarySerializer(serializers.Serializer):
    partnership_id = serializers.IntegerField()
    term = TermSerializer()
    promised_hours = serializers.DecimalField(max_digits=6, decimal_places=1)
    delivered_hours = serializers.DecimalField(max_digits=6, decimal_places=1)
    planned_hours = serializers.DecimalField(max_digits=6, decimal_places=1)
    expected_by_now_hours = serializers.DecimalField(max_digits=6, decimal_places=1)
    shortfall_hours = serializers.DecimalField(max_digits=6, decimal_places=1)
    is_behind = serializers.BooleanField()


class DeleteReasonSerializer(serializers.Serializer):
    reason = serializers.CharField(required=False, allow_blank=True, max_length=2000)
