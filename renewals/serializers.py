"""Input and output shapes only; the rules live in services.py."""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from accounts.models import Contact, Partnership
from partnership_crm.api import ScopedPrimaryKeyRelatedField

from .models import AgreementTerm, ValueReview


def _enum(choices: Any, *, blank: bool = False) -> dict[str, Any]:
    """The choices written out where they are used (inside ``allOf``, which the schema's
    enum naming leaves alone): other choice sets named "status" and "decision" in the API
    keep their component names, and no name collides."""
    values = [value for value, _ in choices]
    labels = "\n".join(f"* `{value}` - {label}" for value, label in choices)
    if blank:
        labels += "\n* `` (empty) - not decided yet"
    enum = [*values, ""] if blank else values
    return {"allOf": [{"type": "string", "enum": enum}], "description": labels}


@extend_schema_field(_enum(ValueReview.Status.choices))
class ReviewStatusField(serializers.ChoiceField):
    pass


@extend_schema_field(_enum(ValueReview.Decision.choices, blank=True))
class ReviewDecisionReadField(serializers.ChoiceField):
    pass


@extend_schema_field(_enum(ValueReview.Decision.choices))
class ReviewDecisionField(serializers.ChoiceField):
    pass


class CommitmentsSerializer(serializers.ModelSerializer):
    """The commitments as they stood when the term began (the partnership holds the live
    ones)."""

    class Meta:
        model = AgreementTerm
        fields = [
            "onsite_hours_per_term",
            "first_response_target_hours",
            "resolution_target_hours",
            "nudges_per_contact_per_week",
            "nudges_per_contact_per_term",
        ]
        read_only_fields = fields


class AgreementTermSerializer(serializers.ModelSerializer):
    school_name = serializers.CharField(source="school.name", read_only=True)
    supplier_name = serializers.CharField(source="supplier.name", read_only=True)
    commitments = CommitmentsSerializer(source="*", read_only=True)
    review = serializers.IntegerField(
        source="review_pk",
        read_only=True,
        allow_null=True,
        help_text="The term's value review, once opened.",
    )

    class Meta:
        model = AgreementTerm
        fields = [
            "id",
            "partnership",
            "supplier",
            "supplier_name",
            "school",
            "school_name",
            "number",
            "starts_on",
            "ends_on",
            "notice_days",
            "notice_on",
            "annual_value",
            "commitments",
            "status",
            "review",
            "created_at",
        ]
        read_only_fields = fields


class TermCreateSerializer(serializers.Serializer):
    partnership = ScopedPrimaryKeyRelatedField(Partnership)
    starts_on = serializers.DateField()
    ends_on = serializers.DateField()
    notice_days = serializers.IntegerField(
        min_value=0, max_value=32767, default=90, help_text="Notice to end, in days."
    )
    annual_value = serializers.DecimalField(
        max_digits=10,
        decimal_places=2,
        min_value=0,
        required=False,
        allow_null=True,
        help_text="Pounds a year; seen by the school and the supplier's staff.",
    )


class TermUpdateSerializer(serializers.Serializer):
    """Any of the current term's dates, notice and value (the rest stay as they are)."""

    starts_on = serializers.DateField(required=False)
    ends_on = serializers.DateField(required=False)
    notice_days = serializers.IntegerField(min_value=0, max_value=32767, required=False)
    annual_value = serializers.DecimalField(
        max_digits=10, decimal_places=2, min_value=0, required=False, allow_null=True
    )


class ValueReviewSerializer(serializers.ModelSerializer):
    """A review as lists show it: who opened it, its state and decision; no figures."""

    school_name = serializers.CharField(source="school.name", read_only=True)
    supplier_name = serializers.CharField(source="supplier.name", read_only=True)
    term_number = serializers.IntegerField(source="term.number", read_only=True)
    term_starts_on = serializers.DateField(source="term.starts_on", read_only=True)
    term_ends_on = serializers.DateField(source="term.ends_on", read_only=True)
    notice_on = serializers.DateField(source="term.notice_on", read_only=True)
    status = ReviewStatusField(choices=ValueReview.Status.choices, read_only=True)
    decision = ReviewDecisionReadField(choices=ValueReview.Decision.choices, read_only=True)

    class Meta:
        model = ValueReview
        fields = [
            "id",
            "term",
            "term_number",
            "term_starts_on",
            "term_ends_on",
            "notice_on",
            "partnership",
            "supplier",
            "supplier_name",
            "school",
            "school_name",
            "opened_how",
            "opened_by",
            "opened_at",
            "status",
            "decision",
            "decision_reason",
            "changes_agreed",
            "decided_by",
            "decided_at",
            "next_term",
        ]
        read_only_fields = fields


class ValueReviewDetailSerializer(ValueReviewSerializer):
    """One review with its evidence: the figures (live while open, as they stood at the
    decision once decided) and the staff survey's answers as the reader may see them."""

    figures = serializers.SerializerMethodField()
    survey = serializers.SerializerMethodField()

    class Meta(ValueReviewSerializer.Meta):
        fields = [*ValueReviewSerializer.Meta.fields, "figures", "survey"]
        read_only_fields = fields

    @extend_schema_field(OpenApiTypes.OBJECT)
    def get_figures(self, obj: ValueReview) -> dict[str, Any]:
        return self.context["figures"](obj)

    @extend_schema_field(OpenApiTypes.OBJECT)
    def get_survey(self, obj: ValueReview) -> dict[str, Any]:
        return self.context["survey"](obj)


class ReviewCreateSerializer(serializers.Serializer):
    term = ScopedPrimaryKeyRelatedField(AgreementTerm)


class DecideSerializer(serializers.Serializer):
    decision = ReviewDecisionField(choices=ValueReview.Decision.choices)
    decision_reason = serializers.CharField(max_length=2000)
    changes_agreed = serializers.CharField(
        max_length=2000, required=False, allow_blank=True, default=""
    )
    next_ends_on = serializers.DateField(
        required=False,
        allow_null=True,
        help_text="When renewing: the new term's last day (by default as long as this one).",
    )
    annual_value = serializers.DecimalField(
        max_digits=10,
        decimal_places=2,
        min_value=0,
        required=False,
        allow_null=True,
        help_text="When renewing: the new term's annual value (by default this term's).",
    )


class SurveySendSerializer(serializers.Serializer):
    contact_ids = ScopedPrimaryKeyRelatedField(
        Contact,
        many=True,
        required=False,
        help_text="The school's staff to ask; by default the partnership's cohort.",
    )
    tag = serializers.CharField(
        max_length=50, required=False, allow_blank=True, help_text="Ask the staff with this tag."
    )
    message = serializers.CharField(
        max_length=2000,
        required=False,
        allow_blank=True,
        help_text="A line of your own above the question.",
    )


class SurveySentSerializer(serializers.Serializer):
    invited = serializers.IntegerField(help_text="How many people were asked now.")
    survey = serializers.DictField(help_text="The survey's answers as you may see them.")
