"""What an erasure leaves behind: who erased, when, which record, how many rows per table.
No personal data: the contact's id only (its row now holds the pseudonym)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone


class Erasure(models.Model):
    by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    at = models.DateTimeField(default=timezone.now)
    # Ids only (not foreign keys): the record of the erasure outlives any later deletion.
    contact_id = models.PositiveBigIntegerField(null=True, blank=True)
    school_id = models.PositiveBigIntegerField(null=True, blank=True)
    user_id = models.PositiveBigIntegerField(null=True, blank=True)
    # {"accounts.Contact": 1, "tickets.TicketMessage": 12, ...}: rows changed or deleted.
    counts = models.JSONField(default=dict)

    class Meta:
        ordering = ["-at", "-id"]

    def __str__(self) -> str:
        return f"Erasure of contact {self.contact_id} at {self.at:%Y-%m-%d %H:%M}"
