"""School and trust leads: suppliers side by side, the tickets behind each figure, who
contacts which member of staff (and stopping it), and the trust's roll-up (read-only)."""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime
from typing import Any

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from accounts.models import Contact, Organisation
from accounts.scoping import scope_for
from nudges.models import OptOut
from nudges.services import opt_out_remove, school_stop
from tickets.models import Status, Ticket

from ..charts import line_chart
from ..forms import StopForm
from ..roles import LEADS, TRUST_LEAD, get_visible, role_required
from ..scorecards import first_response_q, month_starts, monthly_trend, supplier_scorecards
from ..selectors import contact_matrix
from .common import is_htmx

TREND_MONTHS = 12
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
    if request.GET.get("school"):
        return get_visible(_schools(request), request.GET["school"]), schools
    led = scope_for(request.user).lead_school_ids
    return next((s for s in schools if s.pk in led), schools[0]), schools


def _since(now: datetime) -> datetime:
    first = month_starts(now, TREND_MONTHS)[0]
    return timezone.make_aware(datetime.combine(first, datetime.min.time()))


@role_required(LEADS)
@require_GET
def scorecard(request: HttpRequest) -> HttpResponse:
    now = timezone.now()
    school, schools = _pick_school(request)
    since = _since(now)
    scores = supplier_scorecards(request.user, [school.pk], since=since, now=now)
    months, trend = monthly_trend(request.user, [school.pk], months=TREND_MONTHS, now=now)
    names = {sc.supplier.pk: sc.supplier.name for sc in scores}
    series = [
        (names[sid], [p.pct for p in points]) for sid, points in trend.items() if sid in names
    ]
    chart = line_chart(months, series) if series else None
    table = [
        {"month": m, "cells": [(sid, trend[sid][i]) for sid in trend if sid in names]}
        for i, m in enumerate(months)
    ]
    return render(
        request,
        "frontend/school/scorecard.html",
        {
            "school": school,
            "schools": schools,
            "scores": scores,
            "since": timezone.localdate(since),
            "chart": chart,
            "trend_suppliers": [(sid, names[sid]) for sid in trend if sid in names],
            "trend_table": table,
            "can_edit": scope_for(request.user).leads_school(school.pk),
        },
    )


def _month(value: str) -> date | None:
    try:
        y, m = (int(x) for x in value.split("-"))
        return date(y, m, 1)
    except (ValueError, TypeError):
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
    since = None
    try:
        since = date.fromisoformat(g.get("since", ""))
    except ValueError:
        since = None
    if since:
        start = timezone.make_aware(datetime.combine(since, datetime.min.time()))
        tickets = tickets.filter(created_at__gte=start)
        described.append(f"raised since {since:%-d %B %Y}")
    month = _month(g.get("month", ""))
    if month:
        end = date(month.year + (month.month == 12), month.month % 12 + 1, 1)
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
    }


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
    """Stop a supplier contacting a member of staff (nudges.services.school_stop; only
    the school's lead may, others get 403)."""
    form = StopForm(request.POST)
    if not form.is_valid():
        raise Http404
    contact = get_visible(
        Contact.objects.visible_to(request.user).select_related("school"),
        form.cleaned_data["contact"],
    )
    supplier = get_visible(
        Organisation.objects.visible_to(request.user).filter(kind=Organisation.Kind.SUPPLIER),
        form.cleaned_data["supplier"],
    )
    try:
        school_stop(
            by=request.user, contact=contact, supplier=supplier, note=form.cleaned_data["note"]
        )
    except ValidationError as exc:  # pragma: no cover - the service raises none today
        messages.error(request, " ".join(exc.messages))
    return _after_contact_change(
        request, contact, f"{supplier.name} will no longer contact {contact}."
    )


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


# --- The trust's roll-up ----------------------------------------------------------------------


@role_required(TRUST_LEAD)
@require_GET
def trust(request: HttpRequest) -> HttpResponse:
    s = scope_for(request.user)
    now = timezone.now()
    since = _since(now)
    trusts = Organisation.objects.visible_to(request.user).filter(id__in=s.trust_ids)
    schools = list(
        Organisation.objects.visible_to(request.user)
        .filter(kind=Organisation.Kind.SCHOOL, id__in=s.trust_school_ids)
        .order_by("name", "id")
    )
    scores = supplier_scorecards(request.user, [x.pk for x in schools], since=since, now=now)
    by_school: dict[int, list[Any]] = defaultdict(list)
    for score in scores:
        by_school[score.school.pk].append(score)
    return render(
        request,
        "frontend/school/trust.html",
        {
            "trusts": trusts,
            "schools": [(school, by_school.get(school.pk, [])) for school in schools],
            "since": timezone.localdate(since),
        },
    )
