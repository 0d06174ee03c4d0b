"""The account manager's pages: portfolio, a partnership and its timeline, the ticket queue
(answered and moved along in place), the week of visits and the nudge schedule."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any

from django import forms
from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db.models import F, OuterRef, Q, Subquery
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from accounts.calendars import calendar_for_school
from accounts.models import (
    Contact,
    ContactProposal,
    Partnership,
    PartnershipContact,
    Stage,
    StakeholderTag,
    SupplierContactNote,
    User,
)
from accounts.scoping import scope_for
from accounts.services import (
    contact_note_create,
    contact_note_delete,
    contact_note_update,
    contact_proposal_create,
    partnership_transition,
)
from accounts.stages import allowed_next as stage_allowed_next
from nudges import replies as nudge_replies
from nudges import templating
from nudges.checks import webhook_missing
from nudges.context import values_for
from nudges.dispatch import render_nudge
from nudges.models import Nudge, NudgeReply, NudgeTemplate
from nudges.services import held_drop, held_resend, nudge_cancel
from renewals.models import AgreementTerm
from reports.portfolio import portfolio as portfolio_figures
from tickets import services as ticket_services
from tickets import sla
from tickets.filters import breached_q
from tickets.models import Ticket, TicketEvent, TicketMessage
from tickets.transitions import allowed_next as ticket_allowed_next
from visits.hours import onsite_summary
from visits.models import Visit
from visits.services import visit_cancel, visit_complete, visit_create

from ..forms import (
    CancelVisitForm,
    CompleteVisitForm,
    MoveForm,
    PlanVisitForm,
    QueueFilterForm,
    ReplyForm,
    StageForm,
    TemplatePreviewForm,
    TriageForm,
    add_service_errors,
)
from ..roles import SUPPLIER, get_visible, role_required
from ..selectors import partnership_timeline, portfolio_partnerships, supplier_partnerships
from .common import FORM_ERROR, is_htmx, page_or_partial
from .phases import phase_rows

PORTFOLIO_PAGE = 50
QUEUE_PAGE = 25


# --- Portfolio ------------------------------------------------------------------------------


@role_required(SUPPLIER)
@require_GET
def portfolio(request: HttpRequest) -> HttpResponse:
    s = scope_for(request.user)
    is_manager = any(r == "account_manager" for r in s.supplier_roles.values())
    mine = request.GET.get("mine", "1" if is_manager else "0") == "1"
    include_ended = request.GET.get("ended") == "1"
    sort = "renewal" if request.GET.get("sort") == "renewal" else ""
    partnerships = _with_renewal(
        portfolio_partnerships(request.user, mine=mine, include_ended=include_ended),
        request.user,
    )
    if sort:  # the soonest notice date first; no term last
        partnerships = partnerships.order_by(
            F("renewal_notice_on").asc(nulls_last=True), "school__name", "id"
        )
    page = Paginator(partnerships, PORTFOLIO_PAGE).get_page(request.GET.get("page"))
    rows = portfolio_figures(page.object_list, user=request.user)  # the API's figures
    today = timezone.localdate()
    due_by = today + timedelta(weeks=settings.RENEWAL_DUE_WEEKS)
    for row in rows:
        p = row.partnership
        p.renewal_due = bool(
            p.renewal_notice_on and p.renewal_notice_on <= due_by and p.renewal_ends_on >= today
        )
    return render(
        request,
        "frontend/supplier/portfolio.html",
        {
            "rows": rows,
            "page": page,
            "mine": mine,
            "include_ended": include_ended,
            "sort": sort,
            "due_weeks": settings.RENEWAL_DUE_WEEKS,
            "can_renew": any(s.manages_supplier(sid) for sid in s.supplier_ids),
        },
    )


def _with_renewal(partnerships: Any, user: Any) -> Any:
    """Each partnership with its current agreement term's notice and end dates, in the
    same query (renewals.services.due_terms says when it is due)."""
    current = AgreementTerm.objects.visible_to(user).filter(
        partnership=OuterRef("pk"), status=AgreementTerm.Status.CURRENT
    )
    return partnerships.annotate(
        renewal_notice_on=Subquery(current.values("notice_on")[:1]),
        renewal_ends_on=Subquery(current.values("ends_on")[:1]),
    )


# --- A partnership ----------------------------------------------------------------------------


def _partnership_context(request: HttpRequest, p: Partnership, stage_form: Any = None) -> dict:
    allowed = stage_allowed_next(p)
    timeline = partnership_timeline(p, user=request.user)
    now = timezone.now()
    return {
        "p": p,
        "upcoming": [e for e in timeline if e.at > now][::-1],
        "timeline": [e for e in timeline if e.at <= now],
        "onsite": onsite_summary(p, timezone.localdate(), user=request.user),
        "stage_form": stage_form or StageForm(allowed=allowed),
        "can_move": scope_for(request.user).manages_supplier(p.supplier_id) and allowed,
        "can_plan_phase": scope_for(request.user).manages_supplier(p.supplier_id),
        "phases": phase_rows(request.user, p),
        "open_tickets": Ticket.objects.visible_to(request.user)
        .filter(partnership=p)
        .open()
        .count(),
        **_contacts_and_notes(request.user, p),
    }


def _contacts_and_notes(user: Any, p: Partnership) -> dict[str, Any]:
    """The partnership's contacts, each with this supplier's own note (never another's),
    and the people it proposed with the school's answer. Three queries."""
    contacts = list(
        Contact.objects.visible_to(user)
        .filter(partnership_links__partnership=p)
        .order_by("last_name", "first_name", "id")
    )
    notes = {
        n.contact_id: n
        for n in SupplierContactNote.objects.visible_to(user)
        .filter(supplier_id=p.supplier_id, contact__in=contacts)
        .select_related("updated_by")
    }
    for c in contacts:
        c.supplier_note = notes.get(c.pk)
    proposals = list(
        ContactProposal.objects.visible_to(user)
        .filter(partnership=p)
        .order_by("-proposed_at", "-id")[:CONTACT_PROPOSALS_SHOWN]
    )
    return {
        "contacts": contacts,
        "contact_proposals": proposals,
        "can_propose": scope_for(user).manages_supplier(p.supplier_id),
        "propose_form": ProposeContactForm(auto_id="propose_%s"),
    }


class ProposeContactForm(forms.Form):
    """A person the supplier asks the school to make a contact of the partnership."""

    first_name = forms.CharField(max_length=100)
    last_name = forms.CharField(max_length=100, required=False)
    email = forms.EmailField()
    job_title = forms.CharField(max_length=200, required=False)
    tags = forms.MultipleChoiceField(
        choices=StakeholderTag.choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        label="Suggested tags",
    )


@role_required(SUPPLIER)
@require_POST
def contact_propose(request: HttpRequest, pk: int) -> HttpResponse:
    """Propose a contact to the school (accounts.services.contact_proposal_create): the
    same answer whether or not the school holds the address; its lead decides."""
    p = get_visible(
        Partnership.objects.visible_to(request.user).select_related(
            "school", "supplier", "account_manager"
        ),
        pk,
    )
    form = ProposeContactForm(request.POST, auto_id="propose_%s")
    if form.is_valid():
        try:
            contact_proposal_create(by=request.user, partnership=p, **form.cleaned_data)
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            messages.success(
                request, f"Proposed to {p.school.name}: their lead will accept or decline."
            )
            return redirect(f"{reverse('partnership', args=[p.pk])}#contacts-h")
    context = _partnership_context(request, p)
    context["propose_form"] = form
    return render(request, "frontend/supplier/partnership.html", context, status=FORM_ERROR)


CONTACT_PROPOSALS_SHOWN = 20
NOTE_MAX = 10000


@role_required(SUPPLIER)
@require_POST
def contact_note_save(request: HttpRequest, pk: int, contact_pk: int) -> HttpResponse:
    """Write (or, emptied, remove) the supplier's own note on one of the partnership's
    contacts. The school's record of the person is not touched."""
    p = get_visible(Partnership.objects.visible_to(request.user), pk)
    contact = get_visible(
        Contact.objects.visible_to(request.user).filter(partnership_links__partnership=p),
        contact_pk,
    )
    body = request.POST.get("body", "").strip()
    back = f"{reverse('partnership', args=[p.pk])}#contact-{contact.pk}"
    if len(body) > NOTE_MAX:
        messages.error(request, f"Keep the note under {NOTE_MAX} characters.")
        return redirect(back)
    note = (
        SupplierContactNote.objects.visible_to(request.user)
        .filter(supplier_id=p.supplier_id, contact=contact)
        .first()
    )
    try:
        if note is None and body:
            contact_note_create(by=request.user, supplier=p.supplier, contact=contact, body=body)
        elif note is not None and body:
            contact_note_update(note=note, by=request.user, body=body)
        elif note is not None:
            contact_note_delete(note=note, by=request.user)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, f"Your note on {contact} is saved.")
    return redirect(back)


