"""Input and output shapes only; the rules live in services.py."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from partnership_crm.api import ScopedPrimaryKeyRelatedField

from .models import (
    Contact,
    ContactProposal,
    Organisation,
    Partnership,
    Product,
    Stage,
    StageChange,
    StakeholderTag,
    SuccessCriterion,
    SupplierContactNote,
    TrialPhase,
    User,
)
from .scoping import scope_for
from .services import existing_contact_for, trial_phase_warnings


def own_supplier(user: Any, given: Organisation | None = None) -> Organisation:
    """The supplier a write is for: the one given, else the user's only supplier (someone
    on the staff of several must say which)."""
    if given is not None:
        return given
    suppliers = sorted(scope_for(user).supplier_ids)
    if len(suppliers) != 1:
        raise serializers.ValidationError({"supplier": "Say which supplier."})
    return Organisation.objects.get(pk=suppliers[0])


class SupplierStaffField(serializers.PrimaryKeyRelatedField):
    """A colleague: any active member of one of the requesting user's suppliers."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("queryset", User.objects.none())
        super().__init__(**kwargs)

    def get_queryset(self) -> Any:
        user = self.context["request"].user
        supplier_ids = scope_for(user).supplier_ids
        return User.objects.filter(
            is_active=True, memberships__organisation_id__in=supplier_ids
        ).distinct()


class OrganisationSerializer(serializers.ModelSerializer):
    class Meta:
        model = Organisation
        fields = [
            "id",
            "kind",
            "name",
            "urn",
            "phase",
            "local_authority",
            "postcode",
            "nation",
            "trust",
            "timezone",
            "day_starts",
            "day_ends",
        ]
        read_only_fields = fields


class SchoolUpdateSerializer(serializers.Serializer):
    nation = serializers.ChoiceField(
        choices=Organisation.Nation.choices,
        help_text="Whose bank holidays the school keeps (its SLA clock, send windows and "
        "expected hours skip them). Set by the school's lead.",
    )


class MembershipOutSerializer(serializers.Serializer):
    organisation = serializers.IntegerField(source="organisation_id")
    organisation_name = serializers.CharField(source="organisation.name")
    organisation_kind = serializers.CharField(source="organisation.kind")
    role = serializers.CharField()


class MeSerializer(serializers.ModelSerializer):
    memberships = MembershipOutSerializer(many=True, read_only=True)

    class Meta:
        model = User
        fields = ["id", "email", "full_name", "memberships"]
        read_only_fields = fields


class TokenRequestSerializer(serializers.Serializer):
    email = serializers.EmailField()
    password = serializers.CharField(trim_whitespace=False, style={"input_type": "password"})


class TokenResponseSerializer(serializers.Serializer):
    token = serializers.CharField()
    expiry = serializers.DateTimeField()


# What a supplier's staff see of a school's contact (least disclosure): the school's own
# fields (stakeholder tags, the linked user account, its bookkeeping) are null for them.
SCHOOL_ONLY_CONTACT_FIELDS = ("tags", "user", "created_at", "updated_at")


