"""An agreement's terms, the value review before each renewal, and its staff survey."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone
from simple_history.models import HistoricalRecords

from audit.models import AuditFields

from .querysets import AgreementTermQuerySet, SurveyInvitationQuerySet, ValueReviewQuerySet


class AgreementTerm(models.Model):
    """One term of a partnership's agreement: its dates, notice period, annual value and
    the commitments as they stood when the term began (the partnership holds the live
    ones), so an old term's figures stay comparable with the next."""

    class Status(models.TextChoices):
        CURRENT = "current", "Current"
        RENEWED = "renewed", "Renewed"
        ENDED = "ended", "Ended"

    partnership = models.ForeignKey(
        "accounts.Partnership", on_delete=models.CASCADE, related_name="agreement_terms"
    )
    # Copied from the partnership for scoping (as visits and tickets do).
    supplier = models.ForeignKey(
        "accounts.Organisation", on_delete=models.PROTECT, related_name="+"
    )
    school = models.ForeignKey("accounts.Organisation", on_delete=models.PROTECT, related_name="+")
    number = models.PositiveSmallIntegerField(default=1)
    starts_on = models.DateField()
    ends_on = models.DateField()
    notice_days = models.PositiveSmallIntegerField(
        default=90, help_text="Notice to end, in days before the end date."
    )
    # ends_on - notice_days, kept for sorting and the "renewals due" lists (set by save()).
    notice_on = models.DateField(editable=False)
    annual_value = models.DecimalField(
        max_digits=10,
        decimal_places=2,
        null=True,
        blank=True,
        validators=[MinValueValidator(0)],
        help_text="Pounds a year; seen by the school and the supplier's staff.",
    )
    onsite_hours_per_term = models.DecimalField(max_digits=6, decimal_places=1, default=0)
    first_response_target_hours = models.PositiveIntegerField(default=8)
    resolution_target_hours = models.PositiveIntegerField(default=40)
    nudges_per_contact_per_week = models.PositiveSmallIntegerField(default=1)
    nudges_per_contact_per_term = models.PositiveSmallIntegerField(default=6)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.CURRENT)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    objects = AgreementTermQuerySet.as_manager()
    history = HistoricalRecords(bases=[AuditFields])

    class Meta:
        ordering = ["partnership_id", "number"]
        indexes = [
            models.Index(fields=["supplier", "notice_on"]),
            models.Index(fields=["school", "notice_on"]),
        ]
        constraints = [
            models.UniqueConstraint(fields=["partnership", "number"], name="one_term_number"),
            models.UniqueConstraint(
                fields=["partnership"],
                condition=Q(status="current"),
                name="one_current_term_per_partnership",
            ),
            models.CheckConstraint(
                condition=Q(ends_on__gt=models.F("starts_on")), name="term_ends_after_start"
            ),
        ]

    def __str__(self) -> str:
        return f"Term {self.number} of partnership {self.partnership_id}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        self.notice_on = self.notice_date
        if kwargs.get("update_fields") is not None:
            kwargs["update_fields"] = {*kwargs["update_fields"], "notice_on"}
        super().save(*args, **kwargs)

    @property
    def notice_date(self) -> date:
        """The last day notice to end can be given."""
        return self.ends_on - timedelta(days=self.notice_days)


class ValueReview(models.Model):
    """The review before a term's renewal: opened once per term (by the daily task some
    weeks before the notice date, or by hand by either side), decided by the school lead."""

    class Opener(models.TextChoices):
        AUTOMATIC = "automatic", "Opened automatically"
        SCHOOL = "school", "Opened by the school"
        SUPPLIER = "supplier", "Opened by the supplier"

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        DECIDED = "decided", "Decided"

    class Decision(models.TextChoices):
        RENEW = "renew", "Renew"
        RENEW_WITH_CHANGES = "renew_with_changes", "Renew with changes"
        END = "end", "End"

    term = models.OneToOneField(AgreementTerm, on_delete=models.CASCADE, related_name="review")
    partnership = models.ForeignKey(
        "accounts.Partnership", on_delete=models.CASCADE, related_name="value_reviews"
    )
    supplier = models.ForeignKey(
        "accounts.Organisation", on_delete=models.PROTECT, related_name="+"
    )
    school = models.ForeignKey("accounts.Organisation", on_delete=models.PROTECT, related_name="+")
    opened_how = models.CharField(max_length=10, choices=Opener.choices)
    opened_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    opened_at = models.DateTimeField(default=timezone.now)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN)
    decision = models.CharField(max_length=20, choices=Decision.choices, blank=True)
    decision_reason = models.TextField(max_length=2000, blank=True)
    changes_agreed = models.TextField(max_length=2000, blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    # The figures as they stood when decided (renewals/figures.py), kept with the term.
    figures = models.JSONField(null=True, blank=True)
    next_term = models.OneToOneField(
        AgreementTerm, null=True, blank=True, on_delete=models.SET_NULL, related_name="renewed_from"
    )

    objects = ValueReviewQuerySet.as_manager()
    history = HistoricalRecords(bases=[AuditFields], excluded_fields=["figures"])

    class Meta:
        ordering = ["-opened_at", "-id"]
        indexes = [
            models.Index(fields=["supplier", "status"]),
            models.Index(fields=["school", "status"]),
        ]

    def __str__(self) -> str:
        return f"Value review {self.pk} of partnership {self.partnership_id}"


class SurveyInvitation(models.Model):
    """One person asked "would you notice if it was gone?" for one review, and their
    answer. The emailed link carries a signed token naming this row and its nonce; an
    answer is accepted once."""

    class Notice(models.TextChoices):
        NOT_AT_ALL = "not_at_all", "Not at all"
        A_LITTLE = "a_little", "A little"
        A_LOT = "a_lot", "A lot"

    review = models.ForeignKey(ValueReview, on_delete=models.CASCADE, related_name="invitations")
    school = models.ForeignKey("accounts.Organisation", on_delete=models.PROTECT, related_name="+")
    contact = models.ForeignKey(
        "accounts.Contact", on_delete=models.CASCADE, related_name="survey_invitations"
    )
    nudge = models.OneToOneField(
        "nudges.Nudge", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    nonce = models.UUIDField(unique=True)
    invited_at = models.DateTimeField(default=timezone.now)
    answered_at = models.DateTimeField(null=True, blank=True)
    notice = models.CharField(max_length=12, choices=Notice.choices, blank=True)
    uses = models.TextField(max_length=1000, blank=True, help_text="What they use it for.")
    change = models.TextField(max_length=1000, blank=True, help_text="What should change.")

    objects = SurveyInvitationQuerySet.as_manager()

    class Meta:
        ordering = ["review_id", "id"]
        constraints = [
            models.UniqueConstraint(fields=["review", "contact"], name="one_invitation_per_person"),
        ]

    def __str__(self) -> str:
        return f"Survey invitation {self.pk} (review {self.review_id})"
