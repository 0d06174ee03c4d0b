from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.files.storage import Storage, storages
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone
from simple_history.models import HistoricalRecords

from audit.models import AuditFields

from .querysets import TicketAttachmentQuerySet, TicketMessageQuerySet, TicketQuerySet


class Status(models.TextChoices):
    NEW = "new", "New"
    ACKNOWLEDGED = "acknowledged", "Acknowledged"
    IN_PROGRESS = "in_progress", "In progress"
    WAITING_ON_SCHOOL = "waiting_on_school", "Waiting on school"
    RESOLVED = "resolved", "Resolved"
    CLOSED = "closed", "Closed"


OPEN_STATUSES = (
    Status.NEW,
    Status.ACKNOWLEDGED,
    Status.IN_PROGRESS,
    Status.WAITING_ON_SCHOOL,
)


class TenancyFromPartnership:
    """For a model whose ``supplier`` and ``school`` are copies of its partnership's (so
    every scope filter is one indexed column): ``save()`` always takes them from the
    partnership, so no form, admin or script can file a row under another tenant.

    A CheckConstraint cannot read another table, so this is the guard for every write
    that goes through ``save()``; the services never write these columns any other way
    (``QuerySet.update()`` and ``bulk_create()`` bypass it, and are not used on them)."""

    TENANCY_FIELDS = frozenset(
        ("partnership", "partnership_id", "supplier", "supplier_id", "school", "school_id")
    )

    def save(self, *args: Any, **kwargs: Any) -> None:
        update_fields = kwargs.get("update_fields")
        if update_fields is None or self.TENANCY_FIELDS & set(update_fields):
            self.supplier_id, self.school_id = self._partnership_tenancy()  # type: ignore[attr-defined]
            if update_fields is not None:
                kwargs["update_fields"] = {*update_fields, "partnership", "supplier", "school"}
        super().save(*args, **kwargs)  # type: ignore[misc]

    def _partnership_tenancy(self) -> tuple[int, int]:
        from accounts.models import Partnership

        pid = self.partnership_id  # type: ignore[attr-defined]
        field = type(self).partnership.field  # type: ignore[attr-defined]
        if field.is_cached(self) and getattr(self.partnership, "pk", None) == pid:  # type: ignore[attr-defined]
            p = self.partnership  # type: ignore[attr-defined]
            return p.supplier_id, p.school_id
        return Partnership.objects.values_list("supplier_id", "school_id").get(pk=pid)


