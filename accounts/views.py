"""API v1 for accounts: parse -> service -> serialize. Rows come only through
``visible_to`` (see partnership_crm.api.ScopedViewSetMixin)."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import authenticate
from django.core.exceptions import PermissionDenied
from django.db.models import Prefetch, QuerySet
from drf_spectacular.utils import OpenApiResponse, extend_schema
from knox.models import AuthToken
from rest_framework import serializers, status
from rest_framework.decorators import action
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle
from rest_framework.views import APIView

from partnership_crm.api import ScopedModelViewSet

from . import services
from .filters import (
    ContactFilter,
    ContactNoteFilter,
    ContactProposalFilter,
    OrganisationFilter,
    PartnershipFilter,
    ProductFilter,
    TrialPhaseFilter,
)
from .models import (
    Contact,
    ContactProposal,
    Membership,
    Organisation,
    Partnership,
    Product,
    StageChange,
    SupplierContactNote,
    TrialPhase,
)
from .scoping import scope_for
from .serializers import (
    ContactProposalDeclineSerializer,
    ContactProposalSerializer,
    ContactSerializer,
    MeSerializer,
    OrganisationSerializer,
    PartnershipDetailSerializer,
    PartnershipSerializer,
    ProductSerializer,
    SchoolUpdateSerializer,
    SupplierContactNoteSerializer,
    TokenRequestSerializer,
    TokenResponseSerializer,
    TransitionSerializer,
    TrialPhaseDecisionSerializer,
    TrialPhaseEvaluateSerializer,
    TrialPhaseSerializer,
)

ERRORS = {
    400: OpenApiResponse(description="Invalid input: field errors."),
    403: OpenApiResponse(description="Your role may not do this."),
    404: OpenApiResponse(description="Not found, or outside your scope."),
}


class TokenView(APIView):
    """Exchange email and password for an API token (sent as ``Authorization: Token …``)."""

    authentication_classes: list[Any] = []
    permission_classes = [AllowAny]
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "auth"

    @extend_schema(
        request=TokenRequestSerializer,
        responses={200: TokenResponseSerializer, 400: ERRORS[400]},
    )
    def post(self, request: Request) -> Response:
        data = TokenRequestSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        user = authenticate(
            request=request._request,
            username=data.validated_data["email"].lower(),
            password=data.validated_data["password"],
        )
        if user is None or not user.is_active:
            raise serializers.ValidationError(
                {"non_field_errors": ["That email and password do not match an account."]}
            )
        instance, token = AuthToken.objects.create(user=user)
        return Response({"token": token, "expiry": instance.expiry})


class LogoutView(APIView):
    """Revoke the token this request was made with."""

    @extend_schema(request=None, responses={204: None})
    def post(self, request: Request) -> Response:
        if isinstance(request.auth, AuthToken):
            request.auth.delete()
        return Response(status=status.HTTP_204_NO_CONTENT)


class MeView(APIView):
    @extend_schema(responses=MeSerializer)
    def get(self, request: Request) -> Response:
        user = request.user
        memberships = Membership.objects.filter(user=user).select_related("organisation")
        user._prefetched_objects_cache = {"memberships": memberships}  # type: ignore[union-attr]
        return Response(MeSerializer(user).data)


class OrganisationViewSet(ScopedModelViewSet):
    """Your own organisations, your partners, and (for supplier staff) the school directory.
    A school's lead may PATCH its ``nation`` (whose bank holidays its clock keeps)."""

    queryset = Organisation.objects.all()
    serializer_class = OrganisationSerializer
    filterset_class = OrganisationFilter
    search_fields = ["name", "urn", "postcode", "local_authority"]
    ordering_fields = ["name", "urn", "kind", "local_authority", "created_at"]
    ordering = ["name", "id"]
    http_method_names = ["get", "patch", "head", "options"]

    def get_serializer_class(self) -> type[serializers.BaseSerializer]:
        if self.action == "partial_update":
            return SchoolUpdateSerializer
        return OrganisationSerializer

    @extend_schema(
        request=SchoolUpdateSerializer, responses={200: OrganisationSerializer, **ERRORS}
    )
    def partial_update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        school = self.get_object()
        services.require_school_lead(request.user, school)
        s = SchoolUpdateSerializer(data=request.data)
        s.is_valid(raise_exception=True)
        school = services.school_update(school=school, by=request.user, **s.validated_data)
        return Response(OrganisationSerializer(school, context=self.get_serializer_context()).data)