@role_required(SUPPLIER)
@require_GET
def partnership_detail(request: HttpRequest, pk: int) -> HttpResponse:
    p = get_visible(
        Partnership.objects.visible_to(request.user).select_related(
            "school", "supplier", "account_manager"
        ),
        pk,
    )
    return render(request, "frontend/supplier/partnership.html", _partnership_context(request, p))


@role_required(SUPPLIER)
@require_POST
def nudge_reply_resume(request: HttpRequest, pk: int, reply_pk: int) -> HttpResponse:
    """The account manager has answered the person: their rule may nudge them again."""
    reply = get_visible(
        NudgeReply.objects.visible_to(request.user)
        .filter(partnership_id=pk)
        .select_related("contact", "stopped_rule"),
        reply_pk,
    )
    if nudge_replies.resume(reply=reply, by=request.user):
        messages.success(request, f"{reply.contact} will get “{reply.stopped_rule}” again.")
    return redirect("partnership", pk=pk)


@role_required(SUPPLIER)
@require_POST
def partnership_stage(request: HttpRequest, pk: int) -> HttpResponse:
    p = get_visible(
        Partnership.objects.visible_to(request.user).select_related(
            "school", "supplier", "account_manager"
        ),
        pk,
    )
    form = StageForm(request.POST, allowed=stage_allowed_next(p))
    if form.is_valid():
        reason = form.cleaned_data["reason"]
        override = form.cleaned_data["override"]
        try:
            partnership_transition(
                partnership=p,
                to_stage=form.cleaned_data["to_stage"],
                by=request.user,
                reason="" if override else reason,
                override_reason=reason if override else "",
            )
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            messages.success(request, "Stage changed.")
            return redirect("partnership", pk=p.pk)
    return render(
        request,
        "frontend/supplier/partnership.html",
        _partnership_context(request, p, stage_form=form),
        status=FORM_ERROR,
    )