class Ticket(TenancyFromPartnership, models.Model):
    """Feedback or a problem from school staff about a partnership's product."""

    class Category(models.TextChoices):
        PROBLEM = "problem", "Problem"
        QUESTION = "question", "Question"
        IDEA = "idea", "Idea"
        TRAINING_NEED = "training_need", "Training need"
        PRAISE = "praise", "Praise"

    class Priority(models.TextChoices):
        LOW = "low", "Low"
        NORMAL = "normal", "Normal"
        HIGH = "high", "High"
        URGENT = "urgent", "Urgent"

    class Outcome(models.TextChoices):
        FIXED = "fixed", "Fixed"
        CHANGED_PRODUCT = "changed_product", "Changed the product"
        TRAINING_GIVEN = "training_given", "Training given"
        WORKAROUND = "workaround", "Workaround"
        WONT_CHANGE = "wont_change", "Won't change"

    partnership = models.ForeignKey(
        "accounts.Partnership", on_delete=models.PROTECT, related_name="tickets"
    )
    # Copied from the partnership (which never changes supplier or school) so that every
    # scope filter is a single indexed column.
    supplier = models.ForeignKey(
        "accounts.Organisation", on_delete=models.PROTECT, related_name="supplier_tickets"
    )
    school = models.ForeignKey(
        "accounts.Organisation", on_delete=models.PROTECT, related_name="school_tickets"
    )
    product = models.ForeignKey(
        "accounts.Product", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    raised_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="raised_tickets"
    )
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="assigned_tickets",
    )
    subject = models.CharField(max_length=200)
    description = models.TextField(max_length=10_000)
    category = models.CharField(max_length=20, choices=Category.choices, default=Category.PROBLEM)
    priority = models.CharField(max_length=10, choices=Priority.choices, default=Priority.NORMAL)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.NEW)
    outcome = models.CharField(max_length=20, choices=Outcome.choices, blank=True)
    outcome_reason = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    # SLA clock, in school working seconds. Targets are copied from the agreement when the
    # ticket is raised, so a later change of agreement does not rewrite history.
    first_response_target_seconds = models.PositiveIntegerField()
    resolution_target_seconds = models.PositiveIntegerField()
    first_response_due_at = models.DateTimeField()
    first_response_at = models.DateTimeField(null=True, blank=True)
    # School working seconds from raising to the first response, fixed when it happens, so
    # that reports can take medians and percentiles in the database.
    first_response_seconds = models.PositiveIntegerField(null=True, blank=True)
    # Resolution clock: working seconds used before `clock_started_at`; it runs from
    # `clock_started_at` while the ticket is open and not waiting on the school.
    sla_used_seconds = models.PositiveIntegerField(default=0)
    clock_started_at = models.DateTimeField(null=True, blank=True)
    resolution_due_at = models.DateTimeField(null=True, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    resolution_breached = models.BooleanField(default=False)
    reopen_count = models.PositiveSmallIntegerField(default=0)
    # Filed when the school came back about a ticket resolved longer ago than the reopen
    # window (settings.TICKET_REOPEN_WINDOW_DAYS): the new ticket points at the old one.
    follow_up_of = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="follow_ups"
    )

    rating = models.PositiveSmallIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1), MaxValueValidator(5)]
    )
    rating_comment = models.TextField(blank=True, max_length=2000)
    rated_at = models.DateTimeField(null=True, blank=True)

    # Subject, description and public messages only: what school users may search.
    search_document = models.TextField(blank=True, editable=False)
    # Emails to the raiser, claimed once each (a retried task does not resend).
    notified_first_response_at = models.DateTimeField(null=True, blank=True, editable=False)
    notified_resolved_at = models.DateTimeField(null=True, blank=True, editable=False)

    objects = TicketQuerySet.as_manager()

    history = HistoricalRecords(
        bases=[AuditFields],
        excluded_fields=[
            "updated_at",
            "search_document",
            "notified_first_response_at",
            "notified_resolved_at",
        ],
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["supplier", "-created_at", "-id"], name="ticket_supplier_recent"),
            models.Index(fields=["school", "-created_at", "-id"], name="ticket_school_recent"),
            models.Index(fields=["raised_by", "-created_at", "-id"], name="ticket_raiser_recent"),
            models.Index(
                fields=["supplier", "status", "-created_at", "-id"], name="ticket_supplier_status"
            ),
            models.Index(
                fields=["school", "status", "-created_at", "-id"],
                # Covers a supplier's filtered count (status + school) on PostgreSQL.
                include=["supplier"],
                name="ticket_school_status",
            ),
            models.Index(fields=["partnership", "-created_at"], name="ticket_partnership_recent"),
            # A supplier's portfolio: open and late tickets per partnership (a small partial
            # index that covers the lateness test on PostgreSQL) and recent ratings.
            models.Index(
                fields=["supplier", "partnership"],
                include=[
                    "first_response_at",
                    "first_response_due_at",
                    "resolution_breached",
                    "clock_started_at",
                    "resolution_due_at",
                ],
                condition=Q(status__in=OPEN_STATUSES),
                name="ticket_open_by_partnership",
            ),
            models.Index(
                fields=["supplier", "rated_at"],
                condition=Q(rated_at__isnull=False),
                name="ticket_supplier_rated",
            ),
            models.Index(fields=["assignee", "status"], name="ticket_assignee_status"),
            # The email sweeper's look-ups: small partial indexes of the unsent ones.
            models.Index(
                fields=["first_response_at"],
                condition=Q(
                    notified_first_response_at__isnull=True, first_response_at__isnull=False
                ),
                name="ticket_unsent_first_response",
            ),
            models.Index(
                fields=["resolved_at"],
                condition=Q(notified_resolved_at__isnull=True, resolved_at__isnull=False),
                name="ticket_unsent_resolved",
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=~Q(status__in=["resolved", "closed"]) | ~Q(outcome=""),
                name="resolved_ticket_has_outcome",
            ),
            models.CheckConstraint(
                condition=~Q(outcome="wont_change") | ~Q(outcome_reason=""),
                name="wont_change_has_reason",
            ),
            models.CheckConstraint(
                condition=Q(rating__isnull=True) | Q(rating__gte=1, rating__lte=5),
                name="rating_1_to_5",
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.subject}"

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES


