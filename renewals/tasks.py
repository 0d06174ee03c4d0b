import logging

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from . import services

logger = logging.getLogger(__name__)


@shared_task(ignore_result=True)
def open_due_reviews() -> int:
    """Daily (beat): open the value review of each term whose notice date is within
    RENEWAL_REVIEW_WEEKS weeks, once per term."""
    opened = services.open_due_reviews(timezone.localdate(), settings.RENEWAL_REVIEW_WEEKS)
    if opened:
        logger.info("value reviews opened: %d", opened)
    return opened
