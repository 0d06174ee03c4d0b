"""The Django admin, for the platform's own support staff (not for suppliers or schools,
who use the API and pages, scoped to what they may see).

Partnership stages are read-only here on purpose: a stage move goes through
``accounts.services.partnership_transition``, which enforces the stage machine and the
pilot gate and records who moved it. That service only lets a supplier's own admins and
account managers move a stage, so an admin action run by support staff would always be
refused; support asks the supplier to move it (or, if it must, signs in as a member).
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.forms import AdminUserCreationForm
from django.contrib.auth.forms import UserChangeForm as DjangoUserChangeForm
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.forms.models import BaseInlineFormSet
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from .models import (
    Contact,
    ContactProposal,
    Heartbeat,
    Membership,
    Organisation,
    Partnership,
    PartnershipContact,
    Product,
    Stage,
    StageChange,
    StakeholderTag,
    SuccessCriterion,
    TrialPhase,
    User,
)
from .scoping import SUPPLIER_ROLES

admin.site.site_header = "Partnership CRM administration"
admin.site.site_title = "Partnership CRM admin"
admin.site.index_title = "Support"

_TAG_LABELS = dict(StakeholderTag.choices)


def _changelist_link(model: type[Any], label: str, **query: object) -> str:
    url = reverse(f"admin:accounts_{model._meta.model_name}_changelist")
    params = "&".join(f"{key}={value}" for key, value in query.items())
    return format_html('<a href="{}?{}">{}</a>', url, params, label)


class ReadOnlyInline(admin.TabularInline):
    """History shown beside its parent; written only by the services, never by hand."""

    extra = 0
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows written by the system (audit trail, heartbeats): look, never touch."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


# --- Users and memberships ---------------------------------------------------------------


def _clean_unique_email(form: forms.ModelForm) -> str:
    # The manager lower-cases emails; the admin saves the model directly, so it must too,
    # or "Ann@x" and "ann@x" would become two accounts that cannot both sign in.
    email: str = form.cleaned_data["email"].strip().lower()
    others = User.objects.filter(email__iexact=email)
    if form.instance.pk:
        others = others.exclude(pk=form.instance.pk)
    if others.exists():
        raise ValidationError("A user with this email address already exists.")
    return email


class UserCreationForm(AdminUserCreationForm):
    class Meta(AdminUserCreationForm.Meta):
        model = User
        fields = ("email", "full_name")
        field_classes: dict[str, type[forms.Field]] = {}

    def clean_email(self) -> str:
        return _clean_unique_email(self)


class UserChangeForm(DjangoUserChangeForm):
    class Meta(DjangoUserChangeForm.Meta):
        model = User
        fields = (
            "email",
            "password",
            "full_name",
            "is_active",
            "is_staff",
            "is_superuser",
            "groups",
            "user_permissions",
        )
        field_classes: dict[str, type[forms.Field]] = {}

    def clean_email(self) -> str:
        return _clean_unique_email(self)


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    fields = ("organisation", "role", "created_at")
    readonly_fields = ("created_at",)
    autocomplete_fields = ("organisation",)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Membership]:
        return super().get_queryset(request).select_related("organisation", "user")


class OrganisationMembershipInline(MembershipInline):
    fields = ("user", "role", "created_at")
    autocomplete_fields = ("user",)


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    add_form = UserCreationForm
    form = UserChangeForm
    fieldsets = (
        (None, {"fields": ("email", "password")}),
        ("Personal", {"fields": ("full_name",)}),
        (
            "Permissions",
            {
                "fields": ("is_active", "is_staff", "is_superuser", "groups", "user_permissions"),
                "description": "Staff status opens this admin; it grants no access to any "
                "supplier's or school's records through the product itself.",
            },
        ),
        ("Dates", {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = (
        (
            None,
            {
                "classes": ("wide",),
                "fields": ("email", "full_name", "usable_password", "password1", "password2"),
            },
        ),
    )
    list_display = ("email", "full_name", "is_active", "is_staff", "last_login", "date_joined")
    list_filter = ("is_active", "is_staff", "is_superuser", "memberships__role")
    search_fields = ("email", "full_name")
    ordering = ("email",)
    readonly_fields = ("last_login", "date_joined")
    inlines = [MembershipInline]

    def get_inlines(self, request: HttpRequest, obj: Any = None) -> list[Any]:
        # Like Django's own user admin: create the account first, then its roles.
        return self.inlines if obj is not None else []


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ("user", "organisation", "organisation_kind", "role", "created_at")
    list_filter = ("role", "organisation__kind")
    search_fields = ("user__email", "user__full_name", "organisation__name", "organisation__urn")
    autocomplete_fields = ("user", "organisation")
    list_select_related = ("user", "organisation")
    readonly_fields = ("created_at",)

    @admin.display(description="Kind", ordering="organisation__kind")
    def organisation_kind(self, obj: Membership) -> str:
        return obj.organisation.get_kind_display()


# --- Organisations ---------------------------------------------------------------------


@admin.register(Organisation)
class OrganisationAdmin(admin.ModelAdmin):
    list_display = ("name", "kind", "urn", "phase", "local_authority", "nation", "trust")
    list_display_links = ("name",)
    list_filter = ("kind", "phase", "nation", "local_authority")
    search_fields = ("name", "urn", "postcode")
    list_select_related = ("trust",)
    autocomplete_fields = ("trust",)
    readonly_fields = ("related", "created_at", "updated_at")
    fieldsets = (
        (None, {"fields": ("kind", "name", "related")}),
        (
            "School",
            {"fields": ("urn", "phase", "local_authority", "postcode", "nation", "trust")},
        ),
        ("Trust", {"fields": ("gias_group_code",)}),
        (
            "Working day",
            {
                "fields": ("timezone", "day_starts", "day_ends"),
                "description": "SLA clocks and nudge send windows are measured in it, "
                "on the working days of the school's nation (its bank holidays).",
            },
        ),
        ("Record", {"fields": ("created_at", "updated_at")}),
    )
    inlines = [OrganisationMembershipInline]

    @admin.display(description="Records")
    def related(self, obj: Organisation) -> str:
        # Links rather than inlines: a school can have hundreds of staff records.
        if obj.pk is None:
            return "-"
        links: list[tuple[str]] = []
        if obj.kind == Organisation.Kind.SCHOOL:
            links.append((_changelist_link(Contact, "Staff contacts", school=obj.pk),))
            links.append((_changelist_link(Partnership, "Partnerships", school=obj.pk),))
        elif obj.kind == Organisation.Kind.SUPPLIER:
            links.append((_changelist_link(Partnership, "Partnerships", supplier=obj.pk),))
            links.append((_changelist_link(Product, "Products", supplier=obj.pk),))
        else:
            links.append((_changelist_link(Organisation, "Schools", trust=obj.pk),))
        links.append((_changelist_link(Membership, "Members", organisation=obj.pk),))
        return format_html_join(" · ", "{}", links)


# --- Contacts --------------------------------------------------------------------------


class StakeholderTagFilter(admin.SimpleListFilter):
    """Tags are stored as ",dsl,it_lead,": match one whole tag, commas included."""

    title = "stakeholder tag"
    parameter_name = "tag"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [(str(value), str(label)) for value, label in StakeholderTag.choices]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Contact]) -> QuerySet[Contact]:
        value = self.value()
        if value in _TAG_LABELS:
            return queryset.with_tag(value)  # type: ignore[attr-defined]
        return queryset


class HasLoginFilter(admin.SimpleListFilter):
    title = "has a login"
    parameter_name = "has_login"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("yes", "Yes"), ("no", "No")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Contact]) -> QuerySet[Contact]:
        if self.value() == "yes":
            return queryset.filter(user__isnull=False)
        if self.value() == "no":
            return queryset.filter(user__isnull=True)
        return queryset


class ContactAdminForm(forms.ModelForm):
    # Checkboxes over the fixed vocabulary, so support cannot type a malformed tag string.
    tags = forms.MultipleChoiceField(
        choices=StakeholderTag.choices, required=False, widget=forms.CheckboxSelectMultiple
    )

    class Meta:
        model = Contact
        fields = ("school", "first_name", "last_name", "email", "job_title", "tags", "user")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.initial["tags"] = self.instance.tag_list

    def clean_tags(self) -> str:
        return Contact.encode_tags(self.cleaned_data["tags"])

    def clean_email(self) -> str:
        # The services store emails lower-cased; the per-school uniqueness relies on it.
        return str(self.cleaned_data["email"]).strip().lower()


class ContactPartnershipInline(admin.TabularInline):
    model = PartnershipContact
    fk_name = "contact"
    extra = 0
    fields = ("partnership", "added_by", "added_at")
    readonly_fields = ("added_by", "added_at")
    autocomplete_fields = ("partnership",)
    verbose_name = "partnership link"

    def get_queryset(self, request: HttpRequest) -> QuerySet[PartnershipContact]:
        return (
            super()
            .get_queryset(request)
            .select_related("partnership__supplier", "partnership__school", "added_by")
        )


@admin.register(Contact)
class ContactAdmin(admin.ModelAdmin):
    form = ContactAdminForm
    list_display = ("__str__", "email", "school", "job_title", "tag_labels", "user")
    list_filter = (StakeholderTagFilter, HasLoginFilter, "school__phase")
    search_fields = ("first_name", "last_name", "email", "school__name", "=school__urn")
    list_select_related = ("school", "user")
    autocomplete_fields = ("school", "user")
    readonly_fields = ("created_at", "updated_at")
    fields = (
        "school",
        ("first_name", "last_name"),
        "email",
        "job_title",
        "tags",
        "user",
        ("created_at", "updated_at"),
    )
    inlines = [ContactPartnershipInline]

    @admin.display(description="Tags")
    def tag_labels(self, obj: Contact) -> str:
        return ", ".join(str(_TAG_LABELS.get(tag, tag)) for tag in obj.tag_list)

    def save_formset(self, request: HttpRequest, form: Any, formset: Any, change: bool) -> None:
        _save_with_added_by(request, formset)


def _save_with_added_by(request: HttpRequest, formset: BaseInlineFormSet) -> None:
    """Partnership links record who added them, as the services do."""
    for link in formset.save(commit=False):
        if link.pk is None and link.added_by_id is None:
            link.added_by = request.user
        link.save()
    for obj in formset.deleted_objects:
        obj.delete()
    formset.save_m2m()


# --- Products --------------------------------------------------------------------------


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin):
    list_display = ("name", "supplier", "is_active", "created_at")
    list_filter = ("is_active", ("supplier", admin.RelatedOnlyFieldListFilter))
    search_fields = ("name", "supplier__name")
    list_select_related = ("supplier",)
    autocomplete_fields = ("supplier",)
    readonly_fields = ("created_at",)


# --- Partnerships ----------------------------------------------------------------------


class PartnershipAdminForm(forms.ModelForm):
    class Meta:
        model = Partnership
        fields = (
            "supplier",
            "school",
            "products",
            "account_manager",
            "onsite_hours_per_term",
            "first_response_target_hours",
            "resolution_target_hours",
            "nudges_per_contact_per_week",
            "nudges_per_contact_per_term",
            "contract_start",
            "contract_end",
        )

    def clean(self) -> dict[str, Any]:
        # The same rules as accounts.services.partnership_create/update.
        data = super().clean()
        assert data is not None
        # On change supplier and school are read-only, so they come from the instance.
        supplier = data.get("supplier") or (
            self.instance.supplier if self.instance.supplier_id else None
        )
        school = data.get("school")
        products = data.get("products")
        manager = data.get("account_manager")
        if self.instance.pk is None and supplier is not None and school is not None:
            # The model's conditional unique constraint cannot be checked by the form,
            # because it reads the (read-only) stage; without this the save would 500.
            live = Partnership.objects.filter(supplier=supplier, school=school).exclude(
                stage=Stage.ENDED
            )
            if live.exists():
                self.add_error("school", "This school already has a live partnership with them.")
        if (
            supplier is not None
            and products is not None
            and any(p.supplier_id != supplier.pk for p in products)
        ):
            self.add_error("products", "Products must be the supplier's own.")
        if supplier is not None and manager is not None:
            is_staff_of_supplier = Membership.objects.filter(
                user=manager, organisation=supplier, role__in=SUPPLIER_ROLES
            ).exists()
            if not is_staff_of_supplier:
                self.add_error("account_manager", "Choose a member of the supplier's staff.")
        return data


class PartnershipContactInline(admin.TabularInline):
    model = PartnershipContact
    fk_name = "partnership"
    extra = 0
    fields = ("contact", "added_by", "added_at")
    readonly_fields = ("added_by", "added_at")
    autocomplete_fields = ("contact",)
    verbose_name = "linked contact"

    def get_queryset(self, request: HttpRequest) -> QuerySet[PartnershipContact]:
        return super().get_queryset(request).select_related("contact", "added_by")


class StageChangeInline(ReadOnlyInline):
    model = StageChange
    fields = ("at", "from_stage", "to_stage", "by", "is_override", "reason")
    readonly_fields = fields
    ordering = ("-at", "-id")

    def get_queryset(self, request: HttpRequest) -> QuerySet[StageChange]:
        return super().get_queryset(request).select_related("by")


class TrialPhaseInline(admin.TabularInline):
    model = TrialPhase
    extra = 0
    fields = ("kind", "start_date", "end_date", "decision")
    readonly_fields = fields
    show_change_link = True
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # phases have their own page (cohort, criteria)


@admin.register(Partnership)
class PartnershipAdmin(admin.ModelAdmin):
    form = PartnershipAdminForm
    list_display = ("__str__", "supplier", "school", "stage", "account_manager", "stage_changed_at")
    list_display_links = ("__str__",)
    list_filter = ("stage", ("supplier", admin.RelatedOnlyFieldListFilter))
    search_fields = ("school__name", "=school__urn", "supplier__name")
    list_select_related = ("supplier", "school", "account_manager")
    autocomplete_fields = ("supplier", "school", "account_manager", "products")
    readonly_fields = (
        "stage",
        "stage_before_pause",
        "stage_changed_at",
        "created_at",
        "updated_at",
    )
    fieldsets = (
        (None, {"fields": ("supplier", "school", "products", "account_manager")}),
        (
            "Stage",
            {
                "fields": ("stage", "stage_before_pause", "stage_changed_at"),
                "description": "Read-only: a stage moves through the product (the "
                "supplier's account manager or admin), which enforces the stage rules and "
                "records every move below.",
            },
        ),
        (
            "Agreement",
            {
                "fields": (
                    "onsite_hours_per_term",
                    ("first_response_target_hours", "resolution_target_hours"),
                    ("nudges_per_contact_per_week", "nudges_per_contact_per_term"),
                    ("contract_start", "contract_end"),
                )
            },
        ),
        ("Record", {"fields": ("created_at", "updated_at")}),
    )
    inlines = [PartnershipContactInline, TrialPhaseInline, StageChangeInline]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        readonly = list(super().get_readonly_fields(request, obj))
        if obj is not None:
            # Moving a partnership to another supplier or school would rewrite its history.
            readonly += ["supplier", "school"]
            # The promise the school's "behind" is measured against changes only through
            # the product, which asks the reason for lowering it and shows it to the school.
            readonly += ["onsite_hours_per_term"]
        return readonly

    def save_model(self, request: HttpRequest, obj: Partnership, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)
        if not change:
            # Every partnership's history starts with its first stage, as in the service.
            StageChange.objects.create(
                partnership=obj, from_stage="", to_stage=obj.stage, by=request.user
            )

    def save_formset(self, request: HttpRequest, form: Any, formset: Any, change: bool) -> None:
        if formset.model is PartnershipContact:
            _save_with_added_by(request, formset)
        else:
            super().save_formset(request, form, formset, change)


# --- Trial phases ----------------------------------------------------------------------


class TrialPhaseAdminForm(forms.ModelForm):
    class Meta:
        model = TrialPhase
        fields = (
            "partnership",
            "kind",
            "start_date",
            "end_date",
            "cohort",
            "intent",
            "implementation",
            "impact",
            "decision",
            "decision_notes",
            "decided_at",
            "decided_by",
        )

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        assert data is not None
        partnership = data.get("partnership")
        cohort = data.get("cohort")
        if (
            partnership is not None
            and cohort is not None
            and any(c.school_id != partnership.school_id for c in cohort)
        ):
            self.add_error("cohort", "Every cohort member must be staff of the school.")
        return data


class SuccessCriterionInline(admin.TabularInline):
    model = SuccessCriterion
    extra = 0
    fields = ("description", "target", "evaluation", "evidence")


@admin.register(TrialPhase)
class TrialPhaseAdmin(admin.ModelAdmin):
    form = TrialPhaseAdminForm
    list_display = ("__str__", "partnership", "kind", "start_date", "end_date", "decision")
    list_filter = ("kind", "decision")
    search_fields = (
        "partnership__school__name",
        "=partnership__school__urn",
        "partnership__supplier__name",
    )
    list_select_related = ("partnership__supplier", "partnership__school")
    autocomplete_fields = ("partnership", "cohort")
    date_hierarchy = "start_date"
    # A decision is made through accounts.services (the rules for each decision, who
    # decided, the school told); editing it here would bypass all of that.
    readonly_fields = ("decision", "decision_notes", "decided_at", "decided_by")
    fieldsets = (
        (None, {"fields": ("partnership", "kind", ("start_date", "end_date"), "cohort")}),
        ("Intent, implementation, impact", {"fields": ("intent", "implementation", "impact")}),
        ("Decision", {"fields": ("decision", "decision_notes", "decided_at", "decided_by")}),
    )
    inlines = [SuccessCriterionInline]

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        super().save_related(request, form, formsets, change)
        # The cohort is part of the partnership (as in services.trial_phase_create): link
        # each member so the supplier can see and nudge them.
        phase: TrialPhase = form.instance
        for contact in phase.cohort.all():
            PartnershipContact.objects.get_or_create(
                partnership_id=phase.partnership_id,
                contact=contact,
                defaults={"added_by": request.user},
            )


# --- System records --------------------------------------------------------------------


@admin.register(StageChange)
class StageChangeAdmin(ReadOnlyAdmin):
    list_display = ("partnership", "from_stage", "to_stage", "by", "at", "is_override")
    list_filter = ("to_stage", "is_override")
    search_fields = (
        "partnership__school__name",
        "=partnership__school__urn",
        "partnership__supplier__name",
    )
    list_select_related = ("partnership__supplier", "partnership__school", "by")
    date_hierarchy = "at"


@admin.register(ContactProposal)
class ContactProposalAdmin(ReadOnlyAdmin):
    """Support looks; only the school's lead decides a proposal (in the product), so an
    admin edit can never create or link a school's staff record behind the school."""

    list_display = ("__str__", "partnership", "status", "proposed_by", "proposed_at")
    list_filter = ("status", ("partnership__supplier", admin.RelatedOnlyFieldListFilter))
    search_fields = ("email", "last_name", "partnership__school__name", "=partnership__school__urn")
    list_select_related = ("partnership__supplier", "partnership__school", "proposed_by")
    date_hierarchy = "proposed_at"


@admin.register(Heartbeat)
class HeartbeatAdmin(ReadOnlyAdmin):
    list_display = ("name", "last_seen", "seconds_ago", "count")
    search_fields = ("name",)

    @admin.display(description="Seconds ago")
    def seconds_ago(self, obj: Heartbeat) -> int:
        return round((timezone.now() - obj.last_seen).total_seconds())
