"""A contact answered a nudge by email: record it, stop that rule's nudges to them until
the account manager resumes it, and tell the account manager (once, after commit).
Auto-replies are recorded only. The inbound app calls ``record_reply``."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.core.mail import EmailMessage
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from accounts.models import User
from accounts.scoping import scope_for
from audit.history import record_changes
from partnership_crm.mail import send_once

from .context import redact_personal_links
from .models import Nudge, NudgeReply

logger = logging.getLogger(__name__)

STOPPED_REASON = "they replied: the account manager resumes this rule for them"


@transaction.atomic
def record_reply(
    *, nudge: Nudge, subject: str, body: str, is_auto: bool, received_at: datetime | None = None
) -> NudgeReply:
    stops = nudge.rule_id is not None and not is_auto
    reply = NudgeReply.objects.create(
        nudge=nudge,
        supplier_id=nudge.supplier_id,
        partnership_id=nudge.partnership_id,
        contact_id=nudge.contact_id,
        subject=subject[:300],
        body=redact_personal_links(body),
        is_auto=is_auto,
        received_at=received_at or timezone.now(),
        stopped_rule_id=nudge.rule_id if stops else None,
    )
    if stops:
        # What is already planned for this person from this rule does not go either; the
        # dispatcher skips anything planned later while the stop holds.
        Nudge.objects.filter(
            rule_id=nudge.rule_id, contact_id=nudge.contact_id, status=Nudge.Status.SCHEDULED
        ).update(status=Nudge.Status.SKIPPED, status_reason=STOPPED_REASON)
    if not is_auto:
        transaction.on_commit(lambda: _enqueue(reply.pk))
    return reply


def _enqueue(reply_id: int) -> None:
    from .tasks import notify_nudge_reply

    try:
        notify_nudge_reply.delay(reply_id)
    except Exception:
        logger.warning("could not queue the email about nudge reply %s", reply_id, exc_info=True)


def active_stops(contact_ids: list[int]) -> set[tuple[int, int]]:
    """(contact, rule) pairs whose nudges are stopped by a reply."""
    return set(
        NudgeReply.objects.filter(
            contact_id__in=contact_ids, stopped_rule__isnull=False, resumed_at__isnull=True
        ).values_list("contact_id", "stopped_rule_id")
    )


@transaction.atomic
def resume(*, reply: NudgeReply, by: User) -> int:
    """The account manager has answered the person and lets the rule nudge them again.
    Lifts every stop of that rule for that contact; returns how many."""
    if not scope_for(by).manages_supplier(reply.supplier_id):
        raise PermissionDenied("Only the supplier's admins and account managers resume nudges.")
    if reply.stopped_rule_id is None:
        return 0
    stops = NudgeReply.objects.filter(
        contact_id=reply.contact_id, stopped_rule_id=reply.stopped_rule_id, resumed_at__isnull=True
    )
    # Locked, so the rows updated are the rows whose history is written (no second resume
    # of the same stop in between).
    ids = list(stops.select_for_update().values_list("pk", flat=True))
    resumed = NudgeReply.objects.filter(pk__in=ids, resumed_at__isnull=True).update(
        resumed_at=timezone.now(), resumed_by=by
    )
    record_changes(NudgeReply.objects.filter(pk__in=ids), user=by)
    return resumed


def send_reply_notification(*, reply_id: int) -> bool:
    """Email the partnership's account manager the reply; claimed once."""

    def send() -> bool:
        reply = NudgeReply.objects.select_related(
            "contact",
            "nudge",
            "stopped_rule",
            "partnership__account_manager",
            "partnership__school",
        ).get(pk=reply_id)
        am = reply.partnership.account_manager
        if am is None or not am.is_active or not am.email:
            return False
        url = f"{settings.SITE_URL}{reverse('partnership', args=[reply.partnership_id])}"
        stopped = (
            f'\n\nThe rule "{reply.stopped_rule.name}" will not nudge them again until you '
            f"resume it on the partnership's page."
            if reply.stopped_rule
            else ""
        )
        EmailMessage(
            f"{reply.contact} replied: {reply.subject or reply.nudge.subject}"[:200],
            f"Hello {am.get_short_name()},\n\n{reply.contact} at "
            f"{reply.partnership.school.name} answered your nudge:\n\n{reply.body}{stopped}\n\n"
            f"Answer them from your own mail, and see it on the timeline: {url}\n",
            settings.DEFAULT_FROM_EMAIL,
            [am.email],
            reply_to=[reply.contact.email] if reply.contact.email else None,
        ).send()
        return True

    return send_once(NudgeReply.objects.filter(pk=reply_id, is_auto=False), "notified_at", send)


def sweep_reply_notifications(*, now: datetime | None = None) -> int:
    """Send the account-manager emails whose on-commit queueing was lost (broker down):
    replies of the last week not yet notified and older than two minutes."""
    now = now or timezone.now()
    due = NudgeReply.objects.filter(
        is_auto=False,
        notified_at__isnull=True,
        received_at__gte=now - timedelta(days=7),
        received_at__lte=now - timedelta(minutes=2),
    ).values_list("id", flat=True)[:200]
    return sum(send_reply_notification(reply_id=reply_id) for reply_id in due)
