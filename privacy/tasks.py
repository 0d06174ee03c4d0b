import logging

from celery import shared_task

from . import retention

logger = logging.getLogger(__name__)


@shared_task(ignore_result=True)
def apply_retention() -> dict[str, int]:
    """Daily (beat): delete or blank what is past its retention (privacy/retention.py)."""
    counts = retention.apply_retention()
    logger.info("retention applied: %s", counts)
    return counts
