"""School and trust leads: suppliers side by side, the tickets behind each figure, who
contacts which member of staff (and stopping it), and the trust's roll-up (read-only)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from accounts.models import Contact, ContactProposal, Organisation
from accounts.scoping import scope_for
from accounts.services import contact_proposal_accept, contact_proposal_decline
from nudges.models import OptOut
from nudges.services import opt_out_remove, school_stop
from reports.scorecards import FIGURES, Period, first_response_q
from reports.scorecards import scorecard as scorecard_figures
from tickets.models import Status, Ticket
from visits.models import OnsiteCorrection

from ..charts import line_chart
from ..forms import StopForm
from ..roles import LEADS, TRUST_LEAD, get_visible, role_required
from ..selectors import contact_matrix
from .common import is_htmx

TREND_MONTHS = 12
CORRECTIONS_SHOWN = 20  # the latest changes to on-site time, on the scorecard
LIST_PAGE = 50


def _schools(request: HttpRequest) -> QuerySet[Organisation]:
    """The schools whose records the user reads in full (led, or in a led trust)."""
    s = scope_for(request.user)
    return (
        Organisation.objects.visible_to(request.user)
        .filter(kind=Organisation.Kind.SCHOOL, id__in=s.all_school_ids)
        .select_related("trust")
        .order_by("name", "id")
    )


def _pick_school(request: HttpRequest) -> tuple[Organisation, list[Organisation]]:
    """The ?school= asked for (404 outside scope), else a school the user leads, else the
    first of their trust's."""
    schools = list(_schools(request))
    if not schools:
        raise Http404
    wanted = request.GET.get("school", "").strip()
    if wanted:  # from the list just read: another school is a 404, like a missing one
        school = next((x for x in schools if str(x.pk) == wanted), None)
        if school is None:
            raise Http404
        return school, schools
    led = scope_for(request.user).lead_school_ids
    return next((s for s in schools if s.pk in led), schools[0]), schools


def _month_starts(today: date, months: int) -> list[date]:
    """The first day of each of the last ``months`` months, oldest first, this month last."""
    out = []
    y, m = today.year, today.month
    for _ in range(months):
        out.append(date(y, m, 1))
        y, m = (y, m - 1) if m > 1 else (y - 1, 12)
    return out[::-1]


def _next_month(first: date) -> date:
    return date(first.year + (first.month == 12), first.month % 12 + 1, 1)


def _trend(now: datetime) -> tuple[list[date], Period]:
    """The last twelve months, this one included (the trend chart's span): their first
    days, and the period they make."""
    months = _month_starts(timezone.localdate(now), TREND_MONTHS)
    return months, Period(months[0], _next_month(months[-1]))


@dataclass
class Column:
    """One supplier's figures (``reports.scorecards.FIGURES``) on a scorecard."""

    supplier: Organisation
    figures: dict[str, Any]
    link: str = ""  # the drill-down: this supplier's tickets behind the figures
    # Across several schools: at how many the supplier is behind on on-site hours (summed
    # hours would let one school that is ahead hide another that is behind).
    behind_at: int | None = None
    # Of the latest changes to completed visits' on-site time shown, how many are theirs.
    corrections: int = 0

    @property
    def onsite_behind(self) -> bool:
        return _behind(self.figures)


def _behind(figures: dict[str, Any]) -> bool:
    """On-site hours below what the agreement expects by this point of the term."""
    return figures["onsite_hours_delivered"] < figures["onsite_hours_expected_by_now"]


def _suppliers(user: Any, *row_lists: list[dict[str, Any]]) -> dict[int, Organisation]:
    ids = {r["supplier_id"] for rows in row_lists for r in rows}
    return Organisation.objects.visible_to(user).in_bulk(ids)


def _columns(
    rows: list[dict[str, Any]],
    suppliers: dict[int, Organisation],
    since: date,
    school: Organisation | None = None,
    **scope: int,
) -> list[Column]:
    """Columns sorted by supplier name, each with its drill-down link narrowed like its
    figures (the school, or ``scope`` such as ``trust=<id>``)."""
    columns = []
    for r in rows:
        supplier = suppliers.get(r["supplier_id"])
        if supplier is None:
            continue
        params = {"supplier": supplier.pk, "since": since.isoformat(), **scope}
        if school is not None or "school_id" in r:
            params["school"] = school.pk if school is not None else r["school_id"]
        link = f"{reverse('school-tickets')}?{urlencode(sorted(params.items()))}"
        columns.append(Column(supplier, r, link))
    return sorted(columns, key=lambda c: (c.supplier.name, c.supplier.pk))


