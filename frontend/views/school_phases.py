"""Trial phases as the school sees them: every supplier's pilot, expansion and
whole-school phases at the school, with each success criterion's rating and evidence and
the decision, including why a phase expanded although criteria were not met.

Read-only (the supplier plans, evaluates and decides; see ``phases``). School leads see
their school, trust leads each of the trust's schools (``?school=``); phases are read
through ``TrialPhase.objects.visible_to`` and another school is 404.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from accounts.models import TrialPhase

from ..roles import LEADS, role_required
from .phases import _phases, _row
from .school import _pick_school


@role_required(LEADS)
@require_GET
def school_phases(request: HttpRequest) -> HttpResponse:
    school, schools = _pick_school(request)
    phases = (
        _phases(request.user)
        .filter(partnership__school=school)
        .select_related("partnership__supplier")
        .order_by("-start_date", "-id")
    )
    rows = [_row(phase) for phase in phases]
    return render(
        request,
        "frontend/school/phases.html",
        {
            "school": school,
            "schools": schools,
            "rows": rows,
            "expand": TrialPhase.Decision.EXPAND,
        },
    )