class ContactSerializer(serializers.ModelSerializer):
    tags = serializers.ListField(
        child=serializers.ChoiceField(choices=StakeholderTag.choices),
        source="tag_list",
        required=False,
        allow_null=True,
        help_text="Stakeholder tags, set by the school. Null for a supplier's staff: the "
        "school's tags are the school's.",
    )
    school = ScopedPrimaryKeyRelatedField(Organisation, required=False)
    partnership = ScopedPrimaryKeyRelatedField(
        Partnership,
        write_only=True,
        required=False,
        help_text="The school's lead may link the new contact to one of the school's "
        "partnerships. Suppliers propose contacts with /api/v1/contact-proposals/.",
    )

    class Meta:
        model = Contact
        fields = [
            "id",
            "school",
            "partnership",
            "first_name",
            "last_name",
            "email",
            "job_title",
            "tags",
            "user",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["user", "created_at", "updated_at"]
        extra_kwargs = {
            "user": {"allow_null": True},
            "created_at": {"allow_null": True},
            "updated_at": {"allow_null": True},
        }
        validators: list[Any] = []  # uniqueness: the service (clear message) and the DB

    def to_representation(self, instance: Contact) -> dict[str, Any]:
        data = super().to_representation(instance)
        request = self.context.get("request")
        scope = scope_for(request.user) if request is not None else None
        if scope is None or instance.school_id not in scope.school_ids | scope.all_school_ids:
            for name in SCHOOL_ONLY_CONTACT_FIELDS:
                data[name] = None
        return data

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if attrs.get("tag_list", ()) is None:
            raise serializers.ValidationError({"tags": "Give a list of tags (empty for none)."})
        if "tag_list" in attrs:
            attrs["tags"] = attrs.pop("tag_list")
        if self.instance is not None:
            for field in ("school", "partnership"):
                if field in attrs:
                    raise serializers.ValidationError({field: "A contact cannot move school."})
        return attrs


class ExistingContactSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()


class ContactProposalSerializer(serializers.ModelSerializer):
    partnership = ScopedPrimaryKeyRelatedField(
        Partnership, help_text="The supplier's partnership with the person's school."
    )
    tags = serializers.ListField(
        child=serializers.ChoiceField(choices=StakeholderTag.choices),
        source="tag_list",
        required=False,
        help_text="Stakeholder tags the supplier suggests.",
    )
    school = serializers.IntegerField(source="partnership.school_id", read_only=True)
    supplier = serializers.IntegerField(source="partnership.supplier_id", read_only=True)
    supplier_name = serializers.CharField(source="partnership.supplier.name", read_only=True)
    proposed_by_name = serializers.SerializerMethodField()
    existing_contact = serializers.SerializerMethodField(
        help_text="School's leads only, while pending: the school's own record for this "
        "address, which accepting links instead of creating a new one. Always null for "
        "the supplier, whether or not the school holds the address."
    )

    class Meta:
        model = ContactProposal
        fields = [
            "id",
            "partnership",
            "school",
            "supplier",
            "supplier_name",
            "first_name",
            "last_name",
            "email",
            "job_title",
            "tags",
            "status",
            "proposed_by",
            "proposed_by_name",
            "proposed_at",
            "decided_at",
            "decline_reason",
            "contact",
            "existing_contact",
        ]
        read_only_fields = [
            "status",
            "proposed_by",
            "proposed_at",
            "decided_at",
            "decline_reason",
            "contact",
        ]
        validators: list[Any] = []  # one pending per address: the service and the DB

    def get_proposed_by_name(self, obj: ContactProposal) -> str | None:
        return str(obj.proposed_by) if obj.proposed_by_id else None

    @extend_schema_field(ExistingContactSerializer(allow_null=True))
    def get_existing_contact(self, obj: ContactProposal) -> dict[str, Any] | None:
        request = self.context.get("request")
        school_id = obj.partnership.school_id
        if obj.status != ContactProposal.Status.PENDING or request is None:
            return None
        if school_id not in scope_for(request.user).all_school_ids:
            return None
        known = self.context.get("existing_contacts")  # a list's, read in one query
        if known is not None:
            contact = known.get((school_id, obj.email))
        else:
            contact = existing_contact_for(obj)
        return {"id": contact.pk, "name": str(contact)} if contact else None

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if "tag_list" in attrs:
            attrs["tags"] = attrs.pop("tag_list")
        return attrs


class ContactProposalDeclineSerializer(serializers.Serializer):
    reason = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=2000,
        help_text="Optional: why not. The supplier sees it.",
    )