@role_required(LEADS)
@require_GET
def scorecard(request: HttpRequest) -> HttpResponse:
    """The school's suppliers side by side: ``reports.scorecards`` (the API's figures, the
    same definitions), the monthly trend drawn as SVG, every ticket figure linked to the
    tickets behind it."""
    now = timezone.now()
    school, schools = _pick_school(request)
    months, period = _trend(now)
    data = scorecard_figures(
        user=request.user, period=period, group=["supplier_id"], school_ids={school.pk}, now=now
    )
    columns = _columns(data["rows"], _suppliers(request.user, data["rows"]), period.start, school)
    # Changes suppliers made to completed visits' on-site time (visits.corrections).
    corrections = list(
        OnsiteCorrection.objects.visible_to(request.user)
        .filter(school=school)
        .select_related("supplier", "by")[:CORRECTIONS_SHOWN]
    )
    changed_by_supplier: dict[int, int] = defaultdict(int)
    for c in corrections:
        changed_by_supplier[c.supplier_id] += 1
    for column in columns:
        column.corrections = changed_by_supplier.get(column.supplier.pk, 0)
    by_month = {(r["supplier_id"], r["month"]): r for r in data["monthly"]}
    trend = [(c, [by_month.get((c.supplier.pk, f"{m:%Y-%m}")) for m in months]) for c in columns]
    series = [
        (
            c.supplier.name,
            [r["first_response_within_target_pct"] if r else None for r in points],
        )
        for c, points in trend
    ]
    return render(
        request,
        "frontend/school/scorecard.html",
        {
            "school": school,
            "schools": schools,
            "columns": columns,
            "benchmark": data["benchmark"],
            # A cached figure says how old it is (reports.scorecards.benchmark).
            "benchmark_as_of": datetime.fromisoformat(data["benchmark"]["computed_at"])
            if data["benchmark"]
            else None,
            "corrections": corrections,
            "figures": FIGURES,
            "since": period.start,
            "chart": line_chart(months, series) if columns else None,
            "trend_suppliers": [c for c, _ in trend],
            "trend_table": [
                {"month": m, "cells": [(c.supplier.pk, points[i]) for c, points in trend]}
                for i, m in enumerate(months)
            ],
            "can_edit": scope_for(request.user).leads_school(school.pk),
        },
    )


def _month(value: str) -> tuple[date, date] | None:
    """``YYYY-MM`` as its first day and the next month's (None for anything else)."""
    try:
        y, m = (int(x) for x in value.split("-"))
        first = date(y, m, 1)
        return first, _next_month(first)
    except (ValueError, TypeError, OverflowError):
        return None


