"""The audit trail: ``GET /api/v1/audit-trail/`` and the page ``/audit/`` (read-only)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any
from urllib.parse import urlencode

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from audit.models import Channel

from .trail import KINDS, Filters, may_read, parse_filters, trail

PAGE_SIZE = 50
MAX_PAGE_SIZE = 200
MAX_PAGE = 1_000_000


class ChangeSerializer(serializers.Serializer):
    field = serializers.CharField()
    label = serializers.CharField()
    before = serializers.CharField(allow_null=True)
    after = serializers.CharField(allow_null=True)


class EntrySerializer(serializers.Serializer):
    when = serializers.DateTimeField()
    who = serializers.CharField(help_text='The user\'s name, or "system: <task name>".')
    user_id = serializers.IntegerField(allow_null=True)
    channel = serializers.ChoiceField(choices=Channel.choices)
    via = serializers.CharField(help_text="The task, command or URL name of the change.")
    action = serializers.ChoiceField(choices=["created", "changed", "deleted"])
    kind = serializers.ChoiceField(choices=list(KINDS))
    kind_label = serializers.CharField()
    object_id = serializers.IntegerField()
    label = serializers.CharField()
    link = serializers.CharField(help_text="The page of this record's own history.")
    reason = serializers.CharField()
    changes = ChangeSerializer(many=True)


class AuditTrailPageSerializer(serializers.Serializer):
    count = serializers.IntegerField(help_text="Entries in your scope, up to 1,000.")
    count_capped = serializers.BooleanField(help_text="True when there are more.")
    next = serializers.CharField(allow_null=True)
    previous = serializers.CharField(allow_null=True)
    results = EntrySerializer(many=True)


def _page_args(params: Any) -> tuple[int, int]:
    errors = {}
    page, size = 1, PAGE_SIZE
    raw_page, raw_size = params.get("page") or "1", params.get("page_size") or str(PAGE_SIZE)
    if not raw_page.isdigit() or not 1 <= int(raw_page[:8]) <= MAX_PAGE:
        errors["page"] = f"A whole number from 1 to {MAX_PAGE:,}."
    else:
        page = int(raw_page)
    if not raw_size.isdigit() or not 1 <= int(raw_size[:8]) <= MAX_PAGE_SIZE:
        errors["page_size"] = f"A whole number from 1 to {MAX_PAGE_SIZE}."
    else:
        size = int(raw_size)
    if errors:
        raise ValidationError(errors)
    return page, size


def _other_page(request: Any, params: Any, number: int | None) -> str | None:
    if number is None:
        return None
    query = {k: v for k, v in params.items() if k != "page" and v}
    if number > 1:
        query["page"] = str(number)
    return request.build_absolute_uri(request.path + ("?" + urlencode(query) if query else ""))


class AuditTrailView(APIView):
    @extend_schema(
        summary="The audit trail of the records you may read",
        description=(
            "Who changed what, when and through which channel (page, API, admin, task, "
            "inbound email, command), newest first. School and trust leads: their schools' "
            "records (never a supplier's rules, templates or internal notes); supplier "
            "admins: their supplier's records, and contacts linked to their partnerships "
            "(name, email and role only). Everyone else: no entries. Read-only."
        ),
        parameters=[
            OpenApiParameter("kind", OpenApiTypes.STR, enum=list(KINDS)),
            OpenApiParameter("id", OpenApiTypes.INT, description="One record's id (with kind)."),
            OpenApiParameter("partnership", OpenApiTypes.INT),
            OpenApiParameter("user", OpenApiTypes.INT, description="Changes made by this user."),
            OpenApiParameter("date_from", OpenApiTypes.DATE),
            OpenApiParameter("date_to", OpenApiTypes.DATE, description="Inclusive."),
            OpenApiParameter("page", OpenApiTypes.INT),
            OpenApiParameter("page_size", OpenApiTypes.INT, description="Up to 200."),
        ],
        responses={200: AuditTrailPageSerializer},
    )
    def get(self, request: Request) -> Response:
        params = request.query_params
        try:
            filters = parse_filters(params)
            page, size = _page_args(params)
        except ValidationError as exc:
            raise serializers.ValidationError(exc.message_dict) from None
        result = trail(request.user, filters, page=page, page_size=size)
        return Response(
            {
                "count": result.count,
                "count_capped": result.count_capped,
                "next": _other_page(request, params, page + 1 if result.has_next else None),
                "previous": _other_page(request, params, page - 1 if page > 1 else None),
                "results": [asdict(e) | {"when": e.when.isoformat()} for e in result.entries],
            }
        )


@login_required
@require_GET
def audit_trail_page(request: HttpRequest) -> HttpResponse:
    if not may_read(request.user):
        raise PermissionDenied("The audit trail is for school, trust and supplier admins.")
    errors: dict[str, list[str]] = {}
    try:
        filters = parse_filters(request.GET)
        page, _ = _page_args(request.GET)
    except ValidationError as exc:
        errors, filters, page = exc.message_dict, Filters(), 1
    result = trail(request.user, filters, page=page, page_size=PAGE_SIZE)
    one_record = bool(filters.kind and filters.object_id is not None)
    return render(
        request,
        "privacy/trail.html",
        {
            "entries": result.entries,
            "count": result.count,
            "count_capped": result.count_capped,
            "errors": errors,
            "filters": filters,
            "params": request.GET,
            "kinds": [(k, str(m._meta.verbose_name).capitalize()) for k, m in KINDS.items()],
            "one_record": one_record,
            "next_url": _other_page(request, request.GET, page + 1 if result.has_next else None),
            "previous_url": _other_page(request, request.GET, page - 1 if page > 1 else None),
        },
        status=400 if errors else 200,
    )
