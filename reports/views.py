"""/api/v1/scorecards/ and /api/v1/portfolio/: reports built only from each model's
visible_to, as JSON or CSV (``?format=csv``)."""

from __future__ import annotations

import csv
import io
from datetime import date
from typing import Any

from django.http import Http404, HttpResponse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.renderers import BrowsableAPIRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import Organisation, Partnership
from accounts.scoping import scope_for
from partnership_crm.drf import CSVRenderer, csv_safe

from .portfolio import portfolio
from .scorecards import (
    BENCHMARK_CURRENT_MAX_AGE,
    BENCHMARK_PAST_MAX_AGE,
    FIGURES,
    MAX_MONTHS_BACK,
    Period,
    academic_year,
    period_problems,
    scorecard,
)

SCORECARD_DOC = (
    "Figures per supplier (or per school for a supplier's own view):\n\n"
    + "\n".join(f"- **{name}**: {text}" for name, text in FIGURES.items())
    + "\n\nA period is whole calendar months (`from` and `to` on the 1st, `to` "
    f"exclusive), from at most {MAX_MONTHS_BACK} months back to the end of this school "
    "year; any other period is a 400 naming the rule. The benchmark (the median supplier, "
    "when at least five have tickets) is computed at most every "
    f"{BENCHMARK_CURRENT_MAX_AGE.total_seconds() / 60:.0f} minutes for a period that reaches "
    f"into this month and every {BENCHMARK_PAST_MAX_AGE.total_seconds() / 3600:.0f} hours "
    "for an older one; its `computed_at` says when."
)


