from datetime import timedelta

from celery import shared_task
from django.db import models
from django.utils import timezone

from .models import Ticket, TicketMessage
from .notifications import send_raiser_notification, send_supplier_notification


@shared_task(ignore_result=True, autoretry_for=(OSError,), retry_backoff=True, max_retries=5)
def notify_raiser(ticket_id: int, kind: str) -> None:
    """Email the person who raised the ticket; sent at most once per kind."""
    send_raiser_notification(ticket_id=ticket_id, kind=kind)


@shared_task(ignore_result=True)
def sweep_notifications() -> int:
    """Queue the raiser emails whose on-commit dispatch was lost (broker down, worker
    killed). Looks back a week; the claim in send_raiser_notification stops doubles."""
    since = timezone.now() - timedelta(days=7)
    queued = 0
    due = {
        "first_response": Ticket.objects.filter(
            first_response_at__gte=since, notified_first_response_at__isnull=True
        ),
        "resolved": Ticket.objects.filter(
            resolved_at__gte=since, notified_resolved_at__isnull=True
        ),
    }
    cutoff = timezone.now() - timedelta(minutes=2)  # leave fresh ones to their own task
    for kind, tickets in due.items():
        field = "first_response_at" if kind == "first_response" else "resolved_at"
        for ticket_id in tickets.filter(**{f"{field}__lte": cutoff}).values_list("id", flat=True)[
            :500
        ]:
            notify_raiser.delay(ticket_id, kind)
            queued += 1
    school_messages = TicketMessage.objects.filter(
        created_at__gte=since,
        created_at__lte=cutoff,
        supplier_notified_at__isnull=True,
        is_internal=False,
    )
    for message_id in (
        school_messages.filter(author__memberships__organisation_id=models.F("ticket__school_id"))
        .values_list("id", flat=True)
        .distinct()[:500]
    ):
        notify_supplier.delay(message_id)
        queued += 1
    return queued


@shared_task(ignore_result=True, autoretry_for=(OSError,), retry_backoff=True, max_retries=5)
def notify_supplier(message_id: int) -> None:
    """Email the supplier's assignee (else the account manager) about a school message."""
    send_supplier_notification(message_id=message_id)