class TicketMessage(models.Model):
    class Channel(models.TextChoices):
        PAGE = "page", "Page"
        API = "api", "API"
        EMAIL = "email", "Email"

    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="messages")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    body = models.TextField(max_length=20_000)
    # Internal notes are for the supplier's staff only: never shown, counted, exported,
    # searched or emailed to school users.
    is_internal = models.BooleanField(default=False)
    channel = models.CharField(max_length=10, choices=Channel.choices, default=Channel.PAGE)
    # The school's reason for reopening the ticket was this message.
    reopened = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)
    # A school message is emailed to the supplier's assignee (else the account manager)
    # once: this is the claim (see tickets.notifications.send_supplier_notification).
    supplier_notified_at = models.DateTimeField(null=True, blank=True, editable=False)

    objects = TicketMessageQuerySet.as_manager()

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["ticket", "created_at"], name="message_ticket_time")]

    def __str__(self) -> str:
        return f"Message on #{self.ticket_id}"


def attachment_storage() -> Storage:
    """settings.STORAGES["attachments"]: files under VAR_DIR, or S3 (ATTACHMENTS_STORAGE)."""
    return storages["attachments"]


class TicketAttachment(models.Model):
    """A file on a ticket (given when it was raised) or on one of its messages. Stored
    through ``attachment_storage`` under a random name, and served only by the API's
    download view, which checks ``visible_to`` (tickets/attachments.py checks and stores)."""

    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="attachments")
    message = models.ForeignKey(
        TicketMessage,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="attachments",
    )
    file = models.FileField(storage=attachment_storage, max_length=200)
    # The sender's file name, made safe, with the extension of the type found in it.
    name = models.CharField(max_length=120)
    # Found in the content (never taken from the name or the browser).
    content_type = models.CharField(max_length=100)
    size = models.PositiveIntegerField()
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    objects = TicketAttachmentQuerySet.as_manager()

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["ticket", "created_at"], name="attachment_ticket_time")]

    def __str__(self) -> str:
        return self.name

    @property
    def is_image(self) -> bool:
        """Re-encoded on the way in (tickets.attachments.REENCODED): safe to show inline."""
        from .attachments import REENCODED

        return self.content_type in REENCODED


class TicketEvent(models.Model):
    """The ticket's history: every status change, assignment, outcome and rating."""

    class Kind(models.TextChoices):
        CREATED = "created", "Raised"
        STATUS = "status", "Status changed"
        ASSIGNED = "assigned", "Assigned"
        OUTCOME = "outcome", "Outcome recorded"
        PRIORITY = "priority", "Priority changed"
        RATED = "rated", "Rated"
        FIRST_RESPONSE = "first_response", "First response"

    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    from_value = models.CharField(max_length=200, blank=True)
    to_value = models.CharField(max_length=200, blank=True)
    by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["at", "id"]
        indexes = [models.Index(fields=["ticket", "at"], name="event_ticket_time")]

    def __str__(self) -> str:
        return f"#{self.ticket_id} {self.kind} {self.from_value}→{self.to_value}"


class IdempotencyKey(models.Model):
    """A client's retry of the same POST (same user, same key) returns the first result."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=100)
    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "key"], name="idempotency_key_per_user"),
        ]

    def __str__(self) -> str:
        return f"{self.key} → #{self.ticket_id}"
