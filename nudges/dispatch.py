"""The dispatcher: claim due nudges, hold back what may not go now, send the rest in as
few SendGrid calls as possible, record every outcome on the rows.

Exactly once: a nudge is claimed by a conditional UPDATE (and on PostgreSQL under
``FOR UPDATE SKIP LOCKED``, so workers share the queue without waiting). Each SendGrid
request is recorded (a SendAttempt, and ``send_attempted_at`` on the nudges it carries)
and committed just before it is made. A claim that dies before its request is simply
released; the nudges of the one request that was in flight, or whose answer was lost, may
have been delivered: they become UNKNOWN and are settled by evidence, never by a guess
(``recover``):

* any SendGrid event for any email of that request proves the request was accepted: all of
  its nudges are sent;
* events arriving for requests made after it, but none for it, prove SendGrid never had
  it: it is sent again;
* with no evidence either way (no webhook, or no later traffic) it is HELD, counted and
  shown to the supplier's admin, who resends or drops it.
"""

from __future__ import annotations

import logging
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Q
from django.db.models.functions import Coalesce
from django.utils import timezone

from accounts.calendars import calendars_for_schools
from accounts.models import Contact
from accounts.privacy_hash import erased
from partnership_crm.reply_tokens import reply_address
from visits.hours import term_spans

from . import templating
from .context import personal_links, personalise, values_for
from .models import Nudge, NudgeEvent, OptOut, SendAttempt, Suppression
from .replies import STOPPED_REASON, active_stops
from .sendgrid import BatchSender, OutgoingEmail, PostResult, RequestLog, Sender, default_sender

logger = logging.getLogger(__name__)

WEEK = timedelta(days=7)
S = Nudge.Status
IN_DOUBT = (S.UNKNOWN, S.HELD)
HELD_REASON = "no word from SendGrid whether it arrived: held for your decision"


@dataclass
class DispatchStats:
    claimed: int = 0
    sent: int = 0
    failed: int = 0
    skipped: int = 0
    postponed: int = 0
    retrying: int = 0
    unknown: int = 0
    calls: int = 0
    batches: int = 0
    reasons: Counter[str] = field(default_factory=Counter)

    def add(self, other: DispatchStats) -> None:
        for name in (
            "claimed",
            "sent",
            "failed",
            "skipped",
            "postponed",
            "retrying",
            "unknown",
            "calls",
            "batches",
        ):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.reasons.update(other.reasons)


def dispatch_due(
    *,
    now: datetime | None = None,
    batch_size: int | None = None,
    max_batches: int | None = None,
    sender: BatchSender | None = None,
) -> DispatchStats:
    """Send everything due by ``now``, one claimed batch at a time."""
    fixed_now = now
    batch_size = batch_size or settings.NUDGE_BATCH_SIZE
    sender = sender or default_sender()
    stats = DispatchStats()
    while max_batches is None or stats.batches < max_batches:
        # Each batch is claimed (claimed_at, send_attempted_at) at the time it is taken,
        # not when the run began: a long run's fresh claims must not look stale to the
        # recover() of a run that beat started meanwhile on another worker.
        now = fixed_now or timezone.now()
        token = uuid.uuid4()
        claimed = _claim(now, batch_size, token)
        if not claimed:
            break
        stats.batches += 1
        stats.claimed += claimed
        _process(token, now, sender, stats)
    return stats


def _claim(now: datetime, size: int, token: uuid.UUID) -> int:
    with transaction.atomic():
        due = Nudge.objects.due(now).order_by("next_attempt_at", "id")
        if connection.features.has_select_for_update_skip_locked:
            ids = list(due.select_for_update(skip_locked=True).values_list("id", flat=True)[:size])
        else:
            # SQLite: the IMMEDIATE transaction already serialises writers; the status
            # condition below keeps a claim exclusive.
            ids = list(due.values_list("id", flat=True)[:size])
        if not ids:
            return 0
        return Nudge.objects.filter(id__in=ids, status=S.SCHEDULED).update(
            status=S.SENDING, claim_token=token, claimed_at=now, attempts=F("attempts") + 1
        )


def _release(
    ids: list[int], *, status: str, when: datetime | None = None, reason: str = "", error: str = ""
) -> None:
    if not ids:
        return
    fields: dict[str, object] = {
        "status": status,
        "claim_token": None,
        "status_reason": reason[:300],
    }
    if when is not None:
        fields["next_attempt_at"] = when
    if error:
        fields["last_error"] = error
    if status == S.SCHEDULED:
        fields["send_attempted_at"] = None
    Nudge.objects.filter(id__in=ids, status=S.SENDING).update(**fields)


