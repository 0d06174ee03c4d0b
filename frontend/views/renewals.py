"""Renewals: each side's list of agreement terms (soonest notice first, the ones due
highlighted), a partnership's agreement (its terms, setting the current one), and the value
review (one page for both sides, its staff survey, the school lead's decision with a
confirm step, and the governors' pack as a PDF).

Terms and reviews come only through their ``visible_to`` (teachers and other tenants get
404); what each side may do is decided by ``renewals.services`` (PermissionDenied → 403).
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

from django import forms
from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Prefetch
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.models import Partnership, Stage, StakeholderTag
from accounts.scoping import scope_for
from renewals import services
from renewals.models import AgreementTerm, ValueReview
from renewals.pdf import pack_filename, review_context, review_pdf

from ..forms import add_service_errors
from ..roles import LEADS, SUPPLIER, get_visible, role_required
from .common import FORM_ERROR

DATE = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")


# --- Forms -----------------------------------------------------------------------------------


class TermForm(forms.Form):
    starts_on = forms.DateField(label="Starts", widget=DATE)
    ends_on = forms.DateField(label="Ends", widget=DATE, help_text="The agreement's last day.")
    notice_days = forms.IntegerField(
        label="Notice period (days)",
        min_value=0,
        max_value=730,
        initial=90,
        help_text="Notice to end is due this many days before the end date.",
    )
    annual_value = forms.DecimalField(
        label="Annual value (£)",
        required=False,
        min_value=Decimal(0),
        max_digits=10,
        decimal_places=2,
        help_text="Seen by the school's leads and the supplier's staff.",
    )


class SurveyForm(forms.Form):
    audience = forms.ChoiceField(
        label="Who is asked",
        choices=[
            ("cohort", "The staff who used it (the trial phases' cohorts)"),
            ("tag", "Staff with a stakeholder tag"),
        ],
        initial="cohort",
        widget=forms.RadioSelect,
    )
    tag = forms.ChoiceField(
        label="Which tag", required=False, choices=[("", "Choose…"), *StakeholderTag.choices]
    )
    message = forms.CharField(
        label="A line from you",
        required=False,
        max_length=1000,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Added to the email above the three questions.",
    )

    def clean(self) -> dict[str, Any]:
        d = super().clean()
        if d.get("audience") == "tag" and not d.get("tag"):
            self.add_error("tag", "Choose the tag of the staff to ask.")
        return d


class DecideForm(forms.Form):
    decision = forms.ChoiceField(
        label="Decision", choices=ValueReview.Decision.choices, widget=forms.RadioSelect
    )
    decision_reason = forms.CharField(
        label="Why",
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text="Kept on the partnership's record; the supplier sees it.",
    )
    changes_agreed = forms.CharField(
        label="Changes agreed",
        required=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Needed when renewing with changes.",
    )
    next_ends_on = forms.DateField(
        label="The next term ends",
        required=False,
        widget=DATE,
        help_text="When renewing; empty: as long as this term.",
    )
    annual_value = forms.DecimalField(
        label="The next term's annual value (£)",
        required=False,
        min_value=Decimal(0),
        max_digits=10,
        decimal_places=2,
        help_text="When renewing; empty: unchanged.",
    )
    confirmed = forms.BooleanField(required=False, widget=forms.HiddenInput)


# --- Lists -----------------------------------------------------------------------------------


def _terms(user: Any) -> Any:
    return (
        AgreementTerm.objects.visible_to(user)
        .filter(status=AgreementTerm.Status.CURRENT)
        .exclude(partnership__stage=Stage.ENDED)
        .select_related("partnership", "school", "supplier", "review")
        .prefetch_related(Prefetch("partnership__products"))
        .order_by("notice_on", "id")
    )


RECENT_DAYS = 90  # decisions listed under "Decided recently"


def _list(request: HttpRequest, terms: Any, side: str, decided: Any) -> HttpResponse:
    today = timezone.localdate()
    weeks = settings.RENEWAL_DUE_WEEKS
    due = set(
        services.due_terms(request.user, today, weeks)
        .filter(pk__in=[t.pk for t in terms])
        .values_list("pk", flat=True)
    )
    rows = [{"term": t, "due": t.pk in due, "review": getattr(t, "review", None)} for t in terms]
    recent = list(
        decided.filter(
            status=ValueReview.Status.DECIDED,
            decided_at__gte=timezone.now() - timedelta(days=RECENT_DAYS),
        )
        .select_related("school", "supplier", "decided_by", "next_term")
        .order_by("-decided_at", "-id")
    )
    return render(
        request,
        "frontend/renewals/list.html",
        {
            "rows": rows,
            "side": side,
            "weeks": weeks,
            "due_count": len(due),
            "recent": recent,
            "recent_days": RECENT_DAYS,
        },
    )


@role_required(LEADS)
@require_GET
def school_renewals(request: HttpRequest) -> HttpResponse:
    s = scope_for(request.user)
    terms = _terms(request.user).filter(school_id__in=s.all_school_ids)
    decided = ValueReview.objects.visible_to(request.user).filter(school_id__in=s.all_school_ids)
    return _list(request, list(terms), "school", decided)


@role_required(SUPPLIER)
@require_GET
def supplier_renewals(request: HttpRequest) -> HttpResponse:
    s = scope_for(request.user)
    if not any(s.manages_supplier(sid) for sid in s.supplier_ids):
        raise PermissionDenied("Renewals are for the supplier's admins and account managers.")
    terms = _terms(request.user).filter(supplier_id__in=s.supplier_ids)
    decided = ValueReview.objects.visible_to(request.user).filter(supplier_id__in=s.supplier_ids)
    if request.GET.get("mine") == "1":
        terms = terms.filter(partnership__account_manager=request.user)
        decided = decided.filter(partnership__account_manager=request.user)
    return _list(request, list(terms), "supplier", decided)


# --- A partnership's agreement ---------------------------------------------------------------


def _agreement_partnership(request: HttpRequest, pk: Any) -> Partnership:
    """The partnership, for those who see its agreement (its supplier's staff, the school's
    leads); 404 for anyone else, teachers included."""
    p = get_visible(
        Partnership.objects.visible_to(request.user).select_related("school", "supplier"), pk
    )
    s = scope_for(request.user)
    if p.supplier_id not in s.supplier_ids and p.school_id not in s.all_school_ids:
        raise Http404
    return p


def _may_run(user: Any, p: Partnership) -> bool:
    s = scope_for(user)
    return (
        s.manages_supplier(p.supplier_id)
        or s.leads_school(p.school_id)
        or p.school_id in s.trust_school_ids
    )


def _agreement_page(
    request: HttpRequest, p: Partnership, form: TermForm | None = None, status: int = 200
) -> HttpResponse:
    terms = list(
        AgreementTerm.objects.visible_to(request.user)
        .filter(partnership=p)
        .select_related("review")
        .order_by("-number")
    )
    current = next((t for t in terms if t.status == AgreementTerm.Status.CURRENT), None)
    if form is None:
        initial: dict[str, Any] = {"notice_days": 90}
        if current is not None:
            initial = {
                "starts_on": current.starts_on,
                "ends_on": current.ends_on,
                "notice_days": current.notice_days,
                "annual_value": current.annual_value,
            }
        elif p.contract_start or p.contract_end:
            initial |= {"starts_on": p.contract_start, "ends_on": p.contract_end}
        form = TermForm(initial=initial)
    review = getattr(current, "review", None) if current else None
    may_run = _may_run(request.user, p)
    return render(
        request,
        "frontend/renewals/agreement.html",
        {
            "p": p,
            "terms": terms,
            "current": current,
            "review": review,
            "form": form,
            "can_edit": may_run
            and p.stage != Stage.ENDED
            and not (review and review.status == ValueReview.Status.DECIDED),
            "can_open": may_run and current is not None and review is None,
            "back": "school-renewals"
            if p.school_id in scope_for(request.user).all_school_ids
            and p.supplier_id not in scope_for(request.user).supplier_ids
            else "supplier-renewals",
        },
        status=status,
    )


@role_required(LEADS, SUPPLIER)
@require_http_methods(["GET", "POST"])
def agreement(request: HttpRequest, pk: int) -> HttpResponse:
    p = _agreement_partnership(request, pk)
    if request.method == "GET":
        return _agreement_page(request, p)
    form = TermForm(request.POST)
    if form.is_valid():
        d = form.cleaned_data
        try:
            services.term_save(
                by=request.user,
                partnership=p,
                starts_on=d["starts_on"],
                ends_on=d["ends_on"],
                notice_days=d["notice_days"],
                annual_value=d["annual_value"],
            )
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            messages.success(request, "The agreement's term is saved.")
            return redirect("renewals-agreement", pk=p.pk)
    return _agreement_page(request, p, form=form, status=FORM_ERROR)


@role_required(LEADS, SUPPLIER)
@require_POST
def review_open(request: HttpRequest, pk: int) -> HttpResponse:
    p = _agreement_partnership(request, pk)
    term = (
        AgreementTerm.objects.visible_to(request.user)
        .filter(partnership=p, status=AgreementTerm.Status.CURRENT)
        .first()
    )
    if term is None:
        messages.error(request, "Set the agreement's term first.")
        return redirect("renewals-agreement", pk=p.pk)
    try:
        review = services.review_open(by=request.user, term=term)
    except ValidationError as exc:
        existing = ValueReview.objects.visible_to(request.user).filter(term=term).first()
        if existing is not None:
            return redirect("renewals-review", pk=existing.pk)
        messages.error(request, " ".join(exc.messages))
        return redirect("renewals-agreement", pk=p.pk)
    messages.success(request, "The value review is open.")
    return redirect("renewals-review", pk=review.pk)


# --- The value review ------------------------------------------------------------------------


def _review(request: HttpRequest, pk: Any) -> ValueReview:
    return get_visible(
        ValueReview.objects.visible_to(request.user).select_related(
            "term",
            "partnership",
            "partnership__school",
            "school",
            "supplier",
            "decided_by",
            "opened_by",
        ),
        pk,
    )


def _is_lead(user: Any, review: ValueReview) -> bool:
    s = scope_for(user)
    return s.leads_school(review.school_id) or review.school_id in s.trust_school_ids


def _review_page(
    request: HttpRequest,
    review: ValueReview,
    *,
    decide_form: DecideForm | None = None,
    survey_form: SurveyForm | None = None,
    confirming: bool = False,
    status: int = 200,
) -> HttpResponse:
    ctx = review_context(review, user=request.user)
    lead = _is_lead(request.user, review)
    is_open = review.status == ValueReview.Status.OPEN
    ctx |= {
        "is_lead": lead,
        "can_decide": lead and is_open,
        "can_survey": lead and is_open and ctx["survey"] is not None,
        "decide_form": decide_form or DecideForm(),
        "survey_form": survey_form or SurveyForm(),
        "confirming": confirming,
    }
    return render(request, "frontend/renewals/review.html", ctx, status=status)


@role_required(LEADS, SUPPLIER)
@require_GET
def review_detail(request: HttpRequest, pk: int) -> HttpResponse:
    return _review_page(request, _review(request, pk))


@role_required(LEADS)
@require_POST
def review_decide(request: HttpRequest, pk: int) -> HttpResponse:
    review = _review(request, pk)
    if not _is_lead(request.user, review):
        raise PermissionDenied("Only the school's lead decides the renewal.")
    form = DecideForm(request.POST)
    if not form.is_valid():
        return _review_page(request, review, decide_form=form, status=FORM_ERROR)
    d = form.cleaned_data
    if d["decision"] == ValueReview.Decision.RENEW_WITH_CHANGES and not d["changes_agreed"]:
        form.add_error("changes_agreed", "Say which changes were agreed.")
        return _review_page(request, review, decide_form=form, status=FORM_ERROR)
    action = request.POST.get("action")
    if action == "edit":  # back from the confirm step, answers kept
        return _review_page(request, review, decide_form=DecideForm(initial=d))
    if not d["confirmed"] or action != "confirm":
        # The confirm step: the same answers, shown back, submitted again to record them.
        confirm = DecideForm(initial={**d, "confirmed": True})
        return _review_page(request, review, decide_form=confirm, confirming=True)
    try:
        services.review_decide(
            by=request.user,
            review=review,
            decision=d["decision"],
            reason=d["decision_reason"],
            changes_agreed=d["changes_agreed"],
            next_ends_on=d["next_ends_on"],
            annual_value=d["annual_value"],
        )
    except ValidationError as exc:
        add_service_errors(form, exc)
        return _review_page(request, review, decide_form=form, status=FORM_ERROR)
    messages.success(request, "The decision is recorded; the supplier sees it now.")
    return redirect("renewals-review", pk=review.pk)


@role_required(LEADS)
@require_POST
def review_survey(request: HttpRequest, pk: int) -> HttpResponse:
    review = _review(request, pk)
    if not _is_lead(request.user, review):
        raise PermissionDenied("Only the school's lead sends the staff survey.")
    form = SurveyForm(request.POST)
    if not form.is_valid():
        return _review_page(request, review, survey_form=form, status=FORM_ERROR)
    try:
        from renewals.survey import survey_send
    except ImportError:  # pragma: no cover
        raise Http404 from None
    d = form.cleaned_data
    try:
        sent = survey_send(
            by=request.user,
            review=review,
            tag=d["tag"] if d["audience"] == "tag" else "",
            message=d["message"],
        )
    except ValidationError as exc:
        add_service_errors(form, exc)
        return _review_page(request, review, survey_form=form, status=FORM_ERROR)
    if sent:
        messages.success(
            request,
            f"The survey goes to {len(sent)} member{'s' if len(sent) != 1 else ''} of staff, "
            "within the school's send hours.",
        )
    else:
        messages.warning(
            request,
            "Nobody new to ask: everyone in that group has been asked already, has stopped "
            f"{review.supplier.name}'s emails, or has no address.",
        )
    return redirect("renewals-review", pk=review.pk)


@role_required(LEADS, SUPPLIER)
@require_GET
def review_pack(request: HttpRequest, pk: int) -> HttpResponse:
    review = _review(request, pk)
    pdf = review_pdf(review, user=request.user)
    response = HttpResponse(pdf, content_type="application/pdf")
    response["Content-Disposition"] = f'attachment; filename="{pack_filename(review)}"'
    response["Cache-Control"] = "private, no-store"
    return response
