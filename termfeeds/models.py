from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone


class TermDateFeed(models.Model):
    """A school's subscription to its local authority's (or its own) term-dates iCalendar
    URL. A daily task fetches it; what it would change is kept here for the school's lead
    to read and apply. Nothing changes the school's clock before a person applies it."""

    school = models.OneToOneField(
        "accounts.Organisation",
        on_delete=models.CASCADE,
        related_name="term_date_feed",
        limit_choices_to={"kind": "school"},
    )
    url = models.URLField(max_length=500)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    checked_at = models.DateTimeField(null=True, blank=True)
    error = models.CharField(max_length=500, blank=True, help_text="Why the last fetch failed.")
    # The fetched calendar whose changes await the lead, exactly as previewed.
    pending_body = models.TextField(blank=True)
    pending_changes = models.JSONField(default=list, blank=True)
    pending_since = models.DateTimeField(null=True, blank=True)
    applied_hash = models.CharField(max_length=64, blank=True)
    applied_at = models.DateTimeField(null=True, blank=True)
    applied_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["school__name", "id"]

    def __str__(self) -> str:
        return f"Term dates of {self.school_id} from {self.url}"
