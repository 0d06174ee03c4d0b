import logging

from celery import shared_task

from .dispatch import dispatch_due, recover
from .planner import plan

logger = logging.getLogger(__name__)


@shared_task(ignore_result=True)
def dispatch_nudges() -> dict[str, int]:
    """Every minute (beat): recover dead claims, then send what is due."""
    recovered = recover()
    stats = dispatch_due()
    if stats.claimed or any(recovered.values()):
        logger.info("nudges: %s recovered=%s", stats, recovered)
    return {"sent": stats.sent, "claimed": stats.claimed, **recovered}


@shared_task(ignore_result=True)
def plan_nudges() -> int:
    """Every 15 minutes (beat): turn rules into nudges for the coming two weeks."""
    return plan()