class SupplierContactNoteSerializer(serializers.ModelSerializer):
    supplier = ScopedPrimaryKeyRelatedField(
        Organisation,
        required=False,
        help_text="Defaults to your supplier when you belong to one.",
    )
    contact = ScopedPrimaryKeyRelatedField(Contact)
    body = serializers.CharField(max_length=10000)
    updated_by_name = serializers.SerializerMethodField()

    class Meta:
        model = SupplierContactNote
        fields = [
            "id",
            "supplier",
            "contact",
            "body",
            "updated_by",
            "updated_by_name",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["updated_by", "created_at", "updated_at"]
        validators: list[Any] = []  # one per supplier and contact: the service and the DB

    def get_updated_by_name(self, obj: SupplierContactNote) -> str | None:
        return str(obj.updated_by) if obj.updated_by_id else None

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if self.instance is not None:
            for field in ("supplier", "contact"):
                if field in attrs and attrs[field] != getattr(self.instance, field):
                    raise serializers.ValidationError(
                        {field: "A note stays with its supplier and contact."}
                    )
                attrs.pop(field, None)
        elif "supplier" not in attrs:
            attrs["supplier"] = own_supplier(self.context["request"].user)
        return attrs


class ProductSerializer(serializers.ModelSerializer):
    supplier = ScopedPrimaryKeyRelatedField(
        Organisation,
        required=False,
        help_text="Defaults to your supplier when you belong to one.",
    )

    class Meta:
        model = Product
        fields = ["id", "supplier", "name", "description", "is_active", "created_at"]
        read_only_fields = ["created_at"]
        validators: list[Any] = []  # uniqueness: the service (clear message) and the DB

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if self.instance is not None and "supplier" in attrs:
            raise serializers.ValidationError({"supplier": "A product cannot change supplier."})
        if self.instance is None and "supplier" not in attrs:
            attrs["supplier"] = own_supplier(self.context["request"].user)
        return attrs


class StageChangeSerializer(serializers.ModelSerializer):
    by = serializers.StringRelatedField()

    class Meta:
        model = StageChange
        fields = ["from_stage", "to_stage", "by", "at", "is_override", "reason"]


class PartnershipSerializer(serializers.ModelSerializer):
    supplier = ScopedPrimaryKeyRelatedField(Organisation, required=False)
    school = ScopedPrimaryKeyRelatedField(Organisation)
    products = ScopedPrimaryKeyRelatedField(Product, many=True, required=False)
    account_manager = SupplierStaffField(required=False, allow_null=True)
    supplier_name = serializers.CharField(source="supplier.name", read_only=True)
    school_name = serializers.CharField(source="school.name", read_only=True)
    school_urn = serializers.CharField(source="school.urn", read_only=True)
    account_manager_name = serializers.SerializerMethodField()
    overrides = serializers.SerializerMethodField(
        help_text="Pilot-gate overrides: who moved the partnership past the technical "
        "review without a ready survey, and why. Shown to the school."
    )
    reason = serializers.CharField(
        write_only=True,
        required=False,
        allow_blank=True,
        max_length=2000,
        help_text="Required when lowering onsite_hours_per_term: why the promise is "
        "lowered. Recorded with the change and shown to the school's leads.",
    )

    class Meta:
        model = Partnership
        fields = [
            "id",
            "supplier",
            "supplier_name",
            "school",
            "school_name",
            "school_urn",
            "products",
            "account_manager",
            "account_manager_name",
            "stage",
            "stage_changed_at",
            "onsite_hours_per_term",
            "first_response_target_hours",
            "resolution_target_hours",
            "nudges_per_contact_per_week",
            "nudges_per_contact_per_term",
            "contract_start",
            "contract_end",
            "reason",
            "overrides",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["stage", "stage_changed_at", "created_at", "updated_at"]
        # Uniqueness of a live partnership is checked by the service (with a clear message)
        # and guaranteed by the database constraint.
        validators: list[Any] = []

    def get_account_manager_name(self, obj: Partnership) -> str | None:
        return str(obj.account_manager) if obj.account_manager_id else None

    @extend_schema_field(StageChangeSerializer(many=True))
    def get_overrides(self, obj: Partnership) -> list[dict[str, Any]]:
        overrides = [c for c in obj.stage_changes.all() if c.is_override]
        return StageChangeSerializer(overrides, many=True).data

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if self.instance is not None:
            for field in ("supplier", "school"):
                if field in attrs and attrs[field] != getattr(self.instance, field):
                    raise serializers.ValidationError(
                        {field: "A partnership cannot change supplier or school."}
                    )
                attrs.pop(field, None)
        elif "supplier" not in attrs:
            attrs["supplier"] = own_supplier(self.context["request"].user)
        return attrs


class PartnershipDetailSerializer(PartnershipSerializer):
    stage_history = StageChangeSerializer(source="stage_changes", many=True, read_only=True)
    allowed_next_stages = serializers.SerializerMethodField()

    class Meta(PartnershipSerializer.Meta):
        fields = [*PartnershipSerializer.Meta.fields, "stage_history", "allowed_next_stages"]

    def get_allowed_next_stages(self, obj: Partnership) -> list[str]:
        from .stages import allowed_next

        return allowed_next(obj)


class TransitionSerializer(serializers.Serializer):
    stage = serializers.ChoiceField(choices=Stage.choices)
    override_reason = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=2000,
        help_text="Supplier admins only: why the pilot starts without a ready technical survey.",
    )


class SuccessCriterionSerializer(serializers.ModelSerializer):
    class Meta:
        model = SuccessCriterion
        fields = ["id", "description", "target", "evaluation", "evidence"]
        # Rated only through POST /trial-phases/{id}/evaluate/, with evidence.
        read_only_fields = ["evaluation", "evidence"]


class TrialPhaseSerializer(serializers.ModelSerializer):
    partnership = ScopedPrimaryKeyRelatedField(Partnership)
    cohort = ScopedPrimaryKeyRelatedField(Contact, many=True, required=False)
    criteria = SuccessCriterionSerializer(
        many=True,
        required=False,
        help_text="On create, the phase's criteria; on update, criteria to add (existing "
        "ones are kept). Evaluate them with POST …/evaluate/.",
    )
    partnership_stage = serializers.CharField(source="partnership.stage", read_only=True)
    decided_by_name = serializers.SerializerMethodField()
    warnings = serializers.SerializerMethodField(
        help_text="Advice that did not block the save, e.g. a pilot cohort over "
        "PILOT_COHORT_WARN_SIZE. Always present; empty when there is none."
    )

    class Meta:
        model = TrialPhase
        fields = [
            "id",
            "partnership",
            "partnership_stage",
            "kind",
            "start_date",
            "end_date",
            "cohort",
            "intent",
            "implementation",
            "impact",
            "criteria",
            "decision",
            "decision_notes",
            "unmet_criteria_reason",
            "decided_at",
            "decided_by",
            "decided_by_name",
            "warnings",
            "created_at",
        ]
        read_only_fields = [
            "decision",
            "decision_notes",
            "unmet_criteria_reason",
            "decided_at",
            "decided_by",
            "created_at",
        ]

    def get_decided_by_name(self, obj: TrialPhase) -> str | None:
        return str(obj.decided_by) if obj.decided_by_id else None

    @extend_schema_field(serializers.ListField(child=serializers.CharField()))
    def get_warnings(self, obj: TrialPhase) -> list[str]:
        return trial_phase_warnings(obj)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if self.instance is not None and "partnership" in attrs:
            if attrs["partnership"] != self.instance.partnership:
                raise serializers.ValidationError(
                    {"partnership": "A phase cannot move to another partnership."}
                )
            attrs.pop("partnership")
        start = attrs.get("start_date", getattr(self.instance, "start_date", None))
        end = attrs.get("end_date", getattr(self.instance, "end_date", None))
        if start and end and end < start:
            raise serializers.ValidationError({"end_date": "The phase ends before it starts."})
        return attrs


EVIDENCE_NEEDED = "An evaluation needs its evidence: what shows it (figures, observations)."


class CriterionEvaluationSerializer(serializers.Serializer):
    id = serializers.IntegerField(help_text="A success criterion of this phase.")
    evaluation = serializers.ChoiceField(choices=SuccessCriterion.Evaluation.choices)
    evidence = serializers.CharField(
        max_length=5000,
        help_text="Required: what shows it (figures, observations, what teachers said).",
        error_messages={
            "required": EVIDENCE_NEEDED,
            "blank": EVIDENCE_NEEDED,
            "null": EVIDENCE_NEEDED,
        },
    )


class TrialPhaseEvaluateSerializer(serializers.Serializer):
    criteria = CriterionEvaluationSerializer(
        many=True,
        required=False,
        help_text="Criteria of this phase to rate; the ones not named keep their rating.",
    )
    impact = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=10000,
        help_text="What changed, with evidence (replaces the phase's impact).",
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if not attrs.get("criteria") and "impact" not in attrs:
            raise serializers.ValidationError(
                {"criteria": "Evaluate at least one criterion, or give the impact."}
            )
        return attrs


class TrialPhaseDecisionSerializer(serializers.Serializer):
    decision = serializers.ChoiceField(
        choices=TrialPhase.Decision.choices,
        help_text="continue: keep the stage; extend: more time (needs end_date); expand: "
        "pilot -> expansion -> whole_school, once every criterion is evaluated; stop: the "
        "partnership ends.",
    )
    notes = serializers.CharField(required=False, allow_blank=True, max_length=5000)
    end_date = serializers.DateField(
        required=False, help_text="Extend only: the new end, after the current one."
    )
    unmet_criteria_reason = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=5000,
        help_text="Expand only, and required when any success criterion was rated not "
        "met: why the phase expands anyway. Shown to the school with the decision.",
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        extend = attrs["decision"] == TrialPhase.Decision.EXTEND
        if extend and not attrs.get("end_date"):
            raise serializers.ValidationError({"end_date": "Extending needs the new end date."})
        if not extend and attrs.get("end_date"):
            raise serializers.ValidationError(
                {"end_date": "Only an extension changes the end date."}
            )
        return attrs