def _process(token: uuid.UUID, now: datetime, sender: BatchSender, stats: DispatchStats) -> None:
    with transaction.atomic():
        batch = list(
            Nudge.objects.filter(claim_token=token, status=S.SENDING)
            .select_related(
                "contact", "school", "supplier", "partnership__account_manager", "template"
            )
            .order_by("next_attempt_at", "id")
        )
        go = _gate(batch, token, now, stats)
        values = values_for(go)
        # Working personal links (a survey's) only in what is handed to the sender; the
        # stored rendering keeps their stand-ins (nudges/context.py).
        links = personal_links(go)
        outgoing: dict[tuple[str, str, str], list[OutgoingEmail]] = defaultdict(list)
        senders: dict[tuple[str, str, str], Sender] = {}
        fresh = []
        for n in go:
            if not _has_rendering(n):
                rendered = render_nudge(n, values[n.pk])
                n.rendered_subject, n.rendered_text, n.rendered_html = (
                    rendered.subject,
                    rendered.text,
                    rendered.html,
                )
                fresh.append(n)
            who = _sender_for(n)
            key = (who.email, who.name, who.reply_to_email)
            senders[key] = who
            outgoing[key].append(
                OutgoingEmail(
                    nudge_id=n.pk,
                    to_email=n.contact.email,
                    to_name=f"{n.contact.first_name} {n.contact.last_name}".strip(),
                    subject=n.rendered_subject,
                    text=personalise(n.rendered_text, links.get(n.pk)),
                    html=personalise(n.rendered_html, links.get(n.pk), html=True),
                    unsubscribe_url=values[n.pk]["unsubscribe_url"],
                    reply_to=reply_address("nudge", n.pk, n.contact_id),
                )
            )
        _store_rendering(fresh)

    log = AttemptLog(token)
    for key, emails in outgoing.items():
        report = sender.send(senders[key], emails, log)
        stats.calls += report.calls
        _record(report.outcomes, now, stats)


class AttemptLog(RequestLog):
    """Commits each request before it is made: a SendAttempt, and on the nudges it
    carries ``attempt`` and ``send_attempted_at``. Only nudges still claimed by this run
    go (a run stalled past the stale time may have had its claim released to another
    worker). Each request also renews the run's claim on the rest of its batch."""

    def __init__(self, token: uuid.UUID) -> None:
        self.token = token
        self.current: int | None = None

    def started(self, emails: list[OutgoingEmail]) -> list[OutgoingEmail]:
        now = timezone.now()
        attempt = SendAttempt.objects.create(started_at=now, emails=len(emails))
        ours = Nudge.objects.filter(claim_token=self.token, status=S.SENDING)
        ours.filter(id__in=[e.nudge_id for e in emails]).update(
            attempt=attempt, send_attempted_at=now
        )
        going = set(ours.filter(attempt=attempt).values_list("id", flat=True))
        ours.exclude(attempt=attempt).update(claimed_at=now)
        if len(going) != len(emails):
            SendAttempt.objects.filter(pk=attempt.pk).update(emails=len(going))
        self.current = attempt.pk
        return [e for e in emails if e.nudge_id in going]

    def finished(self, emails: list[OutgoingEmail], result: PostResult) -> None:
        SendAttempt.objects.filter(pk=self.current).update(
            finished_at=timezone.now(),
            outcome=result.kind,
            http_status=result.status,
            message_id=result.message_id[:100],
            error=result.error[:2000],
        )


def _has_rendering(n: Nudge) -> bool:
    return bool(n.rendered_subject or n.rendered_text or n.rendered_html)


def _store_rendering(fresh: list[Nudge]) -> None:
    """Keep what each nudge rendered to, beside its source wording: one UPDATE by primary
    key per row, sent together (executemany; pipelined on PostgreSQL). Django's
    bulk_update builds one CASE per field over the whole batch instead, which took most of
    a 1,000-nudge batch's time (benchmark: bench/nudges)."""
    if not fresh:
        return
    qn = connection.ops.quote_name
    fields = [
        Nudge._meta.get_field(name)
        for name in ("rendered_subject", "rendered_text", "rendered_html")
    ]
    sets = ", ".join(f"{qn(f.column)} = %s" for f in fields)
    with connection.cursor() as cursor:
        cursor.executemany(
            f"UPDATE {qn(Nudge._meta.db_table)} SET {sets} WHERE {qn(Nudge._meta.pk.column)} = %s",
            [(n.rendered_subject, n.rendered_text, n.rendered_html, n.pk) for n in fresh],
        )