@role_required(LEADS)
@require_GET
def school_tickets(request: HttpRequest) -> HttpResponse:
    """The tickets behind a scorecard figure: the same definitions, as filters."""
    s = scope_for(request.user)
    now = timezone.now()
    tickets = (
        Ticket.objects.visible_to(request.user)
        .filter(school_id__in=s.all_school_ids)
        .select_related("school", "supplier", "raised_by")
    )
    described: list[str] = []
    g = request.GET
    school = supplier = None
    if g.get("school"):
        school = get_visible(_schools(request), g["school"])
        tickets = tickets.filter(school=school)
        described.append(f"at {school.name}")
    if g.get("supplier"):
        supplier = get_visible(
            Organisation.objects.visible_to(request.user).filter(kind=Organisation.Kind.SUPPLIER),
            g["supplier"],
        )
        tickets = tickets.filter(supplier=supplier)
        described.append(f"to {supplier.name}")
    if g.get("trust"):
        trust = get_visible(
            Organisation.objects.visible_to(request.user).filter(id__in=s.trust_ids), g["trust"]
        )
        tickets = tickets.filter(school__trust=trust)
        described.append(f"at {trust.name}'s schools")
    since = None
    try:
        since = date.fromisoformat(g.get("since", ""))
    except ValueError:
        since = None
    if since:
        start = timezone.make_aware(datetime.combine(since, datetime.min.time()))
        tickets = tickets.filter(created_at__gte=start)
        described.append(f"raised since {since:%-d %B %Y}")
    month_span = _month(g.get("month", ""))
    if month_span:
        month, end = month_span
        tickets = tickets.filter(
            created_at__gte=timezone.make_aware(datetime.combine(month, datetime.min.time())),
            created_at__lt=timezone.make_aware(datetime.combine(end, datetime.min.time())),
        )
        described.append(f"raised in {month:%B %Y}")
    state = g.get("first_response")
    if state in ("on_time", "late", "pending"):
        tickets = tickets.filter(first_response_q(state, now))
        described.append(
            {
                "on_time": "first response within target",
                "late": "first response late",
                "pending": "awaiting a first response, not yet due",
            }[state]
        )
    if g.get("resolved") == "1":
        tickets = tickets.filter(resolved_at__isnull=False)
        described.append("resolved")
    if g.get("reopened") == "1":
        tickets = tickets.filter(reopen_count__gt=0)
        described.append("reopened at least once")
    if g.get("rated") == "1":
        tickets = tickets.filter(rating__isnull=False)
        described.append("rated")
    if g.get("status") in Status.values:
        tickets = tickets.filter(status=g["status"])
        described.append(f"status {Status(g['status']).label.lower()}")
    page = Paginator(tickets.order_by("-created_at", "-id"), LIST_PAGE).get_page(g.get("page"))
    return render(
        request,
        "frontend/school/tickets.html",
        {
            "page": page,
            "described": ", ".join(described),
            "query": g.urlencode(),
            "back_school": school,
        },
    )


# --- Staff contact controls -------------------------------------------------------------------


def _contacts_context(request: HttpRequest, school: Organisation) -> dict[str, Any]:
    suppliers, rows = contact_matrix(request.user, school.pk)
    return {
        "school": school,
        "suppliers": suppliers,
        "rows": rows,
        "can_edit": scope_for(request.user).leads_school(school.pk),
        "proposals": _pending_proposals(request.user, school, rows),
    }


def _pending_proposals(user: Any, school: Organisation, rows: list[Any]) -> list[Any]:
    """The suppliers' pending proposals at the school, each with the school's existing
    record for its address (``existing``: accepting links it), from the rows just read."""
    by_email = {row.contact.email: row.contact for row in rows}
    proposals = list(
        ContactProposal.objects.visible_to(user)
        .pending()
        .filter(partnership__school_id=school.pk)
        .select_related("partnership__supplier", "proposed_by")
        .order_by("proposed_at", "id")
    )
    for proposal in proposals:
        proposal.existing = by_email.get(proposal.email)
    return proposals


@role_required(LEADS)
@require_GET
def contacts(request: HttpRequest) -> HttpResponse:
    school, schools = _pick_school(request)
    context = _contacts_context(request, school)
    context["schools"] = schools
    return render(request, "frontend/school/contacts.html", context)


def _after_contact_change(request: HttpRequest, contact: Contact, note: str) -> HttpResponse:
    if is_htmx(request):
        context = _contacts_context(request, contact.school)
        row = next(r for r in context["rows"] if r.contact.pk == contact.pk)
        return render(
            request,
            "frontend/school/_contact_row.html",
            {**context, "row": row, "notice": note},
        )
    messages.success(request, note)
    return redirect(f"{reverse('school-contacts')}?school={contact.school_id}#contact-{contact.pk}")


@role_required(LEADS)
@require_POST
def contact_stop(request: HttpRequest) -> HttpResponse:
    """Stop a supplier (or, with no supplier, every supplier) contacting a member of staff
    (nudges.services.school_stop; only the school's lead may, others get 403)."""
    form = StopForm(request.POST)
    if not form.is_valid():
        raise Http404
    contact = get_visible(
        Contact.objects.visible_to(request.user).select_related("school"),
        form.cleaned_data["contact"],
    )
    supplier = None
    if not form.cleaned_data["every"]:
        supplier = get_visible(
            Organisation.objects.visible_to(request.user).filter(kind=Organisation.Kind.SUPPLIER),
            form.cleaned_data["supplier"],
        )
    school_stop(by=request.user, contact=contact, supplier=supplier, note=form.cleaned_data["note"])
    if supplier is None:
        note = f"No supplier will contact {contact} now."
    else:
        note = f"{supplier.name} will no longer contact {contact}."
    return _after_contact_change(request, contact, note)


