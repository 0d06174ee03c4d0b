"""API v1 for visits, readiness and time: parse -> service -> serialize."""

from __future__ import annotations

from datetime import date
from typing import Any

from django.db.models import Prefetch, QuerySet
from django.http import Http404
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.models import Partnership
from partnership_crm.api import ScopedModelViewSet

from . import services
from .filters import FollowUpActionFilter, TimeEntryFilter, VisitFilter
from .hours import onsite_summary
from .models import FollowUpAction, ReadinessAssessment, TimeEntry, Visit
from .serializers import (
    ActionDoneSerializer,
    AssessmentSerializer,
    CancelSerializer,
    CompleteSerializer,
    DeleteReasonSerializer,
    FollowUpActionSerializer,
    OnsiteSummarySerializer,
    TimeEntrySerializer,
    VisitSerializer,
)

ERRORS = {
    400: OpenApiResponse(description="Invalid input: field errors."),
    403: OpenApiResponse(description="Your role may not do this."),
    404: OpenApiResponse(description="Not found, or outside your scope."),
}


class VisitViewSet(ScopedModelViewSet):
    """Technical surveys, training, on-site support and review meetings. Times are
    ISO 8601 with an offset; a time without one is read as UK time (Europe/London)."""

    queryset = Visit.objects.all()
    serializer_class = VisitSerializer
    filterset_class = VisitFilter
    ordering_fields = ["starts_at", "created_at", "kind", "status"]
    ordering = ["starts_at", "id"]
    http_method_names = ["get", "post", "patch", "head", "options"]

    def get_serializer_class(self) -> Any:
        return {
            "complete": CompleteSerializer,
            "cancel": CancelSerializer,
            "assessment": AssessmentSerializer,
        }.get(self.action, VisitSerializer)

    def optimise(self, queryset: QuerySet[Visit]) -> QuerySet[Visit]:
        assessments = ReadinessAssessment.objects.prefetch_related("checks", "actions")
        return queryset.select_related("school", "supplier").prefetch_related(
            Prefetch("attendees", queryset=_users()),
            "contacts",
            Prefetch("assessment", queryset=assessments),
        )

    def _detail(self, pk: int, code: int = 200) -> Response:
        visit = self.optimise(Visit.objects.filter(pk=pk)).get()
        return Response(
            VisitSerializer(visit, context=self.get_serializer_context()).data, status=code
        )

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        s = self.get_serializer(data=request.data)
        s.is_valid(raise_exception=True)
        visit = services.visit_create(by=request.user, **s.validated_data)
        return self._detail(visit.pk, status.HTTP_201_CREATED)

    def partial_update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        visit = self.get_object()
        s = self.get_serializer(visit, data=request.data, partial=True)
        s.is_valid(raise_exception=True)
        services.visit_update(visit=visit, by=request.user, **s.validated_data)
        return self._detail(visit.pk)

    @extend_schema(request=CompleteSerializer, responses={200: VisitSerializer, **ERRORS})
    @action(detail=True, methods=["post"])
    def complete(self, request: Request, pk: str | None = None) -> Response:
        """Mark the visit done; by default its length is recorded as on-site time."""
        visit = self.get_object()
        s = CompleteSerializer(data=request.data)
        s.is_valid(raise_exception=True)
        services.visit_complete(visit=visit, by=request.user, **s.validated_data)
        return self._detail(visit.pk)

    @extend_schema(request=CancelSerializer, responses={200: VisitSerializer, **ERRORS})
    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, pk: str | None = None) -> Response:
        """Cancel a planned visit, or record it as a no-show, with the reason."""
        visit = self.get_object()
        s = CancelSerializer(data=request.data)
        s.is_valid(raise_exception=True)
        services.visit_cancel(visit=visit, by=request.user, **s.validated_data)
        return self._detail(visit.pk)

    @extend_schema(request=AssessmentSerializer, responses={200: AssessmentSerializer, **ERRORS})
    @action(detail=True, methods=["post"])
    def assessment(self, request: Request, pk: str | None = None) -> Response:
        """Record a technical survey's readiness: checks per area (each replaces that
        area's earlier result), the outcome, and follow-up actions (added). The visit's
        detail shows the assessment."""
        visit = self.get_object()
        s = AssessmentSerializer(data=request.data)
        s.is_valid(raise_exception=True)
        services.assessment_save(visit=visit, by=request.user, **s.validated_data)
        found = ReadinessAssessment.objects.prefetch_related("checks", "actions").get(visit=visit)
        return Response(AssessmentSerializer(found).data)