def _gate(batch: list[Nudge], token: uuid.UUID, now: datetime, stats: DispatchStats) -> list[Nudge]:
    """Hold back what may not go now: outside the school's send window (postponed),
    opted out, suppressed or in a paused partnership (skipped), over a frequency limit
    (postponed). Returns the nudges that may go."""
    if not batch:
        return []
    contact_ids = sorted({n.contact_id for n in batch})
    # Serialise workers per contact so two batches cannot both pass the weekly limit.
    list(
        Contact.objects.select_for_update()
        .filter(id__in=contact_ids)
        .order_by("id")
        .values_list("id")
    )

    schools = {n.school_id for n in batch}
    windows = {n.school_id: (n.school.send_window_starts, n.school.send_window_ends) for n in batch}
    calendars = {
        sid: cal.with_hours(*windows[sid]) for sid, cal in calendars_for_schools(schools).items()
    }
    opted = set(
        OptOut.objects.filter(contact_id__in=contact_ids).values_list("contact_id", "supplier_id")
    )
    replied = active_stops(contact_ids)
    addresses = {n.contact.email.lower() for n in batch}
    suppressed = set(
        Suppression.objects.filter(email__in=addresses).values_list("email", flat=True)
    )
    # An erased person's address (kept only as a keyed hash) and their pseudonymised record.
    suppressed |= erased(addresses)
    suppressed |= {n.contact.email.lower() for n in batch if n.contact.erased_at is not None}
    since = now - WEEK
    # What counts against the limits: sent, and being sent right now. Not a nudge in
    # doubt (UNKNOWN, HELD): one that never arrived must not keep the contact's next away.
    in_flight = Q(status=S.SENT, sent_at__gte=since) | Q(status=S.SENDING, claimed_at__gte=since)
    recent = list(
        Nudge.objects.filter(in_flight, contact_id__in=contact_ids)
        .exclude(claim_token=token)
        .values_list("contact_id", "supplier_id", "sent_at", "claimed_at")
    )
    per_contact: dict[int, list[datetime]] = defaultdict(list)
    per_pair: dict[tuple[int, int], list[datetime]] = defaultdict(list)
    for contact_id, supplier_id, sent_at, claimed_at in recent:
        when = sent_at or claimed_at
        per_contact[contact_id].append(when)
        per_pair[(contact_id, supplier_id)].append(when)

    # The agreement's limit per member of staff each school term: counted from the start
    # of the school's current term (its own dates, else the default terms).
    terms = term_spans(schools, timezone.localdate(now))
    term_starts = {
        n.school_id: datetime.combine(terms[n.school_id].starts_on, time.min, tzinfo=n.school.zone)
        for n in batch
    }
    term_since = min(term_starts.values())
    per_term: dict[tuple[int, int], list[datetime]] = defaultdict(list)
    this_term = Q(status=S.SENT, sent_at__gte=term_since) | Q(
        status=S.SENDING, claimed_at__gte=term_since
    )
    for contact_id, supplier_id, school_id, sent_at, claimed_at in (
        Nudge.objects.filter(this_term, contact_id__in=contact_ids)
        .exclude(claim_token=token)
        .values_list("contact_id", "supplier_id", "school_id", "sent_at", "claimed_at")
    ):
        when = sent_at or claimed_at
        if when >= term_starts.get(school_id, term_since):
            per_term[(contact_id, supplier_id)].append(when)

    go, skip, later = [], defaultdict(list), defaultdict(list)
    cap = settings.NUDGE_CONTACT_WEEKLY_CAP
    for n in batch:
        cal = calendars[n.school_id]
        opens = cal.next_working_moment(now)
        if opens > now:
            later[(opens, "waiting for the school's send window")].append(n.pk)
            continue
        if (n.contact_id, None) in opted or (n.contact_id, n.supplier_id) in opted:
            skip["the contact has opted out (or their school stopped these emails)"].append(n.pk)
            continue
        if n.rule_id is not None and (n.contact_id, n.rule_id) in replied:
            skip[STOPPED_REASON].append(n.pk)
            continue
        if not n.contact.email or n.contact.email.lower() in suppressed:
            skip["the address bounced, was blocked or reported spam"].append(n.pk)
            continue
        if n.partnership.stage in ("paused", "ended"):
            skip[f"the partnership is {n.partnership.stage}"].append(n.pk)
            continue
        mine = per_pair[(n.contact_id, n.supplier_id)]
        everyone = per_contact[n.contact_id]
        limit = n.partnership.nudges_per_contact_per_week
        if len(mine) >= limit or len(everyone) >= cap:
            # Held until the oldest of the week's emails drops out of the window. The
            # reason names no other supplier and no counts.
            counted = mine if len(mine) >= limit else everyone
            free_at = cal.next_working_moment(min(counted) + WEEK)
            later[
                (free_at, "held back by the limit on emails to a member of staff each week")
            ].append(n.pk)
            continue
        termly = per_term[(n.contact_id, n.supplier_id)]
        if len(termly) >= n.partnership.nudges_per_contact_per_term:
            next_term = datetime.combine(
                terms[n.school_id].ends_on + timedelta(days=1), time.min, tzinfo=n.school.zone
            )
            later[
                (
                    cal.next_working_moment(max(next_term, now)),
                    "held back by the limit on emails to a member of staff each term",
                )
            ].append(n.pk)
            continue
        mine.append(now)
        everyone.append(now)
        termly.append(now)
        go.append(n)

    for reason, ids in skip.items():
        _release(ids, status=S.SKIPPED, reason=reason)
        stats.skipped += len(ids)
        stats.reasons[reason] += len(ids)
    for (when, reason), ids in later.items():
        # A postponement is not an attempt.
        Nudge.objects.filter(id__in=ids).update(attempts=F("attempts") - 1)
        _release(ids, status=S.SCHEDULED, when=when, reason=reason)
        stats.postponed += len(ids)
        stats.reasons[reason] += len(ids)
    return go


