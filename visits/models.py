from __future__ import annotations

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone
from simple_history.models import HistoricalRecords

from audit.models import AuditFields
from tickets.models import TenancyFromPartnership

from .querysets import (
    FollowUpActionQuerySet,
    OnsiteCorrectionQuerySet,
    TimeEntryQuerySet,
    VisitQuerySet,
)


class Visit(TenancyFromPartnership, models.Model):
    class Kind(models.TextChoices):
        TECHNICAL_SURVEY = "technical_survey", "Technical survey"
        TRAINING = "training", "Training"
        ONSITE_SUPPORT = "onsite_support", "On-site support"
        REVIEW_MEETING = "review_meeting", "Review meeting"

    class Status(models.TextChoices):
        PLANNED = "planned", "Planned"
        COMPLETED = "completed", "Completed"
        CANCELLED = "cancelled", "Cancelled"
        NO_SHOW = "no_show", "No-show"

    partnership = models.ForeignKey(
        "accounts.Partnership", on_delete=models.PROTECT, related_name="visits"
    )
    # Copied from the partnership so every scope filter is one indexed column.
    supplier = models.ForeignKey(
        "accounts.Organisation", on_delete=models.PROTECT, related_name="+"
    )
    school = models.ForeignKey("accounts.Organisation", on_delete=models.PROTECT, related_name="+")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.PLANNED)
    status_reason = models.TextField(blank=True, help_text="Why it was cancelled or a no-show.")
    attendees = models.ManyToManyField(
        settings.AUTH_USER_MODEL, blank=True, related_name="visits", help_text="Supplier staff."
    )
    contacts = models.ManyToManyField(
        "accounts.Contact", blank=True, related_name="visits", help_text="School staff."
    )
    agenda = models.TextField(blank=True)
    notes = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    # RFC 5545 SEQUENCE: bumped on every change so calendars replace the old event.
    sequence = models.PositiveIntegerField(default=0)

    objects = VisitQuerySet.as_manager()

    history = HistoricalRecords(bases=[AuditFields], excluded_fields=["updated_at", "sequence"])

    class Meta:
        ordering = ["starts_at", "id"]
        indexes = [
            models.Index(fields=["supplier", "starts_at"], name="visit_supplier_time"),
            models.Index(fields=["school", "starts_at"], name="visit_school_time"),
            models.Index(fields=["partnership", "kind", "status"], name="visit_partnership_kind"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(ends_at__gt=models.F("starts_at")), name="visit_ends_after_start"
            ),
            models.CheckConstraint(
                condition=Q(status__in=["planned", "completed"]) | ~Q(status_reason=""),
                name="visit_cancel_has_reason",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} at {self.school_id} on {self.starts_at:%Y-%m-%d}"

    @property
    def duration_minutes(self) -> int:
        return int((self.ends_at - self.starts_at).total_seconds() // 60)


class ReadinessArea(models.TextChoices):
    NETWORK = "network", "Network"
    WIFI = "wifi", "Wi-Fi"
    DEVICES = "devices", "Devices"
    SIGN_IN = "sign_in", "Sign-in / SSO"
    MIS = "mis", "MIS integration"
    FILTERING = "filtering", "Filtering and safeguarding"
    DATA_PROTECTION = "data_protection", "Data protection / DPIA"
    ACCESSIBILITY = "accessibility", "Accessibility / SEND"


class ReadinessAssessment(models.Model):
    """The outcome of a technical survey: is the school ready to start a pilot?"""

    class Outcome(models.TextChoices):
        READY = "ready", "Ready"
        READY_WITH_CONDITIONS = "ready_with_conditions", "Ready with conditions"
        NOT_READY = "not_ready", "Not ready"

    visit = models.OneToOneField(Visit, on_delete=models.CASCADE, related_name="assessment")
    outcome = models.CharField(max_length=25, choices=Outcome.choices, blank=True)
    summary = models.TextField(blank=True)
    assessed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    updated_at = models.DateTimeField(auto_now=True)

    history = HistoricalRecords(bases=[AuditFields], excluded_fields=["updated_at"])

    def __str__(self) -> str:
        return f"Readiness of visit {self.visit_id}: {self.outcome or 'not assessed'}"


class ReadinessCheck(models.Model):
    class Result(models.TextChoices):
        PASS = "pass", "Pass"
        CONCERN = "concern", "Concern"
        FAIL = "fail", "Fail"

    assessment = models.ForeignKey(
        ReadinessAssessment, on_delete=models.CASCADE, related_name="checks"
    )
    area = models.CharField(max_length=20, choices=ReadinessArea.choices)
    result = models.CharField(max_length=10, choices=Result.choices)
    notes = models.TextField(blank=True)

    history = HistoricalRecords(bases=[AuditFields])

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["assessment", "area"], name="one_check_per_area"),
        ]

    def __str__(self) -> str:
        return f"{self.area}: {self.result}"


