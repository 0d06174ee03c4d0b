from celery import shared_task
from django.db.models import F
from django.utils import timezone
from knox.models import AuthToken

from .models import Heartbeat


@shared_task(ignore_result=True)
def heartbeat() -> None:
    """Fired by beat, run by a worker: its row's age tells that both are alive."""
    now = timezone.now()
    updated = Heartbeat.objects.filter(name="beat").update(last_seen=now, count=F("count") + 1)
    if not updated:
        Heartbeat.objects.get_or_create(name="beat", defaults={"last_seen": now, "count": 1})


@shared_task(ignore_result=True)
def purge_expired_tokens() -> int:
    deleted, _ = AuthToken.objects.filter(expiry__lt=timezone.now()).delete()
    return deleted