@role_required(LEADS)
@require_POST
def contact_lift(request: HttpRequest, pk: int) -> HttpResponse:
    record = get_visible(
        OptOut.objects.visible_to(request.user).select_related("contact__school", "supplier"), pk
    )
    contact = record.contact
    who = record.supplier.name if record.supplier else "Suppliers"
    opt_out_remove(record=record, by=request.user)
    return _after_contact_change(request, contact, f"{who} may contact {contact} again.")


PROPOSAL_REASON_MAX = 2000


def _decide_proposal(request: HttpRequest, pk: int, accept: bool) -> HttpResponse:
    proposal = get_visible(
        ContactProposal.objects.visible_to(request.user).select_related(
            "partnership__supplier", "partnership__school"
        ),
        pk,
    )
    school_id = proposal.partnership.school_id
    back = f"{reverse('school-contacts')}?school={school_id}#proposals"
    reason = request.POST.get("reason", "").strip()
    if len(reason) > PROPOSAL_REASON_MAX:
        messages.error(request, f"Keep the reason under {PROPOSAL_REASON_MAX} characters.")
        return redirect(back)
    supplier = proposal.partnership.supplier.name
    try:
        if accept:
            proposal = contact_proposal_accept(proposal=proposal, by=request.user)
            note = f"{proposal.contact} is now a contact of {supplier}."
        else:
            contact_proposal_decline(proposal=proposal, by=request.user, reason=reason)
            note = f"Declined {supplier}'s proposal of {proposal}."
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, note)
    return redirect(back)


@role_required(LEADS)
@require_POST
def proposal_accept(request: HttpRequest, pk: int) -> HttpResponse:
    """Accept a supplier's proposed contact (only the school's lead: others get 403)."""
    return _decide_proposal(request, pk, accept=True)


@role_required(LEADS)
@require_POST
def proposal_decline(request: HttpRequest, pk: int) -> HttpResponse:
    return _decide_proposal(request, pk, accept=False)


# --- The trust's roll-up ----------------------------------------------------------------------


@role_required(TRUST_LEAD)
@require_GET
def trust(request: HttpRequest) -> HttpResponse:
    """Read-only: the suppliers across the trust's schools, then school by school."""
    s = scope_for(request.user)
    now = timezone.now()
    _, period = _trend(now)
    trusts = Organisation.objects.visible_to(request.user).filter(id__in=s.trust_ids)
    schools = list(
        Organisation.objects.visible_to(request.user)
        .filter(kind=Organisation.Kind.SCHOOL, id__in=s.trust_school_ids)
        .order_by("name", "id")
    )
    ids = {x.pk for x in schools}
    overall, per_school = (
        scorecard_figures(
            user=request.user,
            period=period,
            group=group,
            school_ids=ids,
            now=now,
            with_monthly=False,
        )
        for group in (["supplier_id"], ["school_id", "supplier_id"])
    )
    suppliers = _suppliers(request.user, overall["rows"], per_school["rows"])
    by_school: dict[int, list[dict[str, Any]]] = defaultdict(list)
    behind_at: dict[int, int] = defaultdict(int)
    for row in per_school["rows"]:
        by_school[row["school_id"]].append(row)
        if _behind(row):
            behind_at[row["supplier_id"]] += 1
    across = _columns(
        overall["rows"],
        suppliers,
        period.start,
        **({"trust": next(iter(s.trust_ids))} if len(s.trust_ids) == 1 else {}),
    )
    for column in across:
        column.behind_at = behind_at[column.supplier.pk]
    return render(
        request,
        "frontend/school/trust.html",
        {
            "trusts": trusts,
            "overall": across,
            "schools": [
                (school, _columns(by_school.get(school.pk, []), suppliers, period.start))
                for school in schools
            ],
            "since": period.start,
        },
    )
