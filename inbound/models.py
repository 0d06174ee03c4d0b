from __future__ import annotations

from django.db import models
from django.utils import timezone


class InboundEmail(models.Model):
    """Every message SendGrid's Inbound Parse posted to us, once (by Message-ID), with what
    became of it: the log that answers "did my reply arrive?" and "who tried a bad token?".
    The reply itself lives on the ticket message or nudge reply it became."""

    class Status(models.TextChoices):
        ACCEPTED = "accepted", "Accepted"
        AUTO_REPLY = "auto_reply", "Auto-reply (recorded only)"
        REFUSED = "refused", "Refused"

    # The Message-ID, or (without one) a digest of the message: the same post twice is
    # stored once.
    dedup_key = models.CharField(max_length=255, unique=True)
    message_id = models.CharField(max_length=255, blank=True)
    received_at = models.DateTimeField(default=timezone.now)
    sender = models.CharField(max_length=320, blank=True)
    recipient = models.CharField(max_length=320, blank=True)
    subject = models.CharField(max_length=300, blank=True)
    status = models.CharField(max_length=12, choices=Status.choices)
    reason = models.CharField(max_length=300, blank=True)
    ticket_message = models.ForeignKey(
        "tickets.TicketMessage", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # A reply past the reopen window files a new ticket.
    ticket = models.ForeignKey(
        "tickets.Ticket", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    nudge_reply = models.ForeignKey(
        "nudges.NudgeReply", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-received_at", "-id"]

    def __str__(self) -> str:
        return f"{self.get_status_display()}: {self.subject[:60]} from {self.sender}"
