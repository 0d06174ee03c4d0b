"""Trial phases on the account manager's pages: the list on a partnership's page, a phase
with its criteria (evaluated, then decided), and planning a new phase.

The services in ``accounts.services`` decide every rule (who may write, expand needs every
criterion evaluated, a phase is decided once, extend needs a later end, stop ends the
partnership); these views parse the forms and show a refusal on the form (422). Every row
is read through its model's ``visible_to``: a partnership of another supplier, or a phase
of another partnership than the one in the URL, is 404.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.core.cache import cache
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Prefetch, QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.models import Contact, Partnership, Stage, TrialPhase, User
from accounts.scoping import scope_for
from accounts.services import (
    EXPANDS_TO,
    FINAL_DECISIONS,
    PHASE_STAGE,
    trial_phase_create,
    trial_phase_decide,
    trial_phase_evaluate,
    trial_phase_warnings,
)

from ..forms import DecidePhaseForm, EvaluatePhaseForm, PlanPhaseForm, add_service_errors
from ..roles import SUPPLIER, get_visible, role_required
from ..selectors import supplier_partnerships
from .common import FORM_ERROR

logger = logging.getLogger(__name__)

# How long a plan-a-phase form's token is remembered (a double submit comes within seconds).
PLAN_ONCE_SECONDS = 3600


@dataclass
class PhaseRow:
    """A phase as the pages list it; counts read from prefetched rows (no query per row)."""

    phase: TrialPhase
    cohort: list[Contact]
    criteria: list[Any]
    warnings: list[str]
    decided: bool  # a final decision (continue, expand, stop); "extend" leaves it open
    due: bool  # still open and past its end date

    @property
    def evaluated(self) -> int:
        return sum(1 for c in self.criteria if c.evaluation)

    @property
    def unmet(self) -> list[Any]:
        """Criteria rated "not met": expanding anyway needs a reason the school sees."""
        return [c for c in self.criteria if c.evaluation == "not_met"]


def _phases(user: User) -> QuerySet[TrialPhase]:
    """Phases the user may see, with their cohort (only contacts the user may see) and
    criteria prefetched: a fixed number of queries however many there are."""
    return (
        TrialPhase.objects.visible_to(user)
        .select_related("decided_by")
        .prefetch_related(
            Prefetch("cohort", queryset=Contact.objects.visible_to(user)),
            "criteria",
        )
    )


def _row(phase: TrialPhase) -> PhaseRow:
    decided = phase.decision in FINAL_DECISIONS
    return PhaseRow(
        phase=phase,
        cohort=list(phase.cohort.all()),
        criteria=list(phase.criteria.all()),
        warnings=trial_phase_warnings(phase),
        decided=decided,
        due=not decided and phase.end_date < timezone.localdate(),
    )


def phase_rows(user: User, partnership: Partnership) -> list[PhaseRow]:
    """The partnership page's "Trial phases" section, latest first."""
    phases = _phases(user).filter(partnership=partnership).order_by("-start_date", "-id")
    return [_row(phase) for phase in phases]


def _partnership(request: HttpRequest, pk: int) -> Partnership:
    """A partnership of the user's supplier, or 404."""
    return get_visible(supplier_partnerships(request.user), pk)


def _phase(request: HttpRequest, p: Partnership, phase_pk: int) -> TrialPhase:
    """A phase of this partnership, or 404 (another partnership's phase included)."""
    return get_visible(_phases(request.user).filter(partnership=p), phase_pk)


def _decide_form(phase: TrialPhase, data: Any = None) -> DecidePhaseForm:
    expands_to = EXPANDS_TO.get(phase.kind)
    return DecidePhaseForm(data, expands_to=str(Stage(expands_to).label) if expands_to else "")


def _can_manage(request: HttpRequest, p: Partnership) -> bool:
    return scope_for(request.user).manages_supplier(p.supplier_id)


def _require_manager(request: HttpRequest, p: Partnership) -> None:
    """The services refuse the same people; refusing before the form is read answers a
    plain 403 whatever was posted."""
    if not _can_manage(request, p):
        raise PermissionDenied("Only the supplier's admins and account managers may do this.")


# --- A phase --------------------------------------------------------------------------------


def _phase_context(
    request: HttpRequest,
    p: Partnership,
    phase: TrialPhase,
    evaluate_form: EvaluatePhaseForm | None = None,
    decide_form: DecidePhaseForm | None = None,
) -> dict[str, Any]:
    row = _row(phase)
    can_write = _can_manage(request, p) and not row.decided
    # When the forms are not shown (a decided phase, a read-only user), a refused post's
    # errors are listed above the record instead.
    refused = [
        str(message)
        for form in (evaluate_form, decide_form)
        if form is not None and form.errors
        for messages_ in form.errors.values()
        for message in messages_
    ]
    return {
        "p": p,
        "phase": phase,
        "row": row,
        "can_write": can_write,
        "refused": refused if not can_write else [],
        "phase_stage": str(Stage(PHASE_STAGE[phase.kind]).label),
        "evaluate_form": evaluate_form
        or EvaluatePhaseForm(criteria=row.criteria, initial={"impact": phase.impact}),
        "decide_form": decide_form or _decide_form(phase),
    }


@role_required(SUPPLIER)
@require_GET
def phase_detail(request: HttpRequest, pk: int, phase_pk: int) -> HttpResponse:
    p = _partnership(request, pk)
    phase = _phase(request, p, phase_pk)
    return render(request, "frontend/supplier/phase.html", _phase_context(request, p, phase))