class ContactViewSet(ScopedModelViewSet):
    """School staff. A school lead sees and controls all of their school's staff; a
    supplier sees only the people linked to its own partnerships."""

    queryset = Contact.objects.all()
    serializer_class = ContactSerializer
    filterset_class = ContactFilter
    search_fields = ["first_name", "last_name", "email", "job_title"]
    ordering_fields = ["last_name", "first_name", "email", "created_at"]
    ordering = ["last_name", "first_name", "id"]

    def optimise(self, queryset: QuerySet[Contact]) -> QuerySet[Contact]:
        return queryset.distinct() if "partnership" in self.request.query_params else queryset

    @extend_schema(responses={201: ContactSerializer, **ERRORS})
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        s = self.get_serializer(data=request.data)
        s.is_valid(raise_exception=True)
        contact = services.contact_create(by=request.user, **s.validated_data)
        return Response(self.get_serializer(contact).data, status=status.HTTP_201_CREATED)

    def partial_update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        contact = self.get_object()
        s = self.get_serializer(contact, data=request.data, partial=True)
        s.is_valid(raise_exception=True)
        contact = services.contact_update(contact=contact, by=request.user, **s.validated_data)
        return Response(self.get_serializer(contact).data)

    def destroy(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        services.contact_delete(contact=self.get_object(), by=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class ContactProposalViewSet(ScopedModelViewSet):
    """People a supplier proposes as contacts of its partnership. The school's record is
    the school's: its lead accepts (creating the contact, or linking the one the school
    already holds for the address, shown to the lead as ``existing_contact``) or declines
    with an optional reason. The supplier sees the status; nobody is emailed."""

    queryset = ContactProposal.objects.all()
    serializer_class = ContactProposalSerializer
    filterset_class = ContactProposalFilter
    ordering_fields = ["proposed_at", "decided_at", "last_name", "status"]
    ordering = ["-proposed_at", "id"]
    http_method_names = ["get", "post", "head", "options"]

    def get_serializer_class(self) -> type[serializers.BaseSerializer]:
        if self.action == "decline":
            return ContactProposalDeclineSerializer
        if self.action == "accept":
            return serializers.Serializer
        return ContactProposalSerializer

    def optimise(self, queryset: QuerySet[ContactProposal]) -> QuerySet[ContactProposal]:
        return queryset.select_related("partnership__supplier", "proposed_by")

    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        queryset = self.filter_queryset(self.get_queryset())
        page = self.paginate_queryset(queryset)
        rows = list(page if page is not None else queryset)
        # The school's existing records for the page's pending addresses, in one query
        # (only for the schools whose records the user reads in full).
        schools = scope_for(request.user).all_school_ids
        pending = [r for r in rows if r.status == "pending" and r.partnership.school_id in schools]
        existing = {
            (c.school_id, c.email): c
            for c in Contact.objects.visible_to(request.user).filter(
                school_id__in={r.partnership.school_id for r in pending},
                email__in={r.email for r in pending},
            )
        }
        context = {**self.get_serializer_context(), "existing_contacts": existing}
        data = ContactProposalSerializer(rows, many=True, context=context).data
        return self.get_paginated_response(data) if page is not None else Response(data)

    @extend_schema(responses={201: ContactProposalSerializer, **ERRORS})
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        s = self.get_serializer(data=request.data)
        s.is_valid(raise_exception=True)
        proposal = services.contact_proposal_create(by=request.user, **s.validated_data)
        return Response(self._detail(proposal.pk), status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses={200: ContactProposalSerializer, **ERRORS})
    @action(detail=True, methods=["post"])
    def accept(self, request: Request, pk: str | None = None) -> Response:
        """The school's lead accepts: the contact is created (or the school's existing
        record for the address linked) and linked to the partnership."""
        proposal = services.contact_proposal_accept(proposal=self.get_object(), by=request.user)
        return Response(self._detail(proposal.pk))

    @extend_schema(
        request=ContactProposalDeclineSerializer,
        responses={200: ContactProposalSerializer, **ERRORS},
    )
    @action(detail=True, methods=["post"])
    def decline(self, request: Request, pk: str | None = None) -> Response:
        """The school's lead declines, optionally saying why (the supplier sees it)."""
        proposal = self.get_object()
        s = ContactProposalDeclineSerializer(data=request.data)
        s.is_valid(raise_exception=True)
        proposal = services.contact_proposal_decline(
            proposal=proposal, by=request.user, reason=s.validated_data.get("reason", "")
        )
        return Response(self._detail(proposal.pk))

    def _detail(self, pk: int) -> Any:
        fresh = self.optimise(ContactProposal.objects.filter(pk=pk)).get()
        return ContactProposalSerializer(fresh, context=self.get_serializer_context()).data


class SupplierContactNoteViewSet(ScopedModelViewSet):
    """A supplier's own notes about the contacts it works with, one per contact: read and
    written by its staff only, never by the school or another supplier."""

    queryset = SupplierContactNote.objects.all()
    serializer_class = SupplierContactNoteSerializer
    filterset_class = ContactNoteFilter
    ordering_fields = ["updated_at", "created_at"]
    ordering = ["-updated_at", "id"]

    def optimise(self, queryset: QuerySet[SupplierContactNote]) -> QuerySet[SupplierContactNote]:
        return queryset.select_related("updated_by")

    def _require_supplier_staff(self) -> None:
        if not scope_for(self.request.user).is_supplier_staff:
            raise PermissionDenied("Only supplier staff keep notes on contacts.")

    @extend_schema(responses={201: SupplierContactNoteSerializer, **ERRORS})
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        self._require_supplier_staff()
        s = self.get_serializer(data=request.data)
        s.is_valid(raise_exception=True)
        note = services.contact_note_create(by=request.user, **s.validated_data)
        return Response(self.get_serializer(note).data, status=status.HTTP_201_CREATED)

    def partial_update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        note = self.get_object()
        s = self.get_serializer(note, data=request.data, partial=True)
        s.is_valid(raise_exception=True)
        body = s.validated_data.get("body", note.body)
        note = services.contact_note_update(note=note, by=request.user, body=body)
        return Response(self.get_serializer(note).data)

    def destroy(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        services.contact_note_delete(note=self.get_object(), by=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class ProductViewSet(ScopedModelViewSet):
    queryset = Product.objects.all()
    serializer_class = ProductSerializer
    filterset_class = ProductFilter
    search_fields = ["name", "description"]
    ordering_fields = ["name", "created_at"]
    ordering = ["name", "id"]

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        s = self.get_serializer(data=request.data)
        s.is_valid(raise_exception=True)
        product = services.product_create(by=request.user, **s.validated_data)
        return Response(self.get_serializer(product).data, status=status.HTTP_201_CREATED)

    def partial_update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        product = self.get_object()
        s = self.get_serializer(product, data=request.data, partial=True)
        s.is_valid(raise_exception=True)
        product = services.product_update(product=product, by=request.user, **s.validated_data)
        return Response(self.get_serializer(product).data)

    def destroy(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        services.product_delete(product=self.get_object(), by=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class PartnershipViewSet(ScopedModelViewSet):
    """Supplier × school partnerships with their agreement. The stage moves only through
    the ``transition`` action, which enforces the stage machine and the pilot gate."""

    queryset = Partnership.objects.all()
    filterset_class = PartnershipFilter
    search_fields = ["school__name", "school__urn", "supplier__name"]
    ordering_fields = [
        "school__name",
        "supplier__name",
        "stage",
        "stage_changed_at",
        "contract_end",
        "created_at",
        "updated_at",
    ]
    ordering = ["-updated_at", "id"]
    http_method_names = ["get", "post", "patch", "head", "options"]

    def get_serializer_class(self) -> type[serializers.BaseSerializer]:
        if self.action == "transition":
            return TransitionSerializer
        if self.action == "list":
            return PartnershipSerializer
        return PartnershipDetailSerializer

    def optimise(self, queryset: QuerySet[Partnership]) -> QuerySet[Partnership]:
        queryset = queryset.select_related("supplier", "school", "account_manager")
        changes = StageChange.objects.select_related("by")
        if self.action == "list":
            changes = changes.filter(is_override=True)
        return queryset.prefetch_related(
            Prefetch("products", queryset=Product.objects.only("id")),
            Prefetch("stage_changes", queryset=changes),
        )

    @extend_schema(responses={201: PartnershipDetailSerializer, **ERRORS})
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        s = PartnershipSerializer(data=request.data, context=self.get_serializer_context())
        s.is_valid(raise_exception=True)
        p = services.partnership_create(by=request.user, **s.validated_data)
        return Response(self._detail(p.pk), status=status.HTTP_201_CREATED)

    def partial_update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        p = self.get_object()
        s = PartnershipSerializer(
            p, data=request.data, partial=True, context=self.get_serializer_context()
        )
        s.is_valid(raise_exception=True)
        services.partnership_update(partnership=p, by=request.user, **s.validated_data)
        return Response(self._detail(p.pk))

    @extend_schema(
        request=TransitionSerializer,
        responses={
            200: PartnershipDetailSerializer,
            400: OpenApiResponse(
                description="Refused: `stage` says why, `allowed_stages` lists where it may go."
            ),
            403: ERRORS[403],
            404: ERRORS[404],
        },
    )
    @action(detail=True, methods=["post"])
    def transition(self, request: Request, pk: str | None = None) -> Response:
        """Move the partnership to another stage."""
        p = self.get_object()
        s = TransitionSerializer(data=request.data)
        s.is_valid(raise_exception=True)
        services.partnership_transition(
            partnership=p,
            to_stage=s.validated_data["stage"],
            override_reason=s.validated_data.get("override_reason", ""),
            by=request.user,
        )
        return Response(self._detail(p.pk))

    def _detail(self, pk: int) -> Any:
        fresh = self.optimise(Partnership.objects.filter(pk=pk)).get()
        return PartnershipDetailSerializer(fresh, context=self.get_serializer_context()).data


class TrialPhaseViewSet(ScopedModelViewSet):
    """Pilot, expansion and whole-school phases of a partnership. The supplier's admins
    and account managers plan them, rate each success criterion with evidence
    (``evaluate``) and record the decision (``decide``), which moves the partnership's
    stage: expand goes pilot -> expansion -> whole_school, stop ends the partnership."""

    queryset = TrialPhase.objects.all()
    serializer_class = TrialPhaseSerializer
    filterset_class = TrialPhaseFilter
    ordering_fields = ["start_date", "end_date", "created_at"]
    ordering = ["start_date", "id"]
    http_method_names = ["get", "post", "patch", "head", "options"]

    def get_serializer_class(self) -> type[serializers.BaseSerializer]:
        if self.action == "evaluate":
            return TrialPhaseEvaluateSerializer
        if self.action == "decide":
            return TrialPhaseDecisionSerializer
        return TrialPhaseSerializer

    def optimise(self, queryset: QuerySet[TrialPhase]) -> QuerySet[TrialPhase]:
        return queryset.select_related("partnership", "decided_by").prefetch_related(
            "criteria", Prefetch("cohort", queryset=Contact.objects.only("id"))
        )

    @extend_schema(responses={201: TrialPhaseSerializer, **ERRORS})
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        s = self.get_serializer(data=request.data)
        s.is_valid(raise_exception=True)
        phase = services.trial_phase_create(by=request.user, **s.validated_data)
        return Response(self._detail(phase.pk), status=status.HTTP_201_CREATED)

    def partial_update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        phase = self.get_object()
        s = self.get_serializer(phase, data=request.data, partial=True)
        s.is_valid(raise_exception=True)
        services.trial_phase_update(phase=phase, by=request.user, **s.validated_data)
        return Response(self._detail(phase.pk))

    @extend_schema(
        request=TrialPhaseEvaluateSerializer,
        responses={200: TrialPhaseSerializer, **ERRORS},
    )
    @action(detail=True, methods=["post"])
    def evaluate(self, request: Request, pk: str | None = None) -> Response:
        """Rate success criteria of this phase (met, partly met, not met), each with the
        evidence for it, and optionally record the impact. Until the phase is decided."""
        phase = self.get_object()
        s = TrialPhaseEvaluateSerializer(data=request.data)
        s.is_valid(raise_exception=True)
        services.trial_phase_evaluate(phase=phase, by=request.user, **s.validated_data)
        return Response(self._detail(phase.pk))

    @extend_schema(
        request=TrialPhaseDecisionSerializer,
        responses={
            200: TrialPhaseSerializer,
            400: OpenApiResponse(
                description="Refused, with the reason: already decided, the partnership "
                "is not in this phase's stage, criteria not yet evaluated (listed in "
                "`unevaluated_criteria`), or an extension that does not end later."
            ),
            403: ERRORS[403],
            404: ERRORS[404],
        },
    )
    @action(detail=True, methods=["post"])
    def decide(self, request: Request, pk: str | None = None) -> Response:
        """Decide the phase: continue, extend (to a later end_date), expand (pilot ->
        expansion -> whole_school) or stop (the partnership ends). Once per phase; an
        extension leaves it open for its decision at the new end."""
        phase = self.get_object()
        s = TrialPhaseDecisionSerializer(data=request.data)
        s.is_valid(raise_exception=True)
        services.trial_phase_decide(phase=phase, by=request.user, **s.validated_data)
        return Response(self._detail(phase.pk))

    def _detail(self, pk: int) -> Any:
        fresh = self.optimise(TrialPhase.objects.filter(pk=pk)).get()
        return TrialPhaseSerializer(fresh, context=self.get_serializer_context()).data
