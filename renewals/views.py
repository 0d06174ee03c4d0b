"""API v1 for agreement terms and value reviews: parse -> service -> serialize."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db.models import F, QuerySet
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from partnership_crm.api import ScopedModelViewSet

from . import services
from .figures import review_figures
from .filters import AgreementTermFilter, ValueReviewFilter
from .models import AgreementTerm, ValueReview
from .serializers import (
    AgreementTermSerializer,
    DecideSerializer,
    ReviewCreateSerializer,
    SurveySendSerializer,
    SurveySentSerializer,
    TermCreateSerializer,
    TermUpdateSerializer,
    ValueReviewDetailSerializer,
    ValueReviewSerializer,
)

ERRORS = {
    400: OpenApiResponse(description="Invalid input: field errors."),
    403: OpenApiResponse(description="Your role may not do this."),
    404: OpenApiResponse(description="Not found, or outside your scope."),
}


class AgreementTermViewSet(ScopedModelViewSet):
    """A partnership's agreement, term by term: dates, notice period (``notice_on`` is the
    last day notice to end can be given), annual value, and the commitments as they stood
    when the term began. Seen by the supplier's staff and the school's leads; set by the
    supplier's admins and account managers or the school's lead."""

    queryset = AgreementTerm.objects.all()
    serializer_class = AgreementTermSerializer
    filterset_class = AgreementTermFilter
    ordering_fields = ["notice_on", "ends_on", "starts_on"]
    ordering = ["notice_on", "id"]
    http_method_names = ["get", "post", "patch", "head", "options"]

    def get_serializer_class(self) -> Any:
        return {
            "create": TermCreateSerializer,
            "partial_update": TermUpdateSerializer,
        }.get(self.action, AgreementTermSerializer)

    def optimise(self, queryset: QuerySet[AgreementTerm]) -> QuerySet[AgreementTerm]:
        return queryset.select_related("supplier", "school").annotate(review_pk=F("review__id"))

    def _detail(self, pk: int, code: int = status.HTTP_200_OK) -> Response:
        term = self.optimise(AgreementTerm.objects.filter(pk=pk)).get()
        return Response(AgreementTermSerializer(term).data, status=code)

    @extend_schema(request=TermCreateSerializer, responses={201: AgreementTermSerializer, **ERRORS})
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """The partnership's first term (or its next, once the last has been decided). A
        partnership with a current term changes it with PATCH."""
        s = self.get_serializer(data=request.data)
        s.is_valid(raise_exception=True)
        partnership = s.validated_data["partnership"]
        if AgreementTerm.objects.filter(
            partnership=partnership, status=AgreementTerm.Status.CURRENT
        ).exists():
            raise ValidationError(
                {"partnership": "This partnership has a current term: change it with PATCH."}
            )
        term = services.term_save(by=request.user, **s.validated_data)
        return self._detail(term.pk, status.HTTP_201_CREATED)

    @extend_schema(request=TermUpdateSerializer, responses={200: AgreementTermSerializer, **ERRORS})
    def partial_update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """Change the current term's dates, notice or annual value (a term whose renewal
        is decided no longer changes)."""
        term = self.get_object()
        s = self.get_serializer(data=request.data, partial=True)
        s.is_valid(raise_exception=True)
        if term.status != AgreementTerm.Status.CURRENT:
            raise ValidationError({"status": "Only the current term can change."})
        data = s.validated_data
        saved = services.term_save(
            by=request.user,
            partnership=term.partnership,
            starts_on=data.get("starts_on", term.starts_on),
            ends_on=data.get("ends_on", term.ends_on),
            notice_days=data.get("notice_days", term.notice_days),
            annual_value=data.get("annual_value", term.annual_value),
        )
        return self._detail(saved.pk)


def _survey_summary(review: ValueReview, user: Any) -> dict[str, Any]:
    from .survey import survey_summary  # renewals/survey.py

    return survey_summary(review, user=user)


class ValueReviewViewSet(ScopedModelViewSet):
    """The value review before a term's renewal: opened by either side (or automatically
    some weeks before the notice date), with the term's figures from the scorecards'
    definitions and the staff survey; decided by the school's lead. Lists carry no
    figures; one review carries them (live while open, as decided once decided)."""

    queryset = ValueReview.objects.all()
    filterset_class = ValueReviewFilter
    ordering_fields = ["opened_at", "decided_at"]
    ordering = ["-opened_at", "-id"]
    http_method_names = ["get", "post", "head", "options"]

    def get_serializer_class(self) -> Any:
        return {
            "list": ValueReviewSerializer,
            "create": ReviewCreateSerializer,
            "decide": DecideSerializer,
            "survey": SurveySendSerializer,
        }.get(self.action, ValueReviewDetailSerializer)

    def optimise(self, queryset: QuerySet[ValueReview]) -> QuerySet[ValueReview]:
        queryset = queryset.select_related("term", "supplier", "school")
        if self.action == "list":
            return queryset.defer("figures")
        return queryset.select_related("partnership")

    def get_serializer_context(self) -> dict[str, Any]:
        """What the detail serializer reads (the browsable API's forms build one too)."""
        user = self.request.user

        def figures(review: ValueReview) -> dict[str, Any]:
            if review.status == ValueReview.Status.DECIDED and review.figures is not None:
                return review.figures
            return review_figures(review, user=user)

        return {
            **super().get_serializer_context(),
            "figures": figures,
            "survey": lambda review: _survey_summary(review, user),
        }

    def _detail(self, pk: int, code: int = status.HTTP_200_OK) -> Response:
        review = self.optimise(ValueReview.objects.filter(pk=pk)).get()
        data = ValueReviewDetailSerializer(review, context=self.get_serializer_context()).data
        return Response(data, status=code)

    @extend_schema(responses=ValueReviewSerializer(many=True))
    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().list(request, *args, **kwargs)

    @extend_schema(responses={200: ValueReviewDetailSerializer, **ERRORS})
    def retrieve(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        review = self.get_object()
        return Response(
            ValueReviewDetailSerializer(review, context=self.get_serializer_context()).data
        )

    @extend_schema(
        request=ReviewCreateSerializer, responses={201: ValueReviewDetailSerializer, **ERRORS}
    )
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """Open the current term's review by hand (once per term): the supplier's admins
        and account managers or the school's lead."""
        s = self.get_serializer(data=request.data)
        s.is_valid(raise_exception=True)
        review = services.review_open(by=request.user, term=s.validated_data["term"])
        return self._detail(review.pk, status.HTTP_201_CREATED)

    @extend_schema(request=DecideSerializer, responses={200: ValueReviewDetailSerializer, **ERRORS})
    @action(detail=True, methods=["post"])
    def decide(self, request: Request, pk: str | None = None) -> Response:
        """The school's lead decides: renew (a new term from the day after this one ends),
        renew with the changes agreed, or end (the partnership moves to ended). The
        supplier sees the decision at once; the figures are kept as they stood."""
        review = self.get_object()
        s = DecideSerializer(data=request.data)
        s.is_valid(raise_exception=True)
        data = s.validated_data
        services.review_decide(
            by=request.user,
            review=review,
            decision=data["decision"],
            reason=data["decision_reason"],
            changes_agreed=data.get("changes_agreed", ""),
            next_ends_on=data.get("next_ends_on"),
            annual_value=data.get("annual_value"),
        )
        return self._detail(review.pk)

    @extend_schema(request=SurveySendSerializer, responses={200: SurveySentSerializer, **ERRORS})
    @action(detail=True, methods=["post"])
    def survey(self, request: Request, pk: str | None = None) -> Response:
        """Ask the staff "would you notice if it was gone?": the people named, those with
        a tag, or by default the partnership's cohort. Sent as nudges, within the send
        windows and limits; each person once per review."""
        from .survey import survey_send  # renewals/survey.py

        review = self.get_object()
        s = self.get_serializer(data=request.data)
        s.is_valid(raise_exception=True)
        data = s.validated_data
        contacts = data.get("contact_ids")
        invited = survey_send(
            by=request.user,
            review=review,
            contact_ids=[c.pk for c in contacts] if contacts is not None else None,
            tag=data.get("tag", ""),
            message=data.get("message", ""),
        )
        return Response({"invited": len(invited), "survey": _survey_summary(review, request.user)})
