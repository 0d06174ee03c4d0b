import logging

from celery import shared_task

from .dispatch import dispatch_due, recover
from .planner import plan
from .replies import send_reply_notification, sweep_reply_notifications

logger = logging.getLogger(__name__)


@shared_task(ignore_result=True)
def dispatch_nudges() -> dict[str, int]:
    """Every minute (beat): recover dead claims, then send what is due."""
    recovered = recover()
    stats = dispatch_due()
    sweep_reply_notifications()
    if stats.claimed or any(recovered.values()):
        logger.info("nudges: %s recovered=%s", stats, recovered)
    return {"sent": stats.sent, "claimed": stats.claimed, **recovered}


@shared_task(ignore_result=True)
def plan_nudges() -> int:
    """Every 15 minutes (beat): turn rules into nudges for the coming two weeks."""
    return plan()


@shared_task(ignore_result=True, autoretry_for=(OSError,), retry_backoff=True, max_retries=5)
def notify_nudge_reply(reply_id: int) -> None:
    """Tell the account manager a contact answered a nudge; sent at most once."""
    send_reply_notification(reply_id=reply_id)
