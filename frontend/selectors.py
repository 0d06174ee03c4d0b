"""Reads behind the pages. Rows come only through each model's ``visible_to(user)``, and
each function runs a fixed number of queries however many rows it reads (aggregates and
``IN`` look-ups, never a query per row)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from django.db.models import Count, Max, Q
from django.utils import timezone

from accounts.models import Partnership, Stage, TrialPhase
from accounts.scoping import scope_for
from nudges.models import Nudge, NudgeReply
from tickets.models import Ticket
from visits.models import TimeEntry, Visit

# --- The account manager's portfolio -------------------------------------------------------


def supplier_partnerships(user: Any) -> Any:
    """The partnerships of the user's own supplier(s), by school name: the pages a
    supplier's staff work in (a school user's visible partnerships are not theirs to run)."""
    return (
        Partnership.objects.visible_to(user)
        .filter(supplier_id__in=scope_for(user).supplier_ids)
        .select_related("school", "supplier")
        .order_by("school__name", "id")
    )


def portfolio_partnerships(user: Any, *, mine: bool, include_ended: bool) -> Any:
    """The supplier's partnerships the user sees (optionally only those they manage)."""
    qs = supplier_partnerships(user).select_related("account_manager")
    if mine:
        qs = qs.filter(account_manager=user)
    if not include_ended:
        qs = qs.exclude(stage=Stage.ENDED)
    return qs


# --- A partnership's timeline ----------------------------------------------------------------

TIMELINE_LIMIT = 60  # per kind of event, newest first: the page stays bounded


@dataclass
class Event:
    at: datetime
    kind: str
    title: str
    detail: str = ""
    url: str = ""
    badge: str = ""
    date_only: bool = False
    tags: list[str] = field(default_factory=list)
    action_url: str = ""  # a POST the supplier's managers may make from the event
    action_label: str = ""


def _day_start(d: date, tz: ZoneInfo) -> datetime:
    return datetime.combine(d, time(0, 0), tzinfo=tz)


def partnership_timeline(partnership: Partnership, *, user: Any) -> list[Event]:
    """Stage changes (with overrides), visits and readiness, trial phases and decisions,
    tickets, time entries, nudges, and value reviews opened and decided, newest first."""
    from django.urls import reverse

    tz = partnership.school.zone
    events: list[Event] = []
    n = TIMELINE_LIMIT

    for change in partnership.stage_changes.select_related("by").order_by("-at", "-id")[:n]:
        frm = change.get_from_stage_display() if change.from_stage else "—"
        title = (
            f"Stage: {frm} → {change.get_to_stage_display()}"
            if change.from_stage
            else f"Partnership opened at {change.get_to_stage_display()}"
        )
        events.append(
            Event(
                at=change.at,
                kind="stage",
                title=title,
                detail=(f"Override: {change.reason}" if change.is_override else change.reason),
                badge="override" if change.is_override else "",
                tags=[str(change.by)] if change.by else [],
            )
        )

    visits = (
        Visit.objects.visible_to(user)
        .filter(partnership=partnership)
        .select_related("assessment")
        .order_by("-starts_at")[:n]
    )
    for v in visits:
        detail = v.status_reason or v.notes or v.agenda
        badge = v.get_status_display()
        assessment = getattr(v, "assessment", None)
        if assessment is not None and assessment.outcome:
            detail = f"Readiness: {assessment.get_outcome_display()}. {assessment.summary}".strip()
        events.append(
            Event(
                at=v.starts_at,
                kind="visit",
                title=f"{v.get_kind_display()} visit",
                detail=detail,
                badge=badge,
                url=f"{reverse('visits')}?week={timezone.localdate(v.starts_at):%Y-%m-%d}",
            )
        )

    phases = TrialPhase.objects.visible_to(user).filter(partnership=partnership)
    for phase in phases.select_related("decided_by").order_by("-start_date")[:n]:
        events.append(
            Event(
                at=_day_start(phase.start_date, tz),
                kind="phase",
                title=f"{phase.get_kind_display()} phase: {phase.start_date:%-d %b %Y} to "
                f"{phase.end_date:%-d %b %Y}",
                detail=phase.intent,
                date_only=True,
            )
        )
        if phase.decision and phase.decided_at:
            events.append(
                Event(
                    at=phase.decided_at,
                    kind="decision",
                    title=f"Decision on the {phase.get_kind_display().lower()} phase: "
                    f"{phase.get_decision_display()}",
                    detail=phase.decision_notes,
                    tags=[str(phase.decided_by)] if phase.decided_by else [],
                )
            )

    tickets = (
        Ticket.objects.visible_to(user)
        .filter(partnership=partnership)
        .select_related("raised_by")
        .order_by("-created_at")[:n]
    )
    for t in tickets:
        url = reverse("ticket", args=[t.pk])
        events.append(
            Event(
                at=t.created_at,
                kind="ticket",
                title=f"Ticket #{t.pk} raised: {t.subject}",
                detail=f"{t.get_category_display()}, by {t.raised_by}",
                badge=t.get_status_display(),
                url=url,
            )
        )
        if t.resolved_at:
            events.append(
                Event(
                    at=t.resolved_at,
                    kind="ticket",
                    title=f"Ticket #{t.pk} resolved: {t.get_outcome_display()}",
                    detail=t.outcome_reason,
                    url=url,
                )
            )

    entries = (
        TimeEntry.objects.visible_to(user)
        .filter(partnership=partnership)
        .select_related("user")
        .order_by("-date", "-id")[:n]
    )
    for e in entries:
        events.append(
            Event(
                at=_day_start(e.date, tz),
                kind="time",
                title=f"{e.minutes} min {e.get_mode_display().lower()}: "
                f"{e.get_activity_display().lower()}",
                detail=e.notes,
                tags=[str(e.user)],
                date_only=True,
            )
        )

    nudges = (
        Nudge.objects.visible_to(user)
        .filter(partnership=partnership)
        .select_related("contact", "template")
        .order_by("-due_at")[:n]
    )
    for nudge in nudges:
        events.append(
            Event(
                at=nudge.sent_at or nudge.due_at,
                kind="nudge",
                title=f"Nudge to {nudge.contact}",
                detail=nudge.rendered_subject
                or nudge.subject
                or (f"Template: {nudge.template.name}" if nudge.template else ""),
                badge=nudge.get_status_display(),
            )
        )
    replies = (
        NudgeReply.objects.visible_to(user)
        .filter(partnership=partnership)
        .select_related("contact", "stopped_rule")
        .order_by("-received_at")[:n]
    )
    for r in replies:
        stopping = r.is_stopping
        events.append(
            Event(
                at=r.received_at,
                kind="reply",
                title=f"{r.contact} {'auto-replied' if r.is_auto else 'replied'} to a nudge",
                detail=r.body,
                badge="auto-reply"
                if r.is_auto
                else (f"stopped: {r.stopped_rule.name}" if stopping else "email"),
                action_url=reverse("nudge-reply-resume", args=[partnership.pk, r.pk])
                if stopping
                else "",
                action_label=f"Resume “{r.stopped_rule.name}” for {r.contact}" if stopping else "",
            )
        )
    from renewals.models import ValueReview

    reviews = (
        ValueReview.objects.visible_to(user)
        .filter(partnership=partnership)
        .select_related("term", "opened_by", "decided_by")
        .order_by("-opened_at")[:n]
    )
    for review in reviews:
        url = reverse("renewals-review", args=[review.pk])
        term = review.term
        events.append(
            Event(
                at=review.opened_at,
                kind="review",
                title="Value review opened",
                detail=f"Term {term.number}: {term.starts_on:%-d %b %Y} to "
                f"{term.ends_on:%-d %b %Y}; notice by {term.notice_on:%-d %b %Y}. "
                f"{review.get_opened_how_display()}.",
                tags=[str(review.opened_by)] if review.opened_by else [],
                url=url,
            )
        )
        if review.decided_at:
            detail = review.decision_reason
            if review.changes_agreed:
                detail += f"\nChanges agreed: {review.changes_agreed}"
            events.append(
                Event(
                    at=review.decided_at,
                    kind="decision",
                    title=f"Renewal decided: {review.get_decision_display()} — "
                    f"{review.decision_reason}",
                    detail=detail if review.changes_agreed else "",
                    tags=[str(review.decided_by)] if review.decided_by else [],
                    url=url,
                )
            )
    events.sort(key=lambda e: e.at, reverse=True)
    return events


