from datetime import timedelta

from celery import shared_task
from django.utils import timezone

from .models import Ticket
from .notifications import send_raiser_notification


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
    return queued