# --- The ticket queue -------------------------------------------------------------------------


def _queue(request: HttpRequest) -> dict[str, Any]:
    """The filtered, paginated queue: a fixed number of queries whatever the page holds."""
    s = scope_for(request.user)
    partnerships = list(supplier_partnerships(request.user))
    form = QueueFilterForm(request.GET or None, partnerships=partnerships, auto_id="filter_%s")
    tickets = (
        Ticket.objects.visible_to(request.user)
        .filter(supplier_id__in=s.supplier_ids)
        .select_related("school", "raised_by", "assignee")
    )
    data = form.cleaned_data if form.is_valid() else {"status": "open"}
    status = data.get("status") if request.GET else "open"
    if status == "open":
        tickets = tickets.open()
    elif status:
        tickets = tickets.filter(status=status)
    if data.get("partnership"):
        tickets = tickets.filter(partnership_id=data["partnership"])
    for name in ("priority", "category"):
        if data.get(name):
            tickets = tickets.filter(**{name: data[name]})
    if data.get("assignee") == "me":
        tickets = tickets.filter(assignee=request.user)
    elif data.get("assignee") == "none":
        tickets = tickets.filter(assignee__isnull=True)
    now = timezone.now()
    if data.get("breached"):
        tickets = tickets.filter(breached_q(now))
    for word in (data.get("q") or "").split():
        tickets = tickets.filter(search_document__icontains=word)
    page = Paginator(tickets.order_by("-created_at", "-id"), QUEUE_PAGE).get_page(
        request.GET.get("page")
    )
    rows = [(t, sla.view(t, now)) for t in page.object_list]
    return {"filter_form": form, "page": page, "rows": rows, "query": request.GET.urlencode()}


def _staff(ticket: Ticket) -> list[User]:
    """Who a ticket may be assigned to: the active staff of its supplier (the rule
    ``tickets.services.ticket_update`` enforces), and whoever has it now even if they have
    since left, so that saving a new priority does not quietly unassign it."""
    return list(
        User.objects.filter(
            Q(is_active=True, memberships__organisation_id=ticket.supplier_id)
            | Q(pk=ticket.assignee_id)
        )
        .distinct()
        .order_by("full_name", "email")
    )


