"""Turn rules into nudge rows. Each row is unique per (rule, contact, occurrence), so the
planner can run as often as it likes: it never duplicates, it only fills in what is new.

Occurrences (keys in brackets):
- cadence: every N school weeks (weeks with at least one working day at the school),
  counted from the rule's first week; due when the school's send window opens on the
  first working day of the week [cadence:<ISO year>-W<week>];
- phase_starts / phase_ends: N days before a trial phase starts / ends [phase_starts:<id>];
- after_visit: N days after a completed visit, to the school staff who were there [visit:<id>];
- ticket_resolved: N days (default 0) after a ticket is resolved, to the person who raised
  it, asking for a rating, unless they already rated [ticket:<id>];
- no_contact: N days after this supplier last nudged the contact (or since the rule
  began) [no_contact:<date>].
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import date, datetime, time, timedelta

from django.conf import settings
from django.db.models import Max, QuerySet
from django.utils import timezone

from accounts.calendars import calendars_for_schools
from accounts.models import Contact, Partnership, PartnershipContact, TrialPhase
from accounts.working_time import WorkingCalendar
from tickets.models import Ticket
from visits.models import Visit

from .models import Nudge, NudgeRule

LIVE = ["enquiry", "technical_review", "pilot", "expansion", "whole_school", "renewal"]


def _partnerships(rule: NudgeRule) -> QuerySet[Partnership]:
    if rule.partnership_id:
        return Partnership.objects.filter(pk=rule.partnership_id, stage__in=LIVE)
    stages = [s for s in rule.stages.split(",") if s] or LIVE
    return Partnership.objects.filter(
        supplier_id=rule.supplier_id, stage__in=[s for s in stages if s in LIVE]
    )


def _window_opening(cal: WorkingCalendar, day: date, opens: time) -> datetime:
    return datetime.combine(day, opens, tzinfo=cal.tz)


class _Audience:
    """Linked contacts per partnership, with the rule's filters; a few queries per rule."""

    def __init__(self, rule: NudgeRule, partnership_ids: list[int], today: date) -> None:
        self.linked: dict[int, list[Contact]] = defaultdict(list)
        for link in PartnershipContact.objects.filter(
            partnership_id__in=partnership_ids
        ).select_related("contact"):
            self.linked[link.partnership_id].append(link.contact)
        self.tags = [t for t in rule.audience_tags.split(",") if t]
        self.named = set(rule.audience_contacts.values_list("id", flat=True))
        self.cohort: dict[int, set[int]] = defaultdict(set)
        if rule.audience_cohort:
            through = TrialPhase.cohort.through.objects.filter(
                trialphase__partnership_id__in=partnership_ids,
                trialphase__start_date__lte=today
                + timedelta(days=settings.NUDGE_PLAN_HORIZON_DAYS),
                trialphase__end_date__gte=today,
            ).values_list("trialphase__partnership_id", "contact_id")
            for pid, cid in through:
                self.cohort[pid].add(cid)
        self.rule = rule

    def for_partnership(self, pid: int) -> list[Contact]:
        chosen = []
        for c in self.linked.get(pid, []):
            if (
                any(f",{t}," in c.tags for t in self.tags)
                or c.pk in self.named
                or c.pk in self.cohort.get(pid, set())
            ):
                chosen.append(c)
        return chosen


def plan(*, now: datetime | None = None, rules: Iterable[NudgeRule] | None = None) -> int:
    """Create the nudges due within the planning horizon. Returns how many were new."""
    now = now or timezone.now()
    horizon = now + timedelta(days=settings.NUDGE_PLAN_HORIZON_DAYS)
    if rules is None:
        rules = NudgeRule.objects.filter(is_active=True, template__is_active=True).select_related(
            "template"
        )
    created = 0
    calendars: dict[int, WorkingCalendar] = {}  # read once per school for the whole run
    for rule in rules:
        rows = _plan_rule(rule, now, horizon, calendars)
        if rows:
            before = Nudge.objects.filter(rule=rule).count()
            Nudge.objects.bulk_create(rows, ignore_conflicts=True, batch_size=500)
            created += Nudge.objects.filter(rule=rule).count() - before
    return created


def preview(rule: NudgeRule, *, now: datetime | None = None) -> list[Nudge]:
    """What the planner would create for this rule (unsaved), soonest first."""
    now = now or timezone.now()
    rows = _plan_rule(rule, now, now + timedelta(days=settings.NUDGE_PLAN_HORIZON_DAYS))
    existing = (
        set(Nudge.objects.filter(rule=rule).values_list("contact_id", "occurrence"))
        if rule.pk
        else set()
    )
    return sorted(
        (r for r in rows if (r.contact_id, r.occurrence) not in existing),
        key=lambda r: (r.due_at, r.contact_id),
    )


