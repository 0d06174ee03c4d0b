from celery import shared_task

from .notifications import send_raiser_notification


@shared_task(ignore_result=True, autoretry_for=(OSError,), retry_backoff=True, max_retries=5)
def notify_raiser(ticket_id: int, kind: str) -> None:
    """Email the person who raised the ticket; sent at most once per kind."""
    send_raiser_notification(ticket_id=ticket_id, kind=kind)