def _triage_initial(ticket: Ticket) -> dict[str, Any]:
    return {
        "priority": ticket.priority,
        "category": ticket.category,
        "assignee": ticket.assignee_id,
    }


def _ticket_context(
    request: HttpRequest,
    ticket: Ticket,
    reply_form: ReplyForm | None = None,
    move_form: MoveForm | None = None,
    triage_form: TriageForm | None = None,
) -> dict[str, Any]:
    allowed = ticket_allowed_next(ticket.status, supplier_side=True)
    cal = calendar_for_school(ticket.school)
    triage = triage_form or TriageForm(staff=_staff(ticket), initial=_triage_initial(ticket))
    return {
        "triage_form": triage,
        "ticket": ticket,
        "sla": sla.view(ticket, timezone.now(), cal),
        "thread": TicketMessage.objects.visible_to(request.user)
        .filter(ticket=ticket)
        .select_related("author")
        .with_attachments(request.user),
        "events": TicketEvent.objects.filter(ticket=ticket).select_related("by"),
        "reply_form": reply_form or ReplyForm(),
        "move_form": move_form or MoveForm(allowed=allowed),
        "can_move": bool(allowed),
        "query": request.GET.urlencode(),
        "supplier_ids": scope_for(request.user).supplier_ids,
    }


def _get_ticket(request: HttpRequest, pk: int) -> Ticket:
    s = scope_for(request.user)
    return get_visible(
        Ticket.objects.visible_to(request.user)
        .filter(supplier_id__in=s.supplier_ids)
        .select_related("school", "supplier", "partnership", "raised_by", "assignee", "product")
        .with_attachments(request.user),
        pk,
    )


@role_required(SUPPLIER)
@require_GET
def queue(request: HttpRequest) -> HttpResponse:
    context = _queue(request)
    if is_htmx(request) and request.htmx.target == "queue-list":
        return render(request, "frontend/supplier/_queue_list.html", context)
    return render(request, "frontend/supplier/queue.html", context)


@role_required(SUPPLIER)
@require_GET
def ticket_detail(request: HttpRequest, pk: int) -> HttpResponse:
    ticket = _get_ticket(request, pk)
    context = _ticket_context(request, ticket)
    if is_htmx(request):
        return render(request, "frontend/supplier/_ticket_panel.html", context)
    return render(request, "frontend/supplier/queue.html", {**_queue(request), **context})


def _after_ticket_write(
    request: HttpRequest, pk: int, note: str, status: int = 200, **forms: Any
) -> HttpResponse:
    ticket = _get_ticket(request, pk)
    context = _ticket_context(request, ticket, **forms)
    if is_htmx(request):
        context["oob_row"] = (ticket, sla.view(ticket, timezone.now()))
        context["notice"] = note if status == 200 else ""
        return render(request, "frontend/supplier/_ticket_panel.html", context, status=status)
    if status == 200:
        messages.success(request, note)
        url = reverse("ticket", args=[pk])
        query = request.GET.urlencode()
        return redirect(f"{url}?{query}" if query else url)
    return render(
        request, "frontend/supplier/queue.html", {**_queue(request), **context}, status=status
    )


@role_required(SUPPLIER)
@require_POST
def ticket_reply(request: HttpRequest, pk: int) -> HttpResponse:
    ticket = _get_ticket(request, pk)
    form = ReplyForm(request.POST, request.FILES)
    if form.is_valid():
        internal = form.cleaned_data["visibility"] == "internal"
        try:
            ticket_services.ticket_post_message(
                ticket=ticket,
                by=request.user,
                body=form.cleaned_data["body"],
                is_internal=internal,
                attachments=form.cleaned_data["files"],
            )
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            note = "Internal note added." if internal else "Reply sent to the school."
            return _after_ticket_write(request, pk, note)
    return _after_ticket_write(request, pk, "", status=FORM_ERROR, reply_form=form)


