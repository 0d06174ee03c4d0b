from __future__ import annotations

from datetime import time
from zoneinfo import ZoneInfo

from django.contrib.auth.models import AbstractBaseUser, BaseUserManager, PermissionsMixin
from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator, RegexValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone
from simple_history.models import HistoricalRecords

from audit.models import AuditFields

from .querysets import (
    ContactProposalQuerySet,
    ContactQuerySet,
    OrganisationQuerySet,
    PartnershipQuerySet,
    ProductQuerySet,
    SupplierContactNoteQuerySet,
    TrialPhaseQuerySet,
)
from .working_time import zone

urn_validator = RegexValidator(r"^\d{6}$", "A URN is the school's 6-digit Unique Reference Number.")


class UserManager(BaseUserManager["User"]):
    use_in_migrations = True

    def _create(self, email: str, password: str | None, **extra: object) -> User:
        if not email:
            raise ValueError("An email address is required")
        user = self.model(email=self.normalize_email(email).lower(), **extra)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_user(self, email: str, password: str | None = None, **extra: object) -> User:
        extra.setdefault("is_staff", False)
        extra.setdefault("is_superuser", False)
        return self._create(email, password, **extra)

    def create_superuser(self, email: str, password: str | None = None, **extra: object) -> User:
        extra["is_staff"] = True
        extra["is_superuser"] = True
        return self._create(email, password, **extra)


class User(AbstractBaseUser, PermissionsMixin):
    """A person who signs in. Email is the login; what they see follows their memberships."""

    email = models.EmailField(unique=True)
    full_name = models.CharField(max_length=200, blank=True)
    is_active = models.BooleanField(default=True)
    is_staff = models.BooleanField(default=False, help_text="May use the Django admin.")
    date_joined = models.DateTimeField(default=timezone.now)

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: list[str] = []

    def __str__(self) -> str:
        return self.full_name or self.email

    def get_full_name(self) -> str:
        return self.full_name or self.email

    def get_short_name(self) -> str:
        return (self.full_name or self.email).split(" ")[0]


class Organisation(models.Model):
    class Kind(models.TextChoices):
        SUPPLIER = "supplier", "Supplier"
        SCHOOL = "school", "School"
        TRUST = "trust", "Trust"

    class Phase(models.TextChoices):
        NURSERY = "nursery", "Nursery"
        PRIMARY = "primary", "Primary"
        MIDDLE = "middle", "Middle"
        SECONDARY = "secondary", "Secondary"
        ALL_THROUGH = "all_through", "All-through"
        SIXTEEN_PLUS = "16_plus", "16 plus"
        SPECIAL = "special", "Special"
        ALTERNATIVE = "alternative", "Alternative provision"
        OTHER = "other", "Other / not applicable"

    class Nation(models.TextChoices):
        # Keys of accounts.working_time.NATION_SUBDIVS: the nation picks the bank holidays.
        ENGLAND = "england", "England"
        WALES = "wales", "Wales"
        SCOTLAND = "scotland", "Scotland"
        NORTHERN_IRELAND = "northern_ireland", "Northern Ireland"

    kind = models.CharField(max_length=10, choices=Kind.choices, db_index=True)
    name = models.CharField(max_length=200)
    # Schools only
    urn = models.CharField(
        "URN", max_length=6, unique=True, null=True, blank=True, validators=[urn_validator]
    )
    phase = models.CharField(max_length=20, choices=Phase.choices, blank=True)
    local_authority = models.CharField(max_length=100, blank=True)
    postcode = models.CharField(max_length=10, blank=True)
    # Whose bank holidays the school keeps. GIAS covers England and Wales (Wales read from
    # its "GOR (name)"); Scottish and Northern Irish schools are set by hand.
    nation = models.CharField(max_length=20, choices=Nation.choices, default=Nation.ENGLAND)
    trust = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="schools",
        limit_choices_to={"kind": "trust"},
    )
    # Trusts only: the GIAS group code ("Trusts (code)"), the key the import matches on.
    gias_group_code = models.CharField(max_length=20, blank=True)
    # The school's working day; the SLA clock and send windows are measured in it.
    timezone = models.CharField(max_length=64, default="Europe/London")
    day_starts = models.TimeField(default=time(8, 0))
    day_ends = models.TimeField(default=time(17, 0))
    # When nudges may arrive in staff inboxes (school working days only).
    send_window_starts = models.TimeField(default=time(7, 30))
    send_window_ends = models.TimeField(default=time(16, 30))
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = OrganisationQuerySet.as_manager()

    class Meta:
        ordering = ["name", "id"]
        indexes = [models.Index(fields=["kind", "name"])]
        constraints = [
            models.CheckConstraint(
                condition=Q(kind="school") | Q(urn__isnull=True),
                name="urn_only_for_schools",
            ),
            models.CheckConstraint(
                condition=~Q(kind="school") | Q(urn__isnull=False),
                name="school_has_urn",
            ),
            models.CheckConstraint(
                condition=Q(kind="school") | Q(trust__isnull=True),
                name="trust_only_for_schools",
            ),
            models.CheckConstraint(
                condition=Q(day_starts__lt=models.F("day_ends")), name="day_order"
            ),
            models.CheckConstraint(
                condition=Q(send_window_starts__lt=models.F("send_window_ends")),
                name="send_window_order",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.urn})" if self.urn else self.name

    @property
    def zone(self) -> ZoneInfo:
        """The school's time zone (London when the field is empty or not a zone)."""
        return zone(self.timezone)

    def clean(self) -> None:
        if self.kind == self.Kind.SCHOOL and not self.urn:
            raise ValidationError({"urn": "A school needs its 6-digit URN."})
        if self.kind != self.Kind.SCHOOL and self.urn:
            raise ValidationError({"urn": "Only schools have a URN."})
        if self.trust_id and self.kind != self.Kind.SCHOOL:
            raise ValidationError({"trust": "Only a school belongs to a trust."})
        if self.trust_id and self.trust and self.trust.kind != self.Kind.TRUST:
            raise ValidationError({"trust": "That organisation is not a trust."})