@role_required(SUPPLIER)
@require_POST
def phase_evaluate(request: HttpRequest, pk: int, phase_pk: int) -> HttpResponse:
    p = _partnership(request, pk)
    phase = _phase(request, p, phase_pk)
    _require_manager(request, p)
    criteria = list(phase.criteria.all())
    form = EvaluatePhaseForm(request.POST, criteria=criteria, initial={"impact": phase.impact})
    if form.is_valid():
        changed, impact = form.changes(phase)
        try:
            trial_phase_evaluate(phase=phase, by=request.user, criteria=changed, impact=impact)
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            messages.success(request, "Evaluation saved.")
            return redirect("phase", pk=p.pk, phase_pk=phase.pk)
    return render(
        request,
        "frontend/supplier/phase.html",
        _phase_context(request, p, phase, evaluate_form=form),
        status=FORM_ERROR,
    )


@role_required(SUPPLIER)
@require_POST
def phase_decide(request: HttpRequest, pk: int, phase_pk: int) -> HttpResponse:
    p = _partnership(request, pk)
    phase = _phase(request, p, phase_pk)
    _require_manager(request, p)
    form = _decide_form(phase, request.POST)
    if form.is_valid():
        d = form.cleaned_data
        try:
            decided = trial_phase_decide(
                phase=phase,
                by=request.user,
                decision=d["decision"],
                notes=d["notes"],
                end_date=d["end_date"],
                unmet_criteria_reason=d["unmet_criteria_reason"],
            )
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            messages.success(request, _decided_note(decided))
            return redirect("phase", pk=p.pk, phase_pk=phase.pk)
    return render(
        request,
        "frontend/supplier/phase.html",
        _phase_context(request, p, phase, decide_form=form),
        status=FORM_ERROR,
    )


def _decided_note(phase: TrialPhase) -> str:
    kind = str(phase.get_kind_display()).lower()
    if phase.decision == TrialPhase.Decision.EXTEND:
        return f"The {kind} phase is extended to {phase.end_date:%-d %B %Y}."
    if phase.decision == TrialPhase.Decision.EXPAND:
        stage = str(Stage(EXPANDS_TO[phase.kind]).label).lower()
        return f"Decision recorded: expand. The partnership moved to {stage}."
    if phase.decision == TrialPhase.Decision.STOP:
        return "Decision recorded: stop. The partnership has ended."
    return "Decision recorded: continue."


# --- Planning a phase -------------------------------------------------------------------------


def _plan_form(request: HttpRequest, p: Partnership, data: Any = None) -> PlanPhaseForm:
    contacts = Contact.objects.visible_to(request.user).filter(school_id=p.school_id)
    kind = next((k for k, stage in PHASE_STAGE.items() if stage == p.stage), None)
    initial = {"kind": kind or TrialPhase.Kind.PILOT, "start_date": timezone.localdate()}
    return PlanPhaseForm(
        data, contacts=contacts, warn_size=settings.PILOT_COHORT_WARN_SIZE, initial=initial
    )


@role_required(SUPPLIER)
@require_http_methods(["GET", "POST"])
def phase_new(request: HttpRequest, pk: int) -> HttpResponse:
    p = _partnership(request, pk)
    _require_manager(request, p)
    form = _plan_form(request, p, request.POST if request.method == "POST" else None)
    if form.is_bound and form.is_valid():
        d = form.cleaned_data
        once = f"phase-form:{request.user.pk}:{d['token']}"
        if not _first_submit(once):
            earlier = cache.get(once)
            if earlier:  # the same form, already planned: show that phase
                return redirect("phase", pk=p.pk, phase_pk=earlier)
            form.add_error(None, "This form is being saved already; wait a moment.")
            return _plan_page(request, p, form)
        try:
            phase = trial_phase_create(
                by=request.user,
                partnership=p,
                cohort=list(d["cohort"]),
                criteria=d["criteria"],
                kind=d["kind"],
                start_date=d["start_date"],
                end_date=d["end_date"],
                intent=d["intent"],
                implementation=d["implementation"],
            )
        except ValidationError as exc:
            _remember(once, None)  # nothing was planned: the corrected form may be sent again
            add_service_errors(form, exc)
        else:
            _remember(once, phase.pk)
            messages.success(request, f"{phase.get_kind_display()} phase planned.")
            return redirect("phase", pk=p.pk, phase_pk=phase.pk)
    return _plan_page(request, p, form)


def _first_submit(key: str) -> bool:
    """Whether this is the form's first submit. Without the cache (it is down), every
    submit counts as a first one: planning must not fail for want of the guard."""
    try:
        return bool(cache.add(key, 0, PLAN_ONCE_SECONDS))
    except Exception:
        logger.warning("cache unavailable: a double submit of a phase form is not caught")
        return True


def _remember(key: str, phase_pk: int | None) -> None:
    try:
        if phase_pk is None:
            cache.delete(key)
        else:
            cache.set(key, phase_pk, PLAN_ONCE_SECONDS)
    except Exception:  # as in _first_submit
        logger.warning("cache unavailable: a double submit of a phase form is not caught")


def _plan_page(request: HttpRequest, p: Partnership, form: PlanPhaseForm) -> HttpResponse:
    return render(
        request,
        "frontend/supplier/phase_new.html",
        {"p": p, "form": form, "no_staff": not form.fields["cohort"].queryset.exists()},
        status=FORM_ERROR if form.is_bound else 200,
    )