class FollowUpAction(models.Model):
    class Owner(models.TextChoices):
        SCHOOL = "school", "School"
        SUPPLIER = "supplier", "Supplier"

    assessment = models.ForeignKey(
        ReadinessAssessment, on_delete=models.CASCADE, related_name="actions"
    )
    description = models.CharField(max_length=300)
    owner = models.CharField(max_length=10, choices=Owner.choices)
    due_on = models.DateField()
    done_at = models.DateTimeField(null=True, blank=True)
    done_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    objects = FollowUpActionQuerySet.as_manager()

    history = HistoricalRecords(bases=[AuditFields])

    class Meta:
        ordering = ["due_on", "id"]

    def __str__(self) -> str:
        return self.description

    @property
    def is_done(self) -> bool:
        return self.done_at is not None


class TimeEntry(TenancyFromPartnership, models.Model):
    class Mode(models.TextChoices):
        ON_SITE = "on_site", "On site"
        REMOTE = "remote", "Remote"

    class Activity(models.TextChoices):
        TRAINING = "training", "Training"
        TROUBLESHOOTING = "troubleshooting", "Troubleshooting"
        MEETING = "meeting", "Meeting"
        PLANNING = "planning", "Planning"

    partnership = models.ForeignKey(
        "accounts.Partnership", on_delete=models.PROTECT, related_name="time_entries"
    )
    supplier = models.ForeignKey(
        "accounts.Organisation", on_delete=models.PROTECT, related_name="+"
    )
    school = models.ForeignKey("accounts.Organisation", on_delete=models.PROTECT, related_name="+")
    visit = models.ForeignKey(
        Visit, null=True, blank=True, on_delete=models.SET_NULL, related_name="time_entries"
    )
    ticket = models.ForeignKey(
        "tickets.Ticket",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="time_entries",
    )
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    date = models.DateField(help_text="The day the work was done, in the school's time zone.")
    minutes = models.PositiveIntegerField(
        validators=[MinValueValidator(1), MaxValueValidator(24 * 60)]
    )
    mode = models.CharField(max_length=10, choices=Mode.choices)
    activity = models.CharField(max_length=20, choices=Activity.choices)
    notes = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    objects = TimeEntryQuerySet.as_manager()

    class Meta:
        ordering = ["-date", "-id"]
        verbose_name_plural = "time entries"
        indexes = [
            models.Index(fields=["partnership", "mode", "date"], name="time_partnership_mode_date"),
            models.Index(fields=["supplier", "date"], name="time_supplier_date"),
            models.Index(fields=["school", "date"], name="time_school_date"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(minutes__gte=1, minutes__lte=24 * 60), name="time_minutes_in_a_day"
            ),
            # A completed visit makes its on-site entry once, however often it is retried.
            models.UniqueConstraint(
                fields=["visit"],
                condition=Q(visit__isnull=False, mode="on_site"),
                name="one_onsite_entry_per_visit",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.minutes} min {self.mode} on {self.date}"


class OnsiteCorrection(TenancyFromPartnership, models.Model):
    """A change to on-site time the school relies on: a completed visit's on-site entry
    changed (minutes, day, mode or visit) or deleted, or the agreement's promised hours
    per term lowered. Who, when, before and after, and why; shown to the school's leads
    beside the hours (visits.corrections)."""

    class Change(models.TextChoices):
        CHANGED = "changed", "Changed"
        DELETED = "deleted", "Deleted"
        PROMISE_LOWERED = "promise_lowered", "Promised hours lowered"

    partnership = models.ForeignKey(
        "accounts.Partnership", on_delete=models.PROTECT, related_name="onsite_corrections"
    )
    supplier = models.ForeignKey(
        "accounts.Organisation", on_delete=models.PROTECT, related_name="+"
    )
    school = models.ForeignKey("accounts.Organisation", on_delete=models.PROTECT, related_name="+")
    # Kept when the entry is deleted: the record says what it was.
    time_entry = models.ForeignKey(
        TimeEntry, null=True, blank=True, on_delete=models.SET_NULL, related_name="corrections"
    )
    visit = models.ForeignKey(
        Visit, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    change = models.CharField(max_length=20, choices=Change.choices)
    # An entry's minutes, or the promise's hours per term in minutes.
    old_minutes = models.PositiveIntegerField()
    new_minutes = models.PositiveIntegerField(null=True, blank=True, help_text="None: deleted.")
    old_value = models.CharField(max_length=200, help_text="Before, as words.")
    new_value = models.CharField(max_length=200, blank=True, help_text="After; empty: deleted.")
    reason = models.TextField(max_length=2000)
    by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    at = models.DateTimeField(default=timezone.now)

    objects = OnsiteCorrectionQuerySet.as_manager()

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [
            models.Index(fields=["school", "-at"], name="onsite_fix_school_recent"),
            models.Index(fields=["partnership", "-at"], name="onsite_fix_partnership_recent"),
        ]
        constraints = [
            models.CheckConstraint(condition=~Q(reason=""), name="onsite_fix_has_reason"),
            models.CheckConstraint(
                condition=Q(change="deleted", new_minutes__isnull=True)
                | Q(change__in=["changed", "promise_lowered"], new_minutes__isnull=False),
                name="onsite_fix_deleted_has_no_minutes",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_change_display()}: {self.old_value} -> {self.new_value or 'deleted'}"


class CalendarFeed(models.Model):
    """A user's private iCalendar URL. Only a hash of the secret is stored; rotating it
    revokes the old URL."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="calendar_feed"
    )
    token_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(default=timezone.now)
    last_fetched_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"Calendar feed of {self.user_id}"