@role_required(SUPPLIER)
@require_POST
def ticket_move(request: HttpRequest, pk: int) -> HttpResponse:
    ticket = _get_ticket(request, pk)
    form = MoveForm(request.POST, allowed=ticket_allowed_next(ticket.status, supplier_side=True))
    if form.is_valid():
        try:
            ticket_services.ticket_transition(
                ticket=ticket,
                by=request.user,
                status=form.cleaned_data["status"],
                outcome=form.cleaned_data["outcome"],
                outcome_reason=form.cleaned_data["outcome_reason"],
            )
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            return _after_ticket_write(request, pk, "Ticket moved.")
    return _after_ticket_write(request, pk, "", status=FORM_ERROR, move_form=form)


@role_required(SUPPLIER)
@require_POST
def ticket_triage(request: HttpRequest, pk: int) -> HttpResponse:
    """Priority, category and who is on it (tickets.services.ticket_update)."""
    ticket = _get_ticket(request, pk)
    staff = {u.pk: u for u in _staff(ticket)}
    form = TriageForm(request.POST, staff=staff.values(), initial=_triage_initial(ticket))
    if form.is_valid():
        # Only what was changed: the service records each change as a history event.
        changes = {name: form.cleaned_data[name] for name in form.changed_data}
        if "assignee" in changes:
            changes["assignee"] = staff.get(changes["assignee"])
        try:
            ticket_services.ticket_update(ticket=ticket, by=request.user, **changes)
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            return _after_ticket_write(request, pk, "Ticket triaged.")
    return _after_ticket_write(request, pk, "", status=FORM_ERROR, triage_form=form)


# --- Visits -----------------------------------------------------------------------------------


def _week_start(request: HttpRequest) -> date:
    try:
        day = date.fromisoformat(request.GET.get("week", ""))
    except ValueError:
        day = timezone.localdate()
    return day - timedelta(days=day.weekday())


def _visits_context(request: HttpRequest, monday: date, plan_form: Any = None) -> dict:
    s = scope_for(request.user)
    tz = timezone.get_current_timezone()
    start = datetime.combine(monday, datetime.min.time(), tzinfo=tz)
    visits = list(
        Visit.objects.visible_to(request.user)
        .filter(
            supplier_id__in=s.supplier_ids,
            starts_at__gte=start,
            starts_at__lt=start + timedelta(days=7),
        )
        .select_related("school")
        .prefetch_related("attendees")
        .order_by("starts_at", "id")
    )
    days = []
    today = timezone.localdate()
    for i in range(7):
        day = monday + timedelta(days=i)
        days.append(
            {
                "date": day,
                "today": day == today,
                "visits": [v for v in visits if timezone.localdate(v.starts_at) == day],
            }
        )
    partnerships = supplier_partnerships(request.user).exclude(stage=Stage.ENDED)
    return {
        "days": days,
        "monday": monday,
        "prev": monday - timedelta(days=7),
        "next": monday + timedelta(days=7),
        "this_week": today - timedelta(days=today.weekday()),
        "plan_form": plan_form
        or PlanVisitForm(
            partnerships=partnerships,
            initial={"day": max(today, monday), "starts": time(9, 0), "ends": time(10, 0)},
        ),
        "complete_form": CompleteVisitForm(),
        "cancel_form": CancelVisitForm(),
        "now": timezone.now(),
    }


@role_required(SUPPLIER)
@require_GET
def visits(request: HttpRequest) -> HttpResponse:
    return render(
        request, "frontend/supplier/visits.html", _visits_context(request, _week_start(request))
    )


@role_required(SUPPLIER)
@require_POST
def visit_plan(request: HttpRequest) -> HttpResponse:
    partnerships = supplier_partnerships(request.user).exclude(stage=Stage.ENDED)
    form = PlanVisitForm(request.POST, partnerships=partnerships)
    monday = _week_start(request)
    if form.is_valid():
        d = form.cleaned_data
        p = d["partnership"]
        tz = p.school.zone
        starts = datetime.combine(d["day"], d["starts"], tzinfo=tz)
        ends = datetime.combine(d["day"], d["ends"], tzinfo=tz)
        try:
            visit = visit_create(
                by=request.user,
                partnership=p,
                kind=d["kind"],
                starts_at=starts,
                ends_at=ends,
                attendees=[request.user] if d["attend"] else [],
                agenda=d["agenda"],
            )
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            messages.success(request, f"{visit.get_kind_display()} visit planned.")
            day = timezone.localdate(visit.starts_at)
            return redirect(f"{reverse('visits')}?week={day:%Y-%m-%d}#visit-{visit.pk}")
        monday = form.cleaned_data["day"] - timedelta(days=form.cleaned_data["day"].weekday())
    return render(
        request,
        "frontend/supplier/visits.html",
        _visits_context(request, monday, plan_form=form),
        status=FORM_ERROR,
    )