def _csv(rows: list[dict[str, Any]], filename: str) -> HttpResponse:
    buffer = io.StringIO()
    if rows:
        writer = csv.DictWriter(buffer, fieldnames=list(rows[0]))
        writer.writeheader()
        for row in rows:
            writer.writerow({k: csv_safe(v) for k, v in row.items()})
    response = HttpResponse(buffer.getvalue(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def _period(request: Request) -> Period:
    default = academic_year(timezone.localdate())
    errors = {}
    values = {}
    for name, fallback in (("from", default.start), ("to", default.end)):
        raw = request.query_params.get(name)
        try:
            values[name] = date.fromisoformat(raw) if raw else fallback
        except ValueError:
            errors[name] = ["Give a date as YYYY-MM-DD."]
    if errors:
        raise serializers.ValidationError(errors)
    period = Period(values["from"], values["to"])
    problems = period_problems(period, timezone.localdate())
    if problems:
        raise serializers.ValidationError(problems)
    return period


def _int_param(request: Request, name: str) -> int | None:
    raw = request.query_params.get(name)
    if raw in (None, ""):
        return None
    try:
        return int(raw)
    except ValueError:
        raise serializers.ValidationError({name: ["Give an id."]}) from None


def _wants_csv(request: Request) -> bool:
    return getattr(request.accepted_renderer, "format", "") == "csv"


class ScorecardView(APIView):
    renderer_classes = [JSONRenderer, BrowsableAPIRenderer, CSVRenderer]

    @extend_schema(
        description=SCORECARD_DOC,
        parameters=[
            OpenApiParameter(
                "school", OpenApiTypes.INT, description="A school you lead (or partner with)."
            ),
            OpenApiParameter("trust", OpenApiTypes.INT, description="A trust you lead."),
            OpenApiParameter(
                "by",
                OpenApiTypes.STR,
                enum=["supplier", "school"],
                description="Trusts: also per school.",
            ),
            OpenApiParameter(
                "from",
                OpenApiTypes.DATE,
                description="The 1st of a month, at most "
                f"{MAX_MONTHS_BACK} months before this one. Default: 1 September of this "
                "school year.",
            ),
            OpenApiParameter(
                "to",
                OpenApiTypes.DATE,
                description="Exclusive: the 1st of a month, by the end of this school year. "
                "Default: 1 September next.",
            ),
            OpenApiParameter("format", OpenApiTypes.STR, enum=["json", "csv"]),
        ],
        responses={200: OpenApiTypes.OBJECT},
    )
    def get(self, request: Request) -> Response | HttpResponse:
        """Supplier responsiveness, side by side. School leads: every supplier of their
        school. Trust leads: every supplier across the trust (``by=school`` also splits by
        school). Supplier staff: their own figures per school; never another supplier's."""
        user, s = request.user, scope_for(request.user)
        period = _period(request)
        school_id, trust_id = _int_param(request, "school"), _int_param(request, "trust")
        by_school = request.query_params.get("by") == "school"
        visible = Organisation.objects.visible_to(user)
        if school_id is not None and not visible.filter(pk=school_id, kind="school").exists():
            raise Http404
        if trust_id is not None and trust_id not in s.trust_ids | s.own_school_trust_ids:
            raise Http404
        schools: set[int] | None = None
        if trust_id is not None:
            schools = set(
                Organisation.objects.filter(trust_id=trust_id).values_list("id", flat=True)
            )
        if school_id is not None:
            schools = {school_id}
        if s.is_supplier_staff and not s.is_school_side:
            group = ["school_id"]
        elif by_school:
            group = ["supplier_id", "school_id"]
        else:
            group = ["supplier_id"]
        result = scorecard(user=user, period=period, group=group, school_ids=schools)
        names = dict(
            Organisation.objects.filter(
                pk__in={r.get("supplier_id") for r in result["rows"]}
                | {r.get("school_id") for r in result["rows"]}
            ).values_list("id", "name")
        )
        for row in [*result["rows"], *result["monthly"]]:
            for field in ("supplier_id", "school_id"):
                if field in row:
                    row[field.replace("_id", "_name")] = names.get(row[field], "")
        result["rows"].sort(key=lambda r: (r.get("supplier_name", ""), r.get("school_name", "")))
        if _wants_csv(request):
            return _csv(result["rows"], "scorecard.csv")
        return Response(
            {
                "period": {"from": period.start, "to": period.end},
                "grouped_by": group,
                **result,
                "definitions": FIGURES,
            }
        )


class PortfolioView(APIView):
    renderer_classes = [JSONRenderer, BrowsableAPIRenderer, CSVRenderer]

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "mine",
                OpenApiTypes.BOOL,
                description="Only partnerships you are account manager of.",
            ),
            OpenApiParameter("stage", OpenApiTypes.STR),
            OpenApiParameter(
                "ordering", OpenApiTypes.STR, enum=["health", "-health", "school", "stage"]
            ),
            OpenApiParameter("format", OpenApiTypes.STR, enum=["json", "csv"]),
        ],
        responses={200: OpenApiTypes.OBJECT},
    )
    def get(self, request: Request) -> Response | HttpResponse:
        """Each partnership you can see, with its health from 0 to 100 and the reasons that
        lowered it (see reports/portfolio.py for the formula)."""
        qs = Partnership.objects.visible_to(request.user).exclude(stage="ended")
        if request.query_params.get("mine") in ("1", "true"):
            qs = qs.filter(account_manager=request.user)
        stage = request.query_params.get("stage")
        if stage:
            qs = qs.filter(stage__in=stage.split(","))
        rows = portfolio(qs.select_related("school", "supplier"), user=request.user)
        ordering = request.query_params.get("ordering", "health")
        keys = {
            "health": lambda r: (r.health.score, r.partnership.school.name),
            "-health": lambda r: (-r.health.score, r.partnership.school.name),
            "school": lambda r: r.partnership.school.name,
            "stage": lambda r: (r.partnership.stage, r.partnership.school.name),
        }
        if ordering not in keys:
            raise serializers.ValidationError({"ordering": [f"One of {', '.join(keys)}."]})
        rows.sort(key=keys[ordering])
        data = [
            {
                "partnership": r.partnership.pk,
                "school": r.partnership.school_id,
                "school_name": r.partnership.school.name,
                "supplier_name": r.partnership.supplier.name,
                "stage": r.partnership.stage,
                "health": r.health.score,
                "health_reasons": r.health.reasons,
                "open_tickets": r.open_tickets,
                "breached_tickets": r.breached_tickets,
                "rating_average": r.rating_average,
                "onsite_hours_delivered": float(r.onsite.delivered_hours),
                "onsite_hours_expected_by_now": float(r.onsite.expected_by_now_hours),
                "onsite_hours_promised": float(r.onsite.promised_hours),
                "last_visit": r.last_visit,
                "next_visit": r.next_visit,
                "next_nudge": r.next_nudge,
                "last_contact": r.last_contact,
            }
            for r in rows
        ]
        if _wants_csv(request):
            return _csv(
                [{**d, "health_reasons": "; ".join(d["health_reasons"])} for d in data],
                "portfolio.csv",
            )
        return Response({"count": len(data), "results": data})