def render_nudge(n: Nudge, values: dict[str, str]) -> templating.Rendered:
    """The email a nudge becomes (its template's wording unless it has its own); the
    pages' preview renders with this too. Once rendered for an attempt, always that: a
    resend sends the same email, its footer not added twice."""
    if _has_rendering(n):
        return templating.Rendered(n.rendered_subject, n.rendered_text, n.rendered_html)
    if n.template_id and not n.body_text:
        t = n.template
        return templating.render_email(t.subject, t.body_text, t.body_html, values)
    return templating.render_email(n.subject, n.body_text, n.body_html, values)


def _sender_for(n: Nudge) -> Sender:
    """From the account manager by name, through our sending address. Each email replies
    to its own reply+token address (the inbound app tells the account manager); without
    INBOUND_DOMAIN, replies go to the account manager directly."""
    am = n.partnership.account_manager
    name = f"{am.get_full_name()} ({n.supplier.name})" if am else n.supplier.name
    return Sender(
        email=settings.NUDGE_FROM_EMAIL,
        name=name,
        reply_to_email=am.email if am else "",
        reply_to_name=am.get_full_name() if am else "",
    )


def _record(outcomes: dict, now: datetime, stats: DispatchStats) -> None:
    by_status: dict[str, list] = defaultdict(list)
    for nudge_id, outcome in outcomes.items():
        by_status[outcome.status].append((nudge_id, outcome))
    accepted = by_status["accepted"]
    by_message: dict[str, list[int]] = defaultdict(list)
    for nudge_id, outcome in accepted:
        by_message[outcome.message_id].append(nudge_id)
    for message_id, ids in by_message.items():
        # SENT too: SendGrid's webhook may have confirmed it before send() returned; and
        # UNKNOWN: another worker's recover() may have taken a slow request for a dead one.
        Nudge.objects.filter(id__in=ids, status__in=[S.SENDING, *IN_DOUBT, S.SENT]).update(
            status=S.SENT,
            sendgrid_message_id=message_id[:100],
            claim_token=None,
            status_reason="",
        )
        Nudge.objects.filter(id__in=ids, sent_at__isnull=True).update(sent_at=now)
    stats.sent += len(accepted)
    for nudge_id, outcome in by_status["failed"]:
        Nudge.objects.filter(id=nudge_id, status=S.SENDING).update(
            status=S.FAILED,
            last_error=outcome.error[:2000],
            claim_token=None,
            status_reason="SendGrid refused it",
        )
        stats.failed += 1
    unknown = [nid for nid, _ in by_status["unknown"]]
    if unknown:
        error = by_status["unknown"][0][1].error
        # Only if still SENDING: an event may already have proved it was sent.
        Nudge.objects.filter(id__in=unknown, status=S.SENDING).update(
            status=S.UNKNOWN,
            last_error=error[:2000],
            claim_token=None,
            status_reason="sent, awaiting confirmation from SendGrid",
        )
        stats.unknown += len(unknown)
    retry = by_status["retry"]
    if retry:
        attempts = dict(
            Nudge.objects.filter(id__in=[nid for nid, _ in retry]).values_list("id", "attempts")
        )
        for nudge_id, outcome in retry:
            n = attempts.get(nudge_id, 1)
            if n >= settings.NUDGE_MAX_ATTEMPTS:
                Nudge.objects.filter(id=nudge_id, status=S.SENDING).update(
                    status=S.FAILED,
                    last_error=outcome.error[:2000],
                    claim_token=None,
                    status_reason=f"gave up after {n} attempts",
                )
                stats.failed += 1
                continue
            backoff = max(outcome.retry_after or 0, min(60 * 2 ** (n - 1), 3600))
            _release(
                [nudge_id],
                status=S.SCHEDULED,
                when=now + timedelta(seconds=backoff),
                reason="SendGrid busy: will retry",
                error=outcome.error,
            )
            stats.retrying += 1


