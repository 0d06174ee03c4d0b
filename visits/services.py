"""Writes on visits, readiness and time. Callers pass objects the user can already see;
these check what the user's side and role allow (PermissionDenied -> 403) and the rules
(ValidationError -> 400)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import Contact, Membership, Partnership, User
from accounts.scoping import scope_for
from accounts.services import link_contacts
from partnership_crm.db import unique_or_invalid

from . import corrections
from .models import FollowUpAction, ReadinessAssessment, ReadinessCheck, TimeEntry, Visit

LIVE = (Visit.Status.PLANNED, Visit.Status.COMPLETED)
ACTIVITY_OF_KIND = {
    Visit.Kind.TECHNICAL_SURVEY: TimeEntry.Activity.PLANNING,
    Visit.Kind.TRAINING: TimeEntry.Activity.TRAINING,
    Visit.Kind.ONSITE_SUPPORT: TimeEntry.Activity.TROUBLESHOOTING,
    Visit.Kind.REVIEW_MEETING: TimeEntry.Activity.MEETING,
}
MAX_VISIT_HOURS = 12


def _require_staff(user: User, supplier_id: int) -> None:
    if scope_for(user).supplier_role(supplier_id) is None:
        raise PermissionDenied("Only the supplier's staff plan and record visits and time.")


def _check_people(partnership: Partnership, attendees: list[User], contacts: list[Contact]) -> None:
    staff: set[int] = set()
    if attendees:  # one query for all of them
        staff = set(
            Membership.objects.filter(
                user__in=attendees, user__is_active=True, organisation_id=partnership.supplier_id
            ).values_list("user_id", flat=True)
        )
    if any(u.pk not in staff for u in attendees):
        raise ValidationError({"attendees": "Attendees must be the supplier's own staff."})
    if any(c.school_id != partnership.school_id for c in contacts):
        raise ValidationError({"contacts": "Contacts must be staff of the school."})


def _check_times(starts_at: datetime, ends_at: datetime) -> None:
    if ends_at <= starts_at:
        raise ValidationError({"ends_at": "A visit ends after it starts."})
    if (ends_at - starts_at).total_seconds() > MAX_VISIT_HOURS * 3600:
        raise ValidationError({"ends_at": f"A visit lasts at most {MAX_VISIT_HOURS} hours."})


def _check_overlaps(
    attendees: list[User], starts_at: datetime, ends_at: datetime, exclude: int | None = None
) -> None:
    """Nobody can be in two places at once. Locking the attendees' rows serialises
    concurrent bookings of the same person, so two overlapping visits cannot both pass."""
    if not attendees:
        return
    list(User.objects.select_for_update().filter(pk__in=[u.pk for u in attendees]).order_by("pk"))
    clashes = (
        Visit.objects.filter(
            attendees__in=attendees, status__in=LIVE, starts_at__lt=ends_at, ends_at__gt=starts_at
        )
        .exclude(pk=exclude)
        .select_related("school")
        .distinct()
    )
    problems = []
    for clash in clashes:
        busy = sorted(str(u) for u in clash.attendees.all() if u in attendees)
        tz = clash.school.zone
        problems.append(
            f"{', '.join(busy)} already at {clash.school.name} "
            f"({clash.starts_at.astimezone(tz):%a %d %b %H:%M}–{clash.ends_at.astimezone(tz):%H:%M})."
        )
    if problems:
        raise ValidationError({"attendees": ["Overlapping visit: " + p for p in problems]})


@transaction.atomic
def visit_create(
    *,
    by: User,
    partnership: Partnership,
    kind: str,
    starts_at: datetime,
    ends_at: datetime,
    attendees: list[User] | None = None,
    contacts: list[Contact] | None = None,
    agenda: str = "",
    notes: str = "",
) -> Visit:
    _require_staff(by, partnership.supplier_id)
    attendees, contacts = attendees or [], contacts or []
    if partnership.stage == "ended":
        raise ValidationError({"partnership": "This partnership has ended."})
    _check_times(starts_at, ends_at)
    _check_people(partnership, attendees, contacts)
    _check_overlaps(attendees, starts_at, ends_at)
    visit = Visit.objects.create(
        partnership=partnership,
        supplier_id=partnership.supplier_id,
        school_id=partnership.school_id,
        kind=kind,
        starts_at=starts_at,
        ends_at=ends_at,
        agenda=agenda,
        notes=notes,
        created_by=by,
    )
    visit.attendees.set(attendees)
    visit.contacts.set(contacts)
    link_contacts(partnership, contacts, by)
    if kind == Visit.Kind.TECHNICAL_SURVEY:
        ReadinessAssessment.objects.create(visit=visit)
    return visit


@transaction.atomic
def visit_update(
    *,
    visit: Visit,
    by: User,
    attendees: list[User] | None = None,
    contacts: list[Contact] | None = None,
    **data: Any,
) -> Visit:
    _require_staff(by, visit.supplier_id)
    visit = Visit.objects.select_for_update().get(pk=visit.pk)
    moves = {"starts_at", "ends_at"} & set(data) or attendees is not None
    if moves and visit.status != Visit.Status.PLANNED:
        raise ValidationError({"status": "Only a planned visit can be rescheduled or restaffed."})
    if "kind" in data and data["kind"] != visit.kind:
        raise ValidationError({"kind": "Plan a new visit instead of changing its kind."})
    starts_at = data.get("starts_at", visit.starts_at)
    ends_at = data.get("ends_at", visit.ends_at)
    _check_times(starts_at, ends_at)
    people = attendees if attendees is not None else list(visit.attendees.all())
    _check_people(visit.partnership, people, contacts or [])
    if moves:
        _check_overlaps(people, starts_at, ends_at, exclude=visit.pk)
    for name in ("starts_at", "ends_at", "agenda", "notes"):
        if name in data:
            setattr(visit, name, data[name])
    visit.sequence += 1
    visit.save()
    if attendees is not None:
        visit.attendees.set(attendees)
    if contacts is not None:
        visit.contacts.set(contacts)
        link_contacts(visit.partnership, contacts, by)
    return visit


@transaction.atomic
def visit_complete(
    *,
    visit: Visit,
    by: User,
    notes: str = "",
    record_time: bool = True,
    minutes: int | None = None,
) -> Visit:
    """Mark a visit done and, by default, record its on-site time (the visit's length,
    once per visit however many people went: the school's hours of support)."""
    _require_staff(by, visit.supplier_id)
    visit = Visit.objects.select_for_update().select_related("school").get(pk=visit.pk)
    if visit.status != Visit.Status.PLANNED:
        raise ValidationError(
            {"status": f"This visit is already {visit.get_status_display().lower()}."}
        )
    now = timezone.now()
    if visit.starts_at > now:
        raise ValidationError({"status": "A visit can be completed once it has started."})
    visit.status = Visit.Status.COMPLETED
    visit.completed_at = now
    if notes:
        visit.notes = notes.strip()
    visit.sequence += 1
    visit.save(update_fields=["status", "completed_at", "notes", "sequence", "updated_at"])
    if record_time:
        attendees = list(visit.attendees.all())
        worker = by if by in attendees or not attendees else attendees[0]
        local_day = visit.starts_at.astimezone(visit.school.zone).date()
        entry = TimeEntry(
            partnership_id=visit.partnership_id,
            supplier_id=visit.supplier_id,
            school_id=visit.school_id,
            visit=visit,
            user=worker,
            date=local_day,
            minutes=minutes or visit.duration_minutes,
            mode=TimeEntry.Mode.ON_SITE,
            activity=ACTIVITY_OF_KIND[visit.kind],
            notes=f"{visit.get_kind_display()} visit",
        )
        entry.full_clean()
        entry.save()
    return visit


@transaction.atomic
def visit_cancel(*, visit: Visit, by: User, reason: str, no_show: bool = False) -> Visit:
    _require_staff(by, visit.supplier_id)
    visit = Visit.objects.select_for_update().get(pk=visit.pk)
    reason = reason.strip()
    if not reason:
        raise ValidationError({"reason": "Say why (the school lead sees it)."})
    if visit.status != Visit.Status.PLANNED:
        raise ValidationError(
            {"status": f"This visit is already {visit.get_status_display().lower()}."}
        )
    if no_show and visit.starts_at > timezone.now():
        raise ValidationError({"status": "A visit becomes a no-show only once it was due."})
    visit.status = Visit.Status.NO_SHOW if no_show else Visit.Status.CANCELLED
    visit.status_reason = reason
    visit.sequence += 1
    visit.save(update_fields=["status", "status_reason", "sequence", "updated_at"])
    return visit


# --- Readiness ---------------------------------------------------------------------------


@transaction.atomic
def assessment_save(
    *,
    visit: Visit,
    by: User,
    outcome: str = "",
    summary: str = "",
    checks: list[dict[str, str]] | None = None,
    actions: list[dict[str, Any]] | None = None,
) -> ReadinessAssessment:
    """Record the survey's checklist, outcome and follow-up actions. Checks are given per
    area and replace that area's earlier result; actions given here are added."""
    _require_staff(by, visit.supplier_id)
    if visit.kind != Visit.Kind.TECHNICAL_SURVEY:
        raise ValidationError({"visit": "Only a technical survey has a readiness assessment."})
    assessment, _ = ReadinessAssessment.objects.select_for_update().get_or_create(visit=visit)
    areas = [c["area"] for c in checks or []]
    if len(areas) != len(set(areas)):
        raise ValidationError({"checks": "Give each area once."})
    for check in checks or []:
        ReadinessCheck.objects.update_or_create(
            assessment=assessment,
            area=check["area"],
            defaults={"result": check["result"], "notes": check.get("notes", "")},
        )
    for action in actions or []:
        FollowUpAction.objects.create(assessment=assessment, **action)
    results = set(assessment.checks.values_list("result", flat=True))
    if outcome == ReadinessAssessment.Outcome.READY and ReadinessCheck.Result.FAIL in results:
        raise ValidationError(
            {"outcome": "An area failed: the school is not ready, or ready with conditions."}
        )
    if (
        outcome == ReadinessAssessment.Outcome.READY_WITH_CONDITIONS
        and not assessment.actions.exists()
    ):
        raise ValidationError(
            {"outcome": "Ready with conditions needs the conditions: add follow-up actions."}
        )
    assessment.outcome = outcome
    assessment.summary = summary.strip()
    assessment.assessed_by = by
    assessment.save()
    return assessment


def follow_up_set_done(*, action: FollowUpAction, by: User, done: bool) -> FollowUpAction:
    """Either side may tick off an action: the owner does the work, the other checks it.
    Teachers and trust leads only read."""
    visit = action.assessment.visit
    s = scope_for(by)
    if s.supplier_role(visit.supplier_id) is None and not s.leads_school(visit.school_id):
        raise PermissionDenied("Only the supplier's staff or the school's lead update actions.")
    action.done_at = timezone.now() if done else None
    action.done_by = by if done else None
    action.save(update_fields=["done_at", "done_by"])
    return action


def is_ready_for_pilot(partnership: Partnership) -> bool:
    """The pilot gate (registered with accounts.stages): a completed technical survey
    whose outcome is ready or ready with conditions."""
    return Visit.objects.filter(
        partnership_id=partnership.pk,
        kind=Visit.Kind.TECHNICAL_SURVEY,
        status=Visit.Status.COMPLETED,
        assessment__outcome__in=[
            ReadinessAssessment.Outcome.READY,
            ReadinessAssessment.Outcome.READY_WITH_CONDITIONS,
        ],
    ).exists()


# --- Time ----------------------------------------------------------------------------------


def _check_entry_links(entry_partnership: Partnership, visit: Visit | None, ticket: Any) -> None:
    if visit is not None and visit.partnership_id != entry_partnership.pk:
        raise ValidationError({"visit": "That visit belongs to another partnership."})
    if ticket is not None and ticket.partnership_id != entry_partnership.pk:
        raise ValidationError({"ticket": "That ticket belongs to another partnership."})


@transaction.atomic
def time_entry_create(*, by: User, partnership: Partnership, **fields: Any) -> TimeEntry:
    _require_staff(by, partnership.supplier_id)
    _check_entry_links(partnership, fields.get("visit"), fields.get("ticket"))
    entry = TimeEntry(
        partnership=partnership,
        supplier_id=partnership.supplier_id,
        school_id=partnership.school_id,
        user=by,
        **fields,
    )
    entry.full_clean()
    try:
        with transaction.atomic():
            entry.save()
    except IntegrityError as exc:
        raise ValidationError({"visit": "This visit already has its on-site time entry."}) from exc
    return entry


@transaction.atomic
def time_entry_update(*, entry: TimeEntry, by: User, reason: str = "", **data: Any) -> TimeEntry:
    """A completed visit's on-site time changes only with a ``reason`` (visits.corrections)."""
    _require_staff(by, entry.supplier_id)
    before = corrections.evidence_before(entry)
    for name, value in data.items():
        setattr(entry, name, value)
    _check_entry_links(entry.partnership, entry.visit, entry.ticket)
    entry.full_clean()
    if before is not None:
        corrections.correction_record(before=before, after=entry, by=by, reason=reason)
    # Two edits pointing on-site entries at one visit at once both pass full_clean; the
    # second breaks the constraint on write.
    with unique_or_invalid(
        one_onsite_entry_per_visit=("visit", "This visit already has its on-site time entry.")
    ):
        entry.save()
    return entry


@transaction.atomic
def time_entry_delete(*, entry: TimeEntry, by: User, reason: str = "") -> None:
    """A completed visit's on-site entry is deleted only with a ``reason``, recorded."""
    _require_staff(by, entry.supplier_id)
    before = corrections.evidence_before(entry)
    if before is not None:
        corrections.correction_record(before=before, after=None, by=by, reason=reason)
    entry.delete()
