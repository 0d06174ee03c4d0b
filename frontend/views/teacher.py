"""School staff: file feedback in under a minute (on a phone), follow it, rate the outcome."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db.models import Prefetch
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from accounts.models import Partnership, Stage
from accounts.scoping import scope_for
from tickets import services as ticket_services
from tickets.models import Ticket, TicketMessage

from ..forms import FeedbackForm, RatingForm, SchoolReplyForm, add_service_errors
from ..roles import LEADS, SCHOOL_STAFF, get_visible, role_required
from .common import FORM_ERROR


def _fileable(request: HttpRequest) -> Any:
    """The partnerships of the user's own schools they may file about (not ended)."""
    s = scope_for(request.user)
    return (
        Partnership.objects.visible_to(request.user)
        .filter(school_id__in=s.school_ids)
        .exclude(stage=Stage.ENDED)
        .select_related("supplier", "school")
        .prefetch_related("products")
        .order_by("supplier__name", "id")
    )


@role_required(SCHOOL_STAFF)
@require_http_methods(["GET", "POST"])
def feedback(request: HttpRequest) -> HttpResponse:
    queryset = _fileable(request)
    if not queryset.exists():
        return render(request, "frontend/teacher/feedback.html", {"form": None})
    if request.method == "POST":
        form = FeedbackForm(request.POST, request.FILES, partnerships=queryset)
        if form.is_valid():
            d = form.cleaned_data
            try:
                ticket, created = ticket_services.ticket_create(
                    by=request.user,
                    partnership=d["partnership"],
                    subject=d["subject"],
                    description=d["description"],
                    category=d["category"] or Ticket.Category.PROBLEM,
                    idempotency_key=f"page:{d['token']}",
                    attachments=d["files"],
                )
            except ValidationError as exc:
                add_service_errors(form, exc)
            else:
                if created:
                    messages.success(
                        request,
                        f"Thank you. Your feedback is with {ticket.supplier.name}; "
                        "you'll get an email when they reply.",
                    )
                else:
                    messages.success(request, "This feedback was filed already: here it is.")
                return redirect("my-ticket", pk=ticket.pk)
        return render(request, "frontend/teacher/feedback.html", {"form": form}, status=FORM_ERROR)
    form = FeedbackForm(partnerships=queryset)
    return render(request, "frontend/teacher/feedback.html", {"form": form})


@role_required(SCHOOL_STAFF)
def my_tickets(request: HttpRequest) -> HttpResponse:
    public = TicketMessage.objects.visible_to(request.user).select_related("author")
    tickets = (
        Ticket.objects.visible_to(request.user)
        .filter(raised_by=request.user)
        .select_related("supplier", "product")
        .prefetch_related(Prefetch("messages", queryset=public, to_attr="thread"))
        .order_by("-created_at", "-id")[:100]
    )
    s = scope_for(request.user)
    rows = [(t, [m for m in t.thread if m.author_id != request.user.pk]) for t in tickets]
    return render(
        request,
        "frontend/teacher/my_tickets.html",
        {"rows": rows, "supplier_ids": s.supplier_ids},
    )


def _school_ticket(request: HttpRequest, pk: int) -> Ticket:
    return get_visible(
        Ticket.objects.visible_to(request.user)
        .select_related("supplier", "school", "product", "raised_by")
        .with_attachments(request.user),
        pk,
    )


def _school_ticket_context(request: HttpRequest, ticket: Ticket, **forms: Any) -> dict:
    s = scope_for(request.user)
    can_rate = (
        ticket.raised_by_id == request.user.pk
        and ticket.rating is None
        and ticket.status in ("resolved", "closed")
    )
    can_reply = ticket.raised_by_id == request.user.pk or s.leads_school(ticket.school_id)
    return {
        "ticket": ticket,
        "thread": TicketMessage.objects.visible_to(request.user)
        .filter(ticket=ticket)
        .select_related("author")
        .with_attachments(request.user),
        "rating_form": forms.get("rating_form") or (RatingForm() if can_rate else None),
        "reply_form": forms.get("reply_form") or (SchoolReplyForm() if can_reply else None),
        "supplier_ids": s.supplier_ids,
    }


@role_required(SCHOOL_STAFF, LEADS)
def school_ticket(request: HttpRequest, pk: int) -> HttpResponse:
    ticket = _school_ticket(request, pk)
    return render(request, "frontend/teacher/ticket.html", _school_ticket_context(request, ticket))


@role_required(SCHOOL_STAFF)
@require_POST
def rate(request: HttpRequest, pk: int) -> HttpResponse:
    ticket = _school_ticket(request, pk)
    form = RatingForm(request.POST)
    if form.is_valid():
        try:
            ticket_services.ticket_rate(
                ticket=ticket,
                by=request.user,
                rating=form.cleaned_data["rating"],
                comment=form.cleaned_data["comment"],
            )
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            messages.success(request, "Thank you for rating it.")
            return redirect("my-ticket", pk=ticket.pk)
    context = _school_ticket_context(request, ticket, rating_form=form)
    return render(request, "frontend/teacher/ticket.html", context, status=FORM_ERROR)


@role_required(SCHOOL_STAFF)
@require_POST
def school_reply(request: HttpRequest, pk: int) -> HttpResponse:
    ticket = _school_ticket(request, pk)
    form = SchoolReplyForm(request.POST, request.FILES)
    reopen = {"1": True, "0": False}.get(request.POST.get("reopen", ""))
    if form.is_valid():
        body, files = form.cleaned_data["body"], form.cleaned_data["files"]
        was_resolved = ticket.status in ("resolved", "closed")
        try:
            result, _ = ticket_services.ticket_reply(
                ticket=ticket, by=request.user, body=body, reopen=reopen, attachments=files
            )
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            if result.pk != ticket.pk:
                note = "It was resolved a while ago, so this is a new ticket."
            elif reopen and was_resolved:
                note = "Reopened: the supplier has been told."
            else:
                note = "Reply sent."
            messages.success(request, note)
            return redirect("my-ticket", pk=result.pk)
    context = _school_ticket_context(request, ticket, reply_form=form)
    return render(request, "frontend/teacher/ticket.html", context, status=FORM_ERROR)