def recover(*, now: datetime | None = None) -> dict[str, int]:
    """Claims left by a worker that died: released if their request was never made,
    UNKNOWN if it may have been. Then the nudges in doubt are settled by evidence (see the
    module's docstring): sent, sent again, or held for a person."""
    now = now or timezone.now()
    stale = now - timedelta(seconds=settings.NUDGE_STALE_CLAIM_SECONDS)
    released = Nudge.objects.filter(
        status=S.SENDING, claimed_at__lt=stale, send_attempted_at__isnull=True
    ).update(
        status=S.SCHEDULED,
        claim_token=None,
        next_attempt_at=now,
        status_reason="released after a worker stopped",
    )
    in_doubt = Nudge.objects.filter(
        status=S.SENDING, claimed_at__lt=stale, send_attempted_at__isnull=False
    ).update(
        status=S.UNKNOWN,
        claim_token=None,
        status_reason="worker stopped while sending: awaiting SendGrid's events",
    )
    doubtful = Nudge.objects.filter(status__in=IN_DOUBT)
    # One event for any email of a request proves SendGrid accepted the whole request.
    proven = NudgeEvent.objects.filter(
        nudge__attempt_id__in=doubtful.filter(attempt__isnull=False).values("attempt_id")
    ).values("nudge__attempt_id")
    confirmed = doubtful.filter(
        Q(attempt_id__in=proven) | Q(attempt__outcome=SendAttempt.Outcome.ACCEPTED)
    ).update(
        status=S.SENT,
        claim_token=None,
        sent_at=Coalesce(F("sent_at"), F("send_attempted_at")),
        status_reason="SendGrid reported an email of the same request",
    )
    settle = now - timedelta(seconds=settings.NUDGE_SETTLE_SECONDS)
    evidence = timedelta(seconds=settings.NUDGE_EVIDENCE_WINDOW_SECONDS)
    overdue = dict(
        Nudge.objects.filter(
            status__in=IN_DOUBT,
            send_attempted_at__lt=settle,
            # Evidence for older requests can no longer come (SendGrid retries a failed
            # event post for 24 hours).
            send_attempted_at__gte=now - evidence - timedelta(days=1),
            attempt__isnull=False,
        )
        .values_list("attempt_id", "attempt__started_at")
        .distinct()[: settings.NUDGE_SETTLE_BATCH]
    )
    never_arrived = [a for a, started in overdue.items() if _events_passed(started)]
    resent = Nudge.objects.filter(attempt_id__in=never_arrived, status__in=IN_DOUBT).update(
        status=S.SCHEDULED,
        next_attempt_at=now,
        send_attempted_at=None,
        status_reason="SendGrid's events show it never arrived: sending again",
    )
    held = Nudge.objects.filter(status=S.UNKNOWN, send_attempted_at__lt=settle).update(
        status=S.HELD, status_reason=HELD_REASON
    )
    return {
        "released": released,
        "in_doubt": in_doubt,
        "confirmed": confirmed,
        "resent": resent,
        "held": held,
    }


def _events_passed(started: datetime) -> bool:
    """Did SendGrid's events flow past a request made at ``started``? True when requests
    accepted a margin after it, within the evidence window, have events: the webhook was
    delivering then, so a request with none was never accepted."""
    margin = timedelta(seconds=settings.NUDGE_EVENT_MARGIN_SECONDS)
    window = timedelta(seconds=settings.NUDGE_EVIDENCE_WINDOW_SECONDS)
    later = list(
        SendAttempt.objects.filter(
            outcome=SendAttempt.Outcome.ACCEPTED,
            started_at__gt=started + margin,
            started_at__lt=started + window,
        )
        .order_by("started_at")
        .values_list("id", flat=True)[:20]
    )
    return bool(later) and NudgeEvent.objects.filter(nudge__attempt_id__in=later).exists()