class Role(models.TextChoices):
    SUPPLIER_ADMIN = "supplier_admin", "Supplier admin"
    ACCOUNT_MANAGER = "account_manager", "Account manager"
    SUPPORT_AGENT = "support_agent", "Support agent"
    SCHOOL_LEAD = "school_lead", "School lead"
    TEACHER = "teacher", "Teacher"
    TRUST_LEAD = "trust_lead", "Trust lead"


ROLES_BY_KIND = {
    Organisation.Kind.SUPPLIER: {Role.SUPPLIER_ADMIN, Role.ACCOUNT_MANAGER, Role.SUPPORT_AGENT},
    Organisation.Kind.SCHOOL: {Role.SCHOOL_LEAD, Role.TEACHER},
    Organisation.Kind.TRUST: {Role.TRUST_LEAD},
}


class Membership(models.Model):
    """A user's role in one organisation; a user may hold several."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="memberships")
    organisation = models.ForeignKey(
        Organisation, on_delete=models.CASCADE, related_name="memberships"
    )
    role = models.CharField(max_length=20, choices=Role.choices)
    created_at = models.DateTimeField(auto_now_add=True)

    history = HistoricalRecords(bases=[AuditFields])

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "organisation"], name="one_role_per_org"),
        ]

    def __str__(self) -> str:
        return f"{self.user} — {self.get_role_display()} at {self.organisation}"

    def clean(self) -> None:
        org = self.organisation if self.organisation_id else None
        if org and self.role not in ROLES_BY_KIND[org.kind]:
            allowed = ", ".join(sorted(ROLES_BY_KIND[org.kind]))
            raise ValidationError({"role": f"A {org.kind} member's role is one of: {allowed}."})


class StakeholderTag(models.TextChoices):
    SENIOR_LEADER = "senior_leader", "Senior leader"
    IT_LEAD = "it_lead", "IT lead"
    DSL = "dsl", "Designated safeguarding lead"
    SENCO = "senco", "SEND coordinator"
    FINANCE = "finance", "Finance"
    GOVERNOR = "governor", "Governor"
    TEACHER = "teacher", "Teacher"
    DIGITAL_LEADER = "digital_leader", "Digital leader"


class Contact(models.Model):
    """A member of a school's staff. Owned by the school; staff data only, never pupils."""

    school = models.ForeignKey(
        Organisation,
        on_delete=models.CASCADE,
        related_name="contacts",
        limit_choices_to={"kind": "school"},
    )
    user = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="contacts"
    )
    first_name = models.CharField(max_length=100)
    last_name = models.CharField(max_length=100, blank=True)
    email = models.EmailField()
    job_title = models.CharField(max_length=200, blank=True)
    # Stakeholder tags: a small fixed vocabulary, stored as a sorted comma-joined string
    # with commas at both ends (",dsl,it_lead,") so that one tag filters with LIKE on any DB.
    tags = models.CharField(max_length=200, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    # Set when the person was erased (privacy/erasure.py): name, email and what they wrote
    # replaced by a pseudonym; the row stays so reports keep counting what it links to.
    erased_at = models.DateTimeField(null=True, blank=True)

    objects = ContactQuerySet.as_manager()

    history = HistoricalRecords(bases=[AuditFields], excluded_fields=["updated_at"])

    class Meta:
        ordering = ["last_name", "first_name", "id"]
        constraints = [
            models.UniqueConstraint(fields=["school", "email"], name="contact_email_per_school"),
        ]

    def __str__(self) -> str:
        return f"{self.first_name} {self.last_name}".strip()

    @property
    def tag_list(self) -> list[str]:
        return [t for t in self.tags.split(",") if t]

    @staticmethod
    def encode_tags(tags: list[str]) -> str:
        unique = sorted(set(tags))
        return f",{','.join(unique)}," if unique else ""


class Product(models.Model):
    supplier = models.ForeignKey(
        Organisation,
        on_delete=models.CASCADE,
        related_name="products",
        limit_choices_to={"kind": "supplier"},
    )
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = ProductQuerySet.as_manager()

    class Meta:
        ordering = ["name", "id"]
        constraints = [
            models.UniqueConstraint(fields=["supplier", "name"], name="product_name_per_supplier"),
        ]

    def __str__(self) -> str:
        return self.name


class Stage(models.TextChoices):
    ENQUIRY = "enquiry", "Enquiry"
    TECHNICAL_REVIEW = "technical_review", "Technical review"
    PILOT = "pilot", "Pilot"
    EXPANSION = "expansion", "Expansion"
    WHOLE_SCHOOL = "whole_school", "Whole school"
    RENEWAL = "renewal", "Renewal"
    PAUSED = "paused", "Paused"
    ENDED = "ended", "Ended"


class Partnership(models.Model):
    """A supplier working with one school (for some of its products), and their agreement."""

    supplier = models.ForeignKey(
        Organisation,
        on_delete=models.PROTECT,
        related_name="supplier_partnerships",
        limit_choices_to={"kind": "supplier"},
    )
    school = models.ForeignKey(
        Organisation,
        on_delete=models.PROTECT,
        related_name="school_partnerships",
        limit_choices_to={"kind": "school"},
    )
    products = models.ManyToManyField(Product, blank=True, related_name="partnerships")
    account_manager = models.ForeignKey(
        User,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="managed_partnerships",
    )
    contacts = models.ManyToManyField(
        Contact, through="PartnershipContact", blank=True, related_name="partnerships"
    )
    stage = models.CharField(max_length=20, choices=Stage.choices, default=Stage.ENQUIRY)
    # Where a paused partnership resumes.
    stage_before_pause = models.CharField(max_length=20, choices=Stage.choices, blank=True)
    stage_changed_at = models.DateTimeField(default=timezone.now)

    # The agreement
    onsite_hours_per_term = models.DecimalField(
        max_digits=6, decimal_places=1, default=0, validators=[MinValueValidator(0)]
    )
    first_response_target_hours = models.PositiveIntegerField(
        default=8, validators=[MinValueValidator(1)], help_text="In school working hours."
    )
    resolution_target_hours = models.PositiveIntegerField(
        default=40, validators=[MinValueValidator(1)], help_text="In school working hours."
    )
    nudges_per_contact_per_week = models.PositiveSmallIntegerField(default=1)
    nudges_per_contact_per_term = models.PositiveSmallIntegerField(default=6)
    contract_start = models.DateField(null=True, blank=True)
    contract_end = models.DateField(null=True, blank=True)

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = PartnershipQuerySet.as_manager()

    history = HistoricalRecords(
        bases=[AuditFields], excluded_fields=["updated_at"], m2m_fields=["products"]
    )

    class Meta:
        ordering = ["-updated_at", "id"]
        indexes = [
            models.Index(fields=["supplier", "stage"]),
            models.Index(fields=["school", "stage"]),
        ]
        constraints = [
            # One live partnership per supplier and school; a new one may follow an ended one.
            models.UniqueConstraint(
                fields=["supplier", "school"],
                condition=~Q(stage="ended"),
                name="one_live_partnership_per_pair",
            ),
            models.CheckConstraint(
                condition=Q(contract_end__isnull=True)
                | Q(contract_start__isnull=True)
                | Q(contract_end__gte=models.F("contract_start")),
                name="contract_dates_in_order",
            ),
            models.CheckConstraint(
                condition=Q(resolution_target_hours__gte=models.F("first_response_target_hours")),
                name="resolution_after_first_response",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.supplier.name} × {self.school.name}"


class PartnershipContact(models.Model):
    """Links a school contact to a supplier's partnership; this is what lets the supplier
    see (and later nudge) that person, and what the school lead reviews."""

    partnership = models.ForeignKey(
        Partnership, on_delete=models.CASCADE, related_name="contact_links"
    )
    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="partnership_links")
    added_by = models.ForeignKey(User, null=True, blank=True, on_delete=models.SET_NULL)
    added_at = models.DateTimeField(auto_now_add=True)

    history = HistoricalRecords(bases=[AuditFields])

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["partnership", "contact"], name="contact_once_per_p"),
        ]

    def __str__(self) -> str:
        return f"{self.contact} on {self.partnership}"