def _plan_rule(
    rule: NudgeRule,
    now: datetime,
    horizon: datetime,
    calendars: dict[int, WorkingCalendar] | None = None,
) -> list[Nudge]:
    """The rule's nudges due by ``horizon``. ``calendars`` (by school) is filled in as
    needed and may be shared by the rules of one run."""
    partnerships = list(_partnerships(rule).select_related("school"))
    if not partnerships:
        return []
    ids = [p.pk for p in partnerships]
    today = timezone.localdate(now)
    calendars = {} if calendars is None else calendars
    missing = {p.school_id for p in partnerships} - calendars.keys()
    if missing:
        calendars.update(calendars_for_schools(missing))
    audience = _Audience(rule, ids, today)
    rows: list[Nudge] = []

    def add(p: Partnership, contact: Contact, occurrence: str, due: datetime) -> None:
        if due > horizon:
            return
        due = max(due, now) if due < now - timedelta(days=1) else due
        rows.append(
            Nudge(
                supplier_id=p.supplier_id,
                school_id=p.school_id,
                partnership=p,
                contact=contact,
                rule=rule,
                template=rule.template,
                occurrence=occurrence,
                due_at=due,
                next_attempt_at=due,
            )
        )

    T = NudgeRule.Trigger
    days = rule.days or 0
    if rule.trigger == T.CADENCE:
        every = max(rule.every_n_school_weeks or 1, 1)
        for p in partnerships:
            school, cal = p.school, calendars[p.school_id]
            for due, key in _cadence(
                cal, school.send_window_starts, rule.created_at, now, horizon, every
            ):
                for c in audience.for_partnership(p.pk):
                    add(p, c, key, due)
    elif rule.trigger in (T.PHASE_STARTS, T.PHASE_ENDS):
        attr = "start_date" if rule.trigger == T.PHASE_STARTS else "end_date"
        window = (today, (horizon + timedelta(days=days)).date())
        phases = TrialPhase.objects.filter(partnership_id__in=ids, **{f"{attr}__range": window})
        by_p = {p.pk: p for p in partnerships}
        for phase in phases:
            p = by_p[phase.partnership_id]
            day = getattr(phase, attr) - timedelta(days=days)
            due = _window_opening(calendars[p.school_id], day, p.school.send_window_starts)
            if due < now - timedelta(days=1):
                continue  # that moment has passed
            for c in audience.for_partnership(p.pk):
                add(p, c, f"{rule.trigger}:{phase.pk}", due)
    elif rule.trigger == T.AFTER_VISIT:
        since = now - timedelta(days=days + 7)
        visits = Visit.objects.filter(
            partnership_id__in=ids, status="completed", ends_at__gte=since
        ).prefetch_related("contacts")
        by_p = {p.pk: p for p in partnerships}
        for v in visits:
            p = by_p[v.partnership_id]
            due = v.ends_at + timedelta(days=days)
            wanted = {c.pk for c in audience.for_partnership(p.pk)}
            for c in v.contacts.all():
                if not wanted or c.pk in wanted:
                    add(p, c, f"visit:{v.pk}", due)
    elif rule.trigger == T.TICKET_RESOLVED:
        tickets = Ticket.objects.filter(
            partnership_id__in=ids,
            resolved_at__gte=now - timedelta(days=days + 7),
            rating__isnull=True,
            status__in=["resolved", "closed"],
        )
        raisers = {(t.school_id, t.raised_by_id) for t in tickets}
        contacts = {
            (c.school_id, c.user_id): c
            for c in Contact.objects.filter(
                user_id__in={u for _, u in raisers}, school_id__in={s for s, _ in raisers}
            )
        }
        by_p = {p.pk: p for p in partnerships}
        for t in tickets:
            contact = contacts.get((t.school_id, t.raised_by_id))
            if contact is not None:
                add(
                    by_p[t.partnership_id],
                    contact,
                    f"ticket:{t.pk}",
                    t.resolved_at + timedelta(days=days),
                )
    elif rule.trigger == T.NO_CONTACT:
        last = dict(
            Nudge.objects.filter(
                supplier_id=rule.supplier_id, status="sent", partnership_id__in=ids
            )
            .values_list("contact_id")
            .annotate(m=Max("sent_at"))
        )
        for p in partnerships:
            for c in audience.for_partnership(p.pk):
                since = last.get(c.pk) or rule.created_at
                add(p, c, f"no_contact:{since.date().isoformat()}", since + timedelta(days=days))
    return rows


def _cadence(
    cal: WorkingCalendar, opens: time, start: datetime, now: datetime, horizon: datetime, every: int
) -> list[tuple[datetime, str]]:
    """(due, key) for each N-th school week from the rule's first week, within the horizon."""
    tz = cal.tz
    first_monday = start.astimezone(tz).date() - timedelta(days=start.astimezone(tz).weekday())
    out = []
    school_week = 0
    monday = first_monday
    end = horizon.astimezone(tz).date()
    while monday <= end:
        working = [
            monday + timedelta(d) for d in range(5) if cal.is_working_day(monday + timedelta(d))
        ]
        if working:
            if school_week % every == 0:
                # The rule's first week counts from the moment the rule was made.
                due = max(datetime.combine(working[0], opens, tzinfo=tz), start)
                year, week, _ = monday.isocalendar()
                if due >= now - timedelta(days=1):
                    out.append((due, f"cadence:{year}-W{week:02d}"))
            school_week += 1
        monday += timedelta(days=7)
    return out