# --- Who contacts whom at a school (the school lead's controls) ------------------------------


@dataclass
class ContactCell:
    supplier: Any
    linked: bool = False
    sent: int = 0
    scheduled: int = 0
    last_sent: datetime | None = None
    stop: Any = None  # this supplier stopped (an OptOut)

    @property
    def contacted(self) -> bool:
        return self.linked or self.sent or self.scheduled


@dataclass
class ContactRow:
    contact: Any
    cells: list[ContactCell]
    stopped_everyone: Any = None  # an OptOut from every supplier


def contact_matrix(user: Any, school_id: int) -> tuple[list[Any], list[ContactRow]]:
    """Staff × suppliers at one school: linked to the partnership, nudges sent and
    scheduled, and stops. Five queries, through each model's visible_to (the links
    through the visible partnerships)."""
    from accounts.models import Contact, PartnershipContact
    from nudges.models import OptOut

    partnerships = (
        Partnership.objects.visible_to(user)
        .filter(school_id=school_id)
        .select_related("supplier")
        .order_by("supplier__name", "id")
    )
    suppliers: dict[int, Any] = {}
    for p in partnerships:
        suppliers.setdefault(p.supplier_id, p.supplier)
    contacts = list(
        Contact.objects.visible_to(user)
        .filter(school_id=school_id)
        .order_by("last_name", "first_name", "id")
    )
    links = set(
        PartnershipContact.objects.filter(partnership__in=partnerships).values_list(
            "contact_id", "partnership__supplier_id"
        )
    )
    nudges = {
        (r["contact_id"], r["supplier_id"]): r
        for r in Nudge.objects.visible_to(user)
        .filter(school_id=school_id)
        .values("contact_id", "supplier_id")
        .annotate(
            sent=Count("id", filter=Q(status=Nudge.Status.SENT)),
            scheduled=Count("id", filter=Q(status=Nudge.Status.SCHEDULED)),
            last_sent=Max("sent_at"),
        )
    }
    stops: dict[tuple[int, int | None], Any] = {}
    for record in (
        OptOut.objects.visible_to(user)
        .filter(contact__school_id=school_id)
        .select_related("created_by")
    ):
        stops[(record.contact_id, record.supplier_id)] = record
    rows = []
    for c in contacts:
        cells = []
        for sid, supplier in suppliers.items():
            n = nudges.get((c.pk, sid), {})
            cells.append(
                ContactCell(
                    supplier=supplier,
                    linked=(c.pk, sid) in links,
                    sent=n.get("sent", 0),
                    scheduled=n.get("scheduled", 0),
                    last_sent=n.get("last_sent"),
                    stop=stops.get((c.pk, sid)),
                )
            )
        rows.append(ContactRow(contact=c, cells=cells, stopped_everyone=stops.get((c.pk, None))))
    return list(suppliers.values()), rows