def _visit_card(
    request: HttpRequest, visit: Visit, status: int = 200, **forms: Any
) -> HttpResponse:
    visit = (
        Visit.objects.visible_to(request.user)
        .select_related("school")
        .prefetch_related("attendees")
        .get(pk=visit.pk)
    )
    context = {
        "v": visit,
        "complete_form": forms.get("complete_form") or CompleteVisitForm(),
        "cancel_form": forms.get("cancel_form") or CancelVisitForm(),
        "now": timezone.now(),
    }
    if is_htmx(request):
        return render(request, "frontend/supplier/_visit.html", context, status=status)
    if status == 200:
        day = timezone.localdate(visit.starts_at)
        return redirect(f"{reverse('visits')}?week={day:%Y-%m-%d}#visit-{visit.pk}")
    monday = timezone.localdate(visit.starts_at)
    monday -= timedelta(days=monday.weekday())
    ctx = _visits_context(request, monday)
    ctx["errors_for"] = visit.pk
    ctx.update({k: v for k, v in forms.items() if v is not None})
    return render(request, "frontend/supplier/visits.html", ctx, status=status)


def _get_visit(request: HttpRequest, pk: int) -> Visit:
    s = scope_for(request.user)
    return get_visible(
        Visit.objects.visible_to(request.user).filter(supplier_id__in=s.supplier_ids), pk
    )


@role_required(SUPPLIER)
@require_POST
def visit_done(request: HttpRequest, pk: int) -> HttpResponse:
    visit = _get_visit(request, pk)
    form = CompleteVisitForm(request.POST)
    if form.is_valid():
        try:
            visit_complete(
                visit=visit,
                by=request.user,
                notes=form.cleaned_data["notes"],
                record_time=form.cleaned_data["record_time"],
            )
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            return _visit_card(request, visit)
    return _visit_card(request, visit, status=FORM_ERROR, complete_form=form)


@role_required(SUPPLIER)
@require_POST
def visit_call_off(request: HttpRequest, pk: int) -> HttpResponse:
    visit = _get_visit(request, pk)
    form = CancelVisitForm(request.POST)
    if form.is_valid():
        try:
            visit_cancel(
                visit=visit,
                by=request.user,
                reason=form.cleaned_data["reason"],
                no_show=form.cleaned_data["no_show"],
            )
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            return _visit_card(request, visit)
    return _visit_card(request, visit, status=FORM_ERROR, cancel_form=form)


# --- Nudges -----------------------------------------------------------------------------------

NUDGE_LIMIT = 100


def _recipients(request: HttpRequest) -> list[tuple[str, str]]:
    """(partnership:contact, label) for everyone the supplier may nudge: the contacts
    linked to its visible partnerships."""
    links = (
        PartnershipContact.objects.filter(partnership__in=supplier_partnerships(request.user))
        .select_related("contact", "partnership__school")
        .order_by("partnership__school__name", "contact__last_name", "contact__first_name")
    )
    return [
        (
            f"{link.partnership_id}:{link.contact_id}",
            f"{link.contact} — {link.partnership.school.name}",
        )
        for link in links
    ]


def _nudges_context(request: HttpRequest, preview_form: Any = None) -> dict[str, Any]:
    s = scope_for(request.user)
    base = (
        Nudge.objects.visible_to(request.user)
        .filter(supplier_id__in=s.supplier_ids)
        .select_related("contact", "school", "rule", "template")
    )
    since = timezone.now() - timedelta(days=30)
    admin_of = [sid for sid in s.supplier_ids if s.is_supplier_admin(sid)]
    held = base.filter(status=Nudge.Status.HELD, supplier_id__in=admin_of).order_by(
        "send_attempted_at", "id"
    )
    return {
        "held": held[:NUDGE_LIMIT] if admin_of else [],
        "held_count": held.count() if admin_of else 0,
        "webhook_missing": bool(admin_of) and webhook_missing(),
        "scheduled": base.filter(status=Nudge.Status.SCHEDULED).order_by("due_at", "id")[
            :NUDGE_LIMIT
        ],
        "recent": base.exclude(status=Nudge.Status.SCHEDULED)
        .filter(due_at__gte=since)
        .order_by("-due_at", "-id")[:NUDGE_LIMIT],
        "preview_form": preview_form
        or TemplatePreviewForm(
            templates=NudgeTemplate.objects.visible_to(request.user).filter(is_active=True),
            recipients=_recipients(request),
        ),
    }


