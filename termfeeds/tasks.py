import logging

from celery import shared_task

from .models import TermDateFeed
from .services import check

logger = logging.getLogger(__name__)


@shared_task(ignore_result=True)
def check_term_feeds() -> int:
    """Daily (beat): fetch every subscribed term-dates calendar; changes wait for a lead."""
    checked = 0
    for feed in TermDateFeed.objects.select_related("school").iterator():
        feed = check(feed)
        checked += 1
        if feed.error:
            logger.info("term feed %s: %s", feed.pk, feed.error)
    return checked