def _users() -> QuerySet[Any]:
    from accounts.models import User

    return User.objects.only("id")


class FollowUpActionViewSet(ScopedModelViewSet):
    """Actions that came out of technical surveys, with owner and due date."""

    queryset = FollowUpAction.objects.all()
    serializer_class = FollowUpActionSerializer
    filterset_class = FollowUpActionFilter
    ordering_fields = ["due_on"]
    ordering = ["due_on", "id"]
    http_method_names = ["get", "patch", "head", "options"]

    @extend_schema(
        request=ActionDoneSerializer, responses={200: FollowUpActionSerializer, **ERRORS}
    )
    def partial_update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """Tick an action off (``{"done": true}``) or reopen it. Like any PATCH, a body
        without ``done`` changes nothing (the schema's patch makes every field optional)."""
        found = self.get_object()
        s = ActionDoneSerializer(data=request.data, partial=True)
        s.is_valid(raise_exception=True)
        if "done" in s.validated_data:
            found = services.follow_up_set_done(
                action=found, by=request.user, done=s.validated_data["done"]
            )
        return Response(FollowUpActionSerializer(found).data)

    def optimise(self, queryset: QuerySet[FollowUpAction]) -> QuerySet[FollowUpAction]:
        return queryset.select_related("assessment__visit")


class TimeEntryViewSet(ScopedModelViewSet):
    """Minutes of supplier time on a partnership, on site or remote."""

    queryset = TimeEntry.objects.all()
    serializer_class = TimeEntrySerializer
    filterset_class = TimeEntryFilter
    ordering_fields = ["date", "minutes", "created_at"]
    ordering = ["-date", "-id"]
    # Query parameters of collection actions that name an object (tenancy matrix).
    scoped_query_params = {"onsite_summary": {"partnership": Partnership}}

    def optimise(self, queryset: QuerySet[TimeEntry]) -> QuerySet[TimeEntry]:
        return queryset.select_related("user")

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        s = self.get_serializer(data=request.data)
        s.is_valid(raise_exception=True)
        s.validated_data.pop("reason", None)  # new time needs none
        entry = services.time_entry_create(by=request.user, **s.validated_data)
        return Response(self.get_serializer(entry).data, status=status.HTTP_201_CREATED)

    def partial_update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        entry = self.get_object()
        s = self.get_serializer(entry, data=request.data, partial=True)
        s.is_valid(raise_exception=True)
        entry = services.time_entry_update(entry=entry, by=request.user, **s.validated_data)
        return Response(self.get_serializer(entry).data)

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "reason",
                OpenApiTypes.STR,
                description="Required to delete a completed visit's on-site entry: recorded "
                "and shown to the school's leads (also accepted in a JSON body).",
            )
        ],
        responses={204: None, **ERRORS},
    )
    def destroy(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        entry = self.get_object()
        body = request.data if hasattr(request.data, "get") else {}
        s = DeleteReasonSerializer(
            data={"reason": body.get("reason") or request.query_params.get("reason", "")}
        )
        s.is_valid(raise_exception=True)
        services.time_entry_delete(entry=entry, by=request.user, reason=s.validated_data["reason"])
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        parameters=[
            OpenApiParameter("partnership", OpenApiTypes.INT, required=True),
            OpenApiParameter("on", OpenApiTypes.DATE, description="Default: today."),
        ],
        responses={200: OnsiteSummarySerializer, **ERRORS},
    )
    @action(detail=False, methods=["get"], url_path="onsite-summary", filter_backends=[])
    def onsite_summary(self, request: Request) -> Response:
        """On-site hours delivered this term against the agreement, and the shortfall,
        counted from the time entries and visits you may see (teachers see no time
        entries, so no delivered time)."""
        raw_id, raw_on = request.query_params.get("partnership"), request.query_params.get("on")
        errors = {}
        try:
            partnership_id = int(raw_id or "")
        except ValueError:
            errors["partnership"] = ["Give the partnership's id."]
        try:
            on = date.fromisoformat(raw_on) if raw_on else timezone.localdate()
        except ValueError:
            errors["on"] = ["Give a date as YYYY-MM-DD."]
        if errors:
            raise serializers.ValidationError(errors)
        partnership = (
            Partnership.objects.visible_to(request.user)
            .select_related("school")
            .filter(pk=partnership_id)
            .first()
        )
        if partnership is None:
            raise Http404
        return Response(
            OnsiteSummarySerializer(onsite_summary(partnership, on, user=request.user)).data
        )
