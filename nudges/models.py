from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from simple_history.models import HistoricalRecords

from audit.models import AuditFields

from .querysets import (
    NudgeQuerySet,
    NudgeReplyQuerySet,
    NudgeRuleQuerySet,
    NudgeTemplateQuerySet,
    OptOutQuerySet,
)


class NudgeTemplate(models.Model):
    """A supplier's wording, with {{ placeholders }} from a fixed list (see templating.py)."""

    supplier = models.ForeignKey(
        "accounts.Organisation", on_delete=models.CASCADE, related_name="+"
    )
    name = models.CharField(max_length=100)
    subject = models.CharField(max_length=200)
    body_text = models.TextField(max_length=5000)
    body_html = models.TextField(
        max_length=20000, blank=True, help_text="Optional; made from the text when blank."
    )
    is_active = models.BooleanField(default=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = NudgeTemplateQuerySet.as_manager()

    history = HistoricalRecords(bases=[AuditFields], excluded_fields=["updated_at"])

    class Meta:
        ordering = ["name", "id"]
        constraints = [
            models.UniqueConstraint(fields=["supplier", "name"], name="template_name_per_supplier")
        ]

    def __str__(self) -> str:
        return self.name


class NudgeRule(models.Model):
    """When to nudge whom: a cadence in school weeks, or an event, for an audience."""

    class Trigger(models.TextChoices):
        CADENCE = "cadence", "Every N school weeks"
        PHASE_STARTS = "phase_starts", "N days before a trial phase starts"
        PHASE_ENDS = "phase_ends", "N days before a trial phase ends"
        AFTER_VISIT = "after_visit", "N days after a completed visit"
        TICKET_RESOLVED = "ticket_resolved", "When a ticket is resolved (ask for a rating)"
        NO_CONTACT = "no_contact", "After N days without contact"

    supplier = models.ForeignKey(
        "accounts.Organisation", on_delete=models.CASCADE, related_name="+"
    )
    # One partnership, or (null) every live partnership of the supplier in `stages`.
    partnership = models.ForeignKey(
        "accounts.Partnership",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="nudge_rules",
    )
    stages = models.CharField(
        max_length=200, blank=True, help_text="Comma-separated stages; blank: all live."
    )
    template = models.ForeignKey(NudgeTemplate, on_delete=models.PROTECT, related_name="rules")
    name = models.CharField(max_length=100)
    trigger = models.CharField(max_length=20, choices=Trigger.choices)
    every_n_school_weeks = models.PositiveSmallIntegerField(null=True, blank=True)
    days = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="N for the event triggers."
    )
    # Audience: contacts with any of these tags, and/or the current trial cohort, and/or named ones.
    audience_tags = models.CharField(max_length=200, blank=True, help_text="Stored as ,tag1,tag2,")
    audience_cohort = models.BooleanField(default=False)
    audience_contacts = models.ManyToManyField("accounts.Contact", blank=True, related_name="+")
    is_active = models.BooleanField(default=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    objects = NudgeRuleQuerySet.as_manager()

    history = HistoricalRecords(bases=[AuditFields])

    class Meta:
        ordering = ["name", "id"]

    def __str__(self) -> str:
        return self.name

    @property
    def tag_list(self) -> list[str]:
        return [t for t in self.audience_tags.split(",") if t]

    @property
    def stage_list(self) -> list[str]:
        return [s for s in self.stages.split(",") if s]


class Nudge(models.Model):
    """One email from a supplier to one contact. The row is the source of truth: the
    dispatcher claims it, sends it and records what happened."""

    class Status(models.TextChoices):
        SCHEDULED = "scheduled", "Scheduled"
        SENDING = "sending", "Sending"
        UNKNOWN = "unknown", "Sent? (awaiting SendGrid's events)"
        # In doubt and no event came to settle it: never resent without a person's say.
        HELD = "held", "In doubt: held for your decision"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed"
        SKIPPED = "skipped", "Skipped"
        CANCELLED = "cancelled", "Cancelled"

    class Delivery(models.TextChoices):
        NONE = "", "—"
        DELIVERED = "delivered", "Delivered"
        OPENED = "opened", "Opened"
        CLICKED = "clicked", "Clicked"
        BOUNCED = "bounced", "Bounced"
        DROPPED = "dropped", "Dropped"
        SPAM_REPORT = "spam_report", "Marked as spam"
        UNSUBSCRIBED = "unsubscribed", "Unsubscribed"

    supplier = models.ForeignKey(
        "accounts.Organisation", on_delete=models.PROTECT, related_name="+"
    )
    school = models.ForeignKey("accounts.Organisation", on_delete=models.PROTECT, related_name="+")
    partnership = models.ForeignKey(
        "accounts.Partnership", on_delete=models.CASCADE, related_name="nudges"
    )
    # Erasing a contact (GDPR) erases the nudges to them.
    contact = models.ForeignKey("accounts.Contact", on_delete=models.CASCADE, related_name="nudges")
    rule = models.ForeignKey(
        NudgeRule, null=True, blank=True, on_delete=models.SET_NULL, related_name="nudges"
    )
    template = models.ForeignKey(
        NudgeTemplate, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # "cadence:12", "phase_ends:31", "visit:7", "ticket:5", "no_contact:2026-11-02", "manual:<uuid>"
    occurrence = models.CharField(max_length=80)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # One-off nudges carry their own wording; rule nudges render their template when sent.
    subject = models.CharField(max_length=200, blank=True)
    body_text = models.TextField(blank=True)
    body_html = models.TextField(blank=True)
    # What the first attempt rendered (placeholders filled, footer added), kept apart from
    # the source above: a resend sends exactly this again instead of rendering it twice.
    rendered_subject = models.CharField(max_length=300, blank=True)
    rendered_text = models.TextField(blank=True)
    rendered_html = models.TextField(blank=True)

    due_at = models.DateTimeField(help_text="When it was meant to go.")
    next_attempt_at = models.DateTimeField(help_text="When the dispatcher will next try it.")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.SCHEDULED)
    status_reason = models.CharField(max_length=300, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.TextField(blank=True)
    claim_token = models.UUIDField(null=True, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    # Set (and committed) just before the HTTP request that carries this nudge: a claim
    # that dies after this point may have been delivered, so it becomes UNKNOWN, never
    # blindly resent. `attempt` is that request.
    send_attempted_at = models.DateTimeField(null=True, blank=True)
    attempt = models.ForeignKey(
        "SendAttempt", null=True, blank=True, on_delete=models.SET_NULL, related_name="nudges"
    )
    # A person's decision on a nudge in doubt (HELD): resent or dropped, by whom and when.
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    sendgrid_message_id = models.CharField(max_length=100, blank=True)
    delivery = models.CharField(max_length=15, choices=Delivery.choices, blank=True, default="")
    delivered_at = models.DateTimeField(null=True, blank=True)
    opened_at = models.DateTimeField(null=True, blank=True)
    clicked_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    objects = NudgeQuerySet.as_manager()

    class Meta:
        ordering = ["-due_at", "-id"]
        indexes = [
            # The dispatcher's only question: what is due now? A small partial index.
            models.Index(
                fields=["next_attempt_at"], condition=Q(status="scheduled"), name="nudge_due"
            ),
            models.Index(
                fields=["status", "claimed_at"],
                condition=Q(status__in=["sending", "unknown"]),
                name="nudge_in_flight",
            ),
            models.Index(
                fields=["supplier", "send_attempted_at"],
                condition=Q(status="held"),
                name="nudge_held",
            ),
            models.Index(fields=["contact", "sent_at"], name="nudge_contact_sent"),
            models.Index(fields=["supplier", "-due_at"], name="nudge_supplier_recent"),
            models.Index(fields=["school", "-due_at"], name="nudge_school_recent"),
            models.Index(fields=["partnership", "-due_at"], name="nudge_partnership_recent"),
        ]
        constraints = [
            # Re-running the planner never duplicates a nudge.
            models.UniqueConstraint(
                fields=["rule", "contact", "occurrence"],
                condition=Q(rule__isnull=False),
                name="one_nudge_per_occurrence",
            ),
        ]

    def __str__(self) -> str:
        return f"Nudge {self.pk} to {self.contact_id} ({self.status})"


class SendAttempt(models.Model):
    """One HTTP request to SendGrid (or one outbox write): the nudges it carried, committed
    before it was made, and what came of it. Only the request in flight when a worker dies
    or an answer is lost is in doubt; one SendGrid event for any of its emails proves the
    whole request was accepted."""

    class Outcome(models.TextChoices):
        PENDING = "", "In flight"
        ACCEPTED = "accepted", "Accepted"
        REJECTED = "rejected", "Refused"
        RETRY = "retry", "Not accepted: will retry"
        UNKNOWN = "unknown", "Answer lost"

    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    emails = models.PositiveIntegerField()
    outcome = models.CharField(max_length=10, choices=Outcome.choices, blank=True, default="")
    http_status = models.PositiveSmallIntegerField(null=True, blank=True)
    message_id = models.CharField(max_length=100, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-started_at", "-id"]

    def __str__(self) -> str:
        return f"Request {self.pk}: {self.emails} email(s), {self.get_outcome_display()}"


class NudgeEvent(models.Model):
    """A delivery event from SendGrid's event webhook, recorded once per sg_event_id."""

    nudge = models.ForeignKey(Nudge, null=True, on_delete=models.CASCADE, related_name="events")
    sg_event_id = models.CharField(max_length=100, unique=True)
    event = models.CharField(max_length=30)
    email = models.EmailField(blank=True)
    occurred_at = models.DateTimeField()
    reason = models.TextField(blank=True)
    received_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["occurred_at", "id"]
        indexes = [models.Index(fields=["nudge", "occurred_at"], name="nudge_event_time")]

    def __str__(self) -> str:
        return f"{self.event} for nudge {self.nudge_id}"


class OptOut(models.Model):
    """Stop nudges to a contact: from one supplier, or (supplier null) from everyone."""

    class Source(models.TextChoices):
        LINK = "link", "Unsubscribe link"
        ONE_CLICK = "one_click", "One-click unsubscribe (mail client)"
        SCHOOL_LEAD = "school_lead", "Stopped by the school's lead"
        SPAM_REPORT = "spam_report", "Marked a nudge as spam"
        SUPPLIER = "supplier", "Recorded by the supplier"

    contact = models.ForeignKey(
        "accounts.Contact", on_delete=models.CASCADE, related_name="opt_outs"
    )
    supplier = models.ForeignKey(
        "accounts.Organisation", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    source = models.CharField(max_length=15, choices=Source.choices)
    note = models.CharField(max_length=300, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    objects = OptOutQuerySet.as_manager()

    history = HistoricalRecords(bases=[AuditFields])

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["contact", "supplier"],
                condition=Q(supplier__isnull=False),
                name="one_opt_out_per_supplier",
            ),
            models.UniqueConstraint(
                fields=["contact"], condition=Q(supplier__isnull=True), name="one_global_opt_out"
            ),
        ]

    def __str__(self) -> str:
        return f"Opt-out of {self.contact_id} from {self.supplier_id or 'everyone'}"


class Suppression(models.Model):
    """An address nobody may email again: it bounced hard, was blocked or reported spam."""

    email = models.EmailField(unique=True)
    reason = models.CharField(max_length=20)
    detail = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"{self.email} ({self.reason})"


def new_claim_token() -> uuid.UUID:
    return uuid.uuid4()


class NudgeReply(models.Model):
    """A contact's answer to a nudge by email (recorded by the inbound app). A person's
    reply stops that rule's nudges to them until the account manager resumes it (HubSpot
    Sequences' unenrol-on-reply); an auto-reply (out of office) is only recorded."""

    nudge = models.ForeignKey(Nudge, on_delete=models.CASCADE, related_name="replies")
    supplier = models.ForeignKey(
        "accounts.Organisation", on_delete=models.CASCADE, related_name="+"
    )
    partnership = models.ForeignKey(
        "accounts.Partnership", on_delete=models.CASCADE, related_name="nudge_replies"
    )
    # Erasing a contact (GDPR) erases what they wrote.
    contact = models.ForeignKey(
        "accounts.Contact", on_delete=models.CASCADE, related_name="nudge_replies"
    )
    subject = models.CharField(max_length=300, blank=True)
    body = models.TextField(blank=True, help_text="The reply, quoted history stripped.")
    is_auto = models.BooleanField(default=False, help_text="An out-of-office or other auto-reply.")
    received_at = models.DateTimeField(default=timezone.now)
    # The rule this reply stopped for this contact (none for one-off nudges and auto-replies).
    stopped_rule = models.ForeignKey(
        NudgeRule, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    resumed_at = models.DateTimeField(null=True, blank=True)
    resumed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    notified_at = models.DateTimeField(null=True, blank=True)

    objects = NudgeReplyQuerySet.as_manager()

    history = HistoricalRecords(bases=[AuditFields], excluded_fields=["notified_at"])

    class Meta:
        ordering = ["-received_at", "-id"]
        indexes = [
            models.Index(
                fields=["contact", "stopped_rule"],
                condition=Q(stopped_rule__isnull=False, resumed_at__isnull=True),
                name="nudge_reply_active_stop",
            ),
            models.Index(fields=["partnership", "-received_at"], name="nudge_reply_recent"),
        ]

    def __str__(self) -> str:
        return f"Reply to nudge {self.nudge_id} from {self.contact_id}"

    @property
    def is_stopping(self) -> bool:
        return self.stopped_rule_id is not None and self.resumed_at is None