@role_required(SUPPLIER)
@require_GET
def nudges(request: HttpRequest) -> HttpResponse:
    return render(request, "frontend/supplier/nudges.html", _nudges_context(request))


def _render_nudge(nudge: Nudge) -> templating.Rendered:
    """Exactly what the dispatcher will send."""
    return render_nudge(nudge, values_for([nudge])[nudge.pk])


@role_required(SUPPLIER)
@require_GET
def nudge_preview(request: HttpRequest, pk: int) -> HttpResponse:
    s = scope_for(request.user)
    nudge = get_visible(
        Nudge.objects.visible_to(request.user)
        .filter(supplier_id__in=s.supplier_ids)
        .select_related(
            "contact", "school", "supplier", "template", "partnership__account_manager"
        ),
        pk,
    )
    context = {"nudge": nudge, "rendered": _render_nudge(nudge)}
    return page_or_partial(
        request, "frontend/supplier/nudge_preview.html", "frontend/supplier/_preview.html", context
    )


@role_required(SUPPLIER)
@require_GET
def template_preview(request: HttpRequest) -> HttpResponse:
    """A template rendered for one contact, exactly as it would be sent today."""
    templates = NudgeTemplate.objects.visible_to(request.user).filter(is_active=True)
    form = TemplatePreviewForm(request.GET, templates=templates, recipients=_recipients(request))
    if not form.is_valid():
        return page_or_partial(
            request,
            "frontend/supplier/nudges.html",
            "frontend/supplier/_preview_error.html",
            _nudges_context(request, preview_form=form),
            status=FORM_ERROR,
        )
    pid, cid = (int(x) for x in form.cleaned_data["recipient"].split(":"))
    partnership = get_visible(
        supplier_partnerships(request.user).select_related("supplier", "account_manager"), pid
    )
    contact = get_visible(
        Contact.objects.visible_to(request.user).filter(partnerships=partnership), cid
    )
    template = form.cleaned_data["template"]
    draft = Nudge(
        supplier=partnership.supplier,
        school=partnership.school,
        partnership=partnership,
        contact=contact,
        template=template,
    )
    context = {"nudge": draft, "rendered": _render_nudge(draft), "template": template}
    return page_or_partial(
        request, "frontend/supplier/nudge_preview.html", "frontend/supplier/_preview.html", context
    )


@role_required(SUPPLIER)
@require_POST
def nudge_stop(request: HttpRequest, pk: int) -> HttpResponse:
    s = scope_for(request.user)
    nudge = get_visible(
        Nudge.objects.visible_to(request.user).filter(supplier_id__in=s.supplier_ids), pk
    )
    try:
        nudge_cancel(nudge=nudge, by=request.user)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, f"Nudge to {nudge.contact} cancelled.")
    return redirect("nudges")


@role_required(SUPPLIER)
@require_POST
def nudge_decide(request: HttpRequest, pk: int) -> HttpResponse:
    """A supplier admin's decision on a nudge held in doubt: send again, or leave it."""
    s = scope_for(request.user)
    nudge = get_visible(
        Nudge.objects.visible_to(request.user)
        .filter(supplier_id__in=s.supplier_ids)
        .select_related("contact"),
        pk,
    )
    decision = request.POST.get("decision")
    if decision not in ("resend", "drop"):
        messages.error(request, "Choose to send it again or to leave it.")
        return redirect("nudges")
    try:
        if decision == "resend":
            held_resend(nudge=nudge, by=request.user)
        else:
            held_drop(nudge=nudge, by=request.user)
    except PermissionDenied as exc:
        messages.error(request, str(exc))
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(
            request,
            f"Nudge to {nudge.contact} "
            + ("will be sent again." if decision == "resend" else "will not be sent again."),
        )
    return redirect("nudges")