class ContactProposal(models.Model):
    """A supplier's suggestion of a member of the school's staff to work with on its
    partnership. The staff record is the school's: nothing is created, linked or nudged
    until the school's lead accepts (creating the contact, or linking the one the school
    already holds for the address) or declines, with a reason the supplier sees.

    Kept apart from Contact on purpose, so that no contact query (audiences, cohorts,
    nudges, the school's lists) can ever pick a proposal up."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        ACCEPTED = "accepted", "Accepted"
        DECLINED = "declined", "Declined"

    partnership = models.ForeignKey(
        Partnership, on_delete=models.CASCADE, related_name="contact_proposals"
    )
    first_name = models.CharField(max_length=100)
    last_name = models.CharField(max_length=100, blank=True)
    email = models.EmailField()
    job_title = models.CharField(max_length=200, blank=True)
    # The tags the supplier suggests, encoded like Contact.tags.
    tags = models.CharField(max_length=200, blank=True, default="")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    proposed_by = models.ForeignKey(User, null=True, on_delete=models.SET_NULL, related_name="+")
    proposed_at = models.DateTimeField(default=timezone.now)
    decided_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    decline_reason = models.TextField(blank=True)
    # Accepted: the school's contact it became (new) or was linked to (existing).
    contact = models.ForeignKey(
        Contact, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    objects = ContactProposalQuerySet.as_manager()

    history = HistoricalRecords(bases=[AuditFields])

    class Meta:
        ordering = ["-proposed_at", "id"]
        indexes = [models.Index(fields=["partnership", "status"])]
        constraints = [
            models.UniqueConstraint(
                fields=["partnership", "email"],
                condition=Q(status="pending"),
                name="one_pending_proposal_per_email",
            ),
            models.CheckConstraint(
                condition=Q(status="pending") | Q(decided_at__isnull=False),
                name="decided_proposal_has_time",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.first_name} {self.last_name}".strip() + f" <{self.email}>"

    @property
    def tag_list(self) -> list[str]:
        return [t for t in self.tags.split(",") if t]


class SupplierContactNote(models.Model):
    """A supplier's own note about a member of a school's staff: its staff read and write
    it; the school and other suppliers never see it. The contact's record is untouched."""

    supplier = models.ForeignKey(
        Organisation,
        on_delete=models.CASCADE,
        related_name="contact_notes",
        limit_choices_to={"kind": "supplier"},
    )
    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="supplier_notes")
    body = models.TextField()
    updated_by = models.ForeignKey(User, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = SupplierContactNoteQuerySet.as_manager()

    class Meta:
        ordering = ["-updated_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["supplier", "contact"], name="one_note_per_supplier"),
        ]

    def __str__(self) -> str:
        return f"{self.supplier_id}'s note on {self.contact_id}"


class StageChange(models.Model):
    """Every stage move of a partnership, with who, when and (for overrides) why."""

    partnership = models.ForeignKey(
        Partnership, on_delete=models.CASCADE, related_name="stage_changes"
    )
    from_stage = models.CharField(max_length=20, choices=Stage.choices, blank=True)
    to_stage = models.CharField(max_length=20, choices=Stage.choices)
    by = models.ForeignKey(User, null=True, on_delete=models.SET_NULL, related_name="+")
    at = models.DateTimeField(default=timezone.now)
    is_override = models.BooleanField(default=False)
    reason = models.TextField(blank=True)

    class Meta:
        ordering = ["at", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(is_override=False) | ~Q(reason=""), name="override_has_reason"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.partnership_id}: {self.from_stage} → {self.to_stage}"


class TrialPhase(models.Model):
    class Kind(models.TextChoices):
        PILOT = "pilot", "Pilot"
        EXPANSION = "expansion", "Expansion"
        WHOLE_SCHOOL = "whole_school", "Whole school"

    class Decision(models.TextChoices):
        CONTINUE = "continue", "Continue"
        EXTEND = "extend", "Extend"
        EXPAND = "expand", "Expand"
        STOP = "stop", "Stop"

    partnership = models.ForeignKey(
        Partnership, on_delete=models.CASCADE, related_name="trial_phases"
    )
    kind = models.CharField(max_length=20, choices=Kind.choices)
    start_date = models.DateField()
    end_date = models.DateField()
    cohort = models.ManyToManyField(Contact, blank=True, related_name="trial_phases")
    intent = models.TextField(blank=True, help_text="What the phase is meant to achieve.")
    implementation = models.TextField(blank=True, help_text="How it is being run.")
    impact = models.TextField(blank=True, help_text="What changed, with evidence.")
    decision = models.CharField(max_length=10, choices=Decision.choices, blank=True)
    decision_notes = models.TextField(blank=True)
    # Expanding although some success criteria were rated "not met" needs the reason,
    # which the school sees with the decision (and the stage move records).
    unmet_criteria_reason = models.TextField(blank=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    decided_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    objects = TrialPhaseQuerySet.as_manager()

    history = HistoricalRecords(bases=[AuditFields], m2m_fields=["cohort"])

    class Meta:
        ordering = ["start_date", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(end_date__gte=models.F("start_date")), name="phase_dates_in_order"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} ({self.start_date}–{self.end_date})"


class SuccessCriterion(models.Model):
    class Evaluation(models.TextChoices):
        MET = "met", "Met"
        PARTLY_MET = "partly_met", "Partly met"
        NOT_MET = "not_met", "Not met"

    phase = models.ForeignKey(TrialPhase, on_delete=models.CASCADE, related_name="criteria")
    description = models.CharField(max_length=300)
    target = models.CharField(max_length=200, blank=True)
    evaluation = models.CharField(max_length=12, choices=Evaluation.choices, blank=True)
    evidence = models.TextField(blank=True)

    history = HistoricalRecords(bases=[AuditFields])

    class Meta:
        ordering = ["id"]
        verbose_name_plural = "success criteria"

    def __str__(self) -> str:
        return self.description


class ErasedAddress(models.Model):
    """The keyed hash of an erased person's email address (``accounts.privacy_hash``), so
    that nobody adds the address again and no nudge goes to it, without keeping the address."""

    email_hash = models.CharField(max_length=64, unique=True)
    erased_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"erased address {self.email_hash[:12]}…"


class Heartbeat(models.Model):
    """One row per periodic-task name, touched by the worker each time beat fires it."""

    name = models.CharField(max_length=50, unique=True)
    last_seen = models.DateTimeField()
    count = models.PositiveBigIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.name} @ {self.last_seen:%Y-%m-%d %H:%M:%S}"


class Term(models.Model):
    """A term of a school's year. Days outside every term (between the first and the last
    term known for the school) are holidays: the school is closed."""

    school = models.ForeignKey(
        Organisation,
        on_delete=models.CASCADE,
        related_name="terms",
        limit_choices_to={"kind": "school"},
    )
    name = models.CharField(max_length=50, help_text="e.g. Autumn 2026")
    starts_on = models.DateField()
    ends_on = models.DateField()

    class Meta:
        ordering = ["starts_on"]
        constraints = [
            models.CheckConstraint(
                condition=Q(ends_on__gte=models.F("starts_on")), name="term_dates_in_order"
            ),
            models.UniqueConstraint(fields=["school", "starts_on"], name="one_term_start_per_day"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.starts_on} to {self.ends_on})"


class ClosureDay(models.Model):
    """A day a school is closed inside term: INSET (training) days, a strike, snow."""

    class Kind(models.TextChoices):
        INSET = "inset", "INSET day"
        HOLIDAY = "holiday", "Holiday"
        OTHER = "other", "Other closure"

    school = models.ForeignKey(
        Organisation,
        on_delete=models.CASCADE,
        related_name="closure_days",
        limit_choices_to={"kind": "school"},
    )
    date = models.DateField()
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.INSET)
    note = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["date"]
        constraints = [
            models.UniqueConstraint(fields=["school", "date"], name="one_closure_per_day"),
        ]

    def __str__(self) -> str:
        return f"{self.date} {self.get_kind_display()}"
