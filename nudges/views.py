"""API v1 for nudges: parse -> service -> serialize. Rows only through visible_to."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.models import PartnershipContact
from accounts.scoping import scope_for
from accounts.serializers import own_supplier
from partnership_crm.api import ScopedModelViewSet, ScopedViewSetMixin

from . import planner, replies, services, templating
from .context import values_for
from .filters import NudgeFilter, NudgeRuleFilter, OptOutFilter
from .models import Nudge, NudgeReply, NudgeRule, NudgeTemplate, OptOut
from .serializers import (
    NudgeReplySerializer,
    NudgeRuleSerializer,
    NudgeSerializer,
    NudgeTemplateSerializer,
    OptOutSerializer,
    PreviewRequestSerializer,
    PreviewSerializer,
    RulePreviewSerializer,
)

ERRORS = {
    400: OpenApiResponse(description="Invalid input: field errors."),
    403: OpenApiResponse(description="Your role may not do this."),
    404: OpenApiResponse(description="Not found, or outside your scope."),
}


class NudgeTemplateViewSet(ScopedModelViewSet):
    """A supplier's nudge wording, with {{ placeholders }} from a fixed list."""

    queryset = NudgeTemplate.objects.all()
    serializer_class = NudgeTemplateSerializer
    search_fields = ["name", "subject"]
    ordering_fields = ["name", "updated_at"]
    ordering = ["name", "id"]

    def get_serializer_class(self) -> Any:
        return PreviewRequestSerializer if self.action == "preview" else NudgeTemplateSerializer

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        s = self.get_serializer(data=request.data)
        s.is_valid(raise_exception=True)
        data = dict(s.validated_data)
        supplier = own_supplier(request.user, data.pop("supplier", None))
        template = services.template_save(by=request.user, supplier=supplier, **data)
        return Response(self.get_serializer(template).data, status=status.HTTP_201_CREATED)

    def partial_update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        template = self.get_object()
        s = self.get_serializer(template, data=request.data, partial=True)
        s.is_valid(raise_exception=True)
        data = {k: v for k, v in s.validated_data.items() if k != "supplier"}
        template = services.template_save(
            by=request.user, supplier=template.supplier, instance=template, **data
        )
        return Response(self.get_serializer(template).data)

    def destroy(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        template = self.get_object()
        if not scope_for(request.user).manages_supplier(template.supplier_id):
            return Response(
                {"detail": "Only the supplier's managers delete templates."}, status=403
            )
        if template.rules.exists():
            raise serializers.ValidationError(
                {"template": "Rules use this template: make it inactive instead."}
            )
        template.delete()
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(request=PreviewRequestSerializer, responses={200: PreviewSerializer, **ERRORS})
    @action(detail=True, methods=["post"])
    def preview(self, request: Request, pk: str | None = None) -> Response:
        """Render the template for one contact (of one of your partnerships)."""
        template = self.get_object()
        s = PreviewRequestSerializer(data=request.data, context=self.get_serializer_context())
        s.is_valid(raise_exception=True)
        contact, partnership = s.validated_data["contact"], s.validated_data.get("partnership")
        links = PartnershipContact.objects.filter(
            contact=contact, partnership__supplier_id=template.supplier_id
        )
        if partnership is not None:
            links = links.filter(partnership=partnership)
        link = links.select_related("partnership").first()
        if link is None:
            raise serializers.ValidationError(
                {"contact": "Preview for someone linked to one of your partnerships."}
            )
        draft = Nudge(
            pk=0,
            supplier=template.supplier,
            school=contact.school,
            partnership=link.partnership,
            contact=contact,
            template=template,
        )
        values = values_for([draft])[0]
        rendered = templating.render_email(
            template.subject, template.body_text, template.body_html, values
        )
        return Response(PreviewSerializer(rendered).data)


class NudgeRuleViewSet(ScopedModelViewSet):
    """When to nudge whom: a cadence in school weeks, or an event, for an audience."""

    queryset = NudgeRule.objects.all()
    serializer_class = NudgeRuleSerializer
    filterset_class = NudgeRuleFilter
    search_fields = ["name"]
    ordering_fields = ["name", "created_at"]
    ordering = ["name", "id"]

    def optimise(self, queryset: QuerySet[NudgeRule]) -> QuerySet[NudgeRule]:
        return queryset.prefetch_related("audience_contacts")

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        s = self.get_serializer(data=request.data)
        s.is_valid(raise_exception=True)
        data = dict(s.validated_data)
        supplier = own_supplier(request.user, data.pop("supplier", None))
        rule = services.rule_save(by=request.user, supplier=supplier, **data)
        return Response(self.get_serializer(rule).data, status=status.HTTP_201_CREATED)

    def partial_update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        rule = self.get_object()
        s = self.get_serializer(rule, data=request.data, partial=True)
        s.is_valid(raise_exception=True)
        data = {k: v for k, v in s.validated_data.items() if k != "supplier"}
        rule = services.rule_save(by=request.user, supplier=rule.supplier, instance=rule, **data)
        return Response(self.get_serializer(rule).data)

    def destroy(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        rule = self.get_object()
        if not scope_for(request.user).manages_supplier(rule.supplier_id):
            return Response({"detail": "Only the supplier's managers delete rules."}, status=403)
        Nudge.objects.filter(rule=rule, status=Nudge.Status.SCHEDULED).update(
            status=Nudge.Status.CANCELLED, status_reason="its rule was deleted"
        )
        rule.delete()
        return Response(status=status.HTTP_204_NO_CONTENT)

    # A plain list of at most 200 (not a page): pagination_class=None tells the schema so.
    @extend_schema(request=None, responses={200: RulePreviewSerializer(many=True), **ERRORS})
    @action(detail=True, methods=["post"], pagination_class=None)
    def preview(self, request: Request, pk: str | None = None) -> Response:
        """The nudges this rule would schedule in the coming two weeks, at most 200
        (nothing is saved)."""
        rule = self.get_object()
        drafts = planner.preview(rule)[:200]
        rows = [
            {
                "contact": n.contact_id,
                "contact_name": f"{n.contact.first_name} {n.contact.last_name}".strip(),
                "partnership": n.partnership_id,
                "occurrence": n.occurrence,
                "due_at": n.due_at,
            }
            for n in drafts
        ]
        return Response(RulePreviewSerializer(rows, many=True).data)


class NudgeViewSet(ScopedModelViewSet):
    """Scheduled and sent nudges with their delivery events. School leads see every nudge
    to their staff, from every supplier."""

    queryset = Nudge.objects.all()
    serializer_class = NudgeSerializer
    filterset_class = NudgeFilter
    ordering_fields = ["due_at", "sent_at", "created_at"]
    ordering = ["-due_at", "-id"]
    http_method_names = ["get", "post", "head", "options"]

    def optimise(self, queryset: QuerySet[Nudge]) -> QuerySet[Nudge]:
        return queryset.select_related("contact", "supplier").prefetch_related("events")

    @extend_schema(responses={201: NudgeSerializer, **ERRORS})
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """A one-off nudge, written by hand or from a template, due at a time."""
        s = self.get_serializer(data=request.data)
        s.is_valid(raise_exception=True)
        data = {
            k: v
            for k, v in s.validated_data.items()
            if k
            in ("partnership", "contact", "due_at", "template", "subject", "body_text", "body_html")
        }
        if "due_at" not in data:
            raise serializers.ValidationError({"due_at": "Say when it is due."})
        nudge = services.nudge_create(by=request.user, **data)
        return Response(self.get_serializer(nudge).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses={200: NudgeSerializer, **ERRORS})
    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, pk: str | None = None) -> Response:
        nudge = services.nudge_cancel(nudge=self.get_object(), by=request.user)
        return Response(self.get_serializer(nudge).data)

    @extend_schema(request=None, responses={200: NudgeSerializer, **ERRORS})
    @action(detail=True, methods=["post"])
    def resend(self, request: Request, pk: str | None = None) -> Response:
        """A nudge held in doubt (status "held") sent again: supplier admins only."""
        nudge = services.held_resend(nudge=self.get_object(), by=request.user)
        return Response(self.get_serializer(nudge).data)

    @extend_schema(request=None, responses={200: NudgeSerializer, **ERRORS})
    @action(detail=True, methods=["post"])
    def drop(self, request: Request, pk: str | None = None) -> Response:
        """A nudge held in doubt left as it is, not sent again: supplier admins only."""
        nudge = services.held_drop(nudge=self.get_object(), by=request.user)
        return Response(self.get_serializer(nudge).data)


class OptOutViewSet(ScopedModelViewSet):
    """Who has asked not to be nudged, and the stops a school lead put on suppliers."""

    queryset = OptOut.objects.all()
    serializer_class = OptOutSerializer
    filterset_class = OptOutFilter
    ordering_fields = ["created_at"]
    ordering = ["-created_at", "-id"]
    http_method_names = ["get", "post", "delete", "head", "options"]

    def optimise(self, queryset: QuerySet[OptOut]) -> QuerySet[OptOut]:
        return queryset.select_related("contact")

    @extend_schema(responses={201: OptOutSerializer, **ERRORS})
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """A school lead stops one supplier (or, with no supplier, every supplier)
        contacting a member of staff."""
        s = self.get_serializer(data=request.data)
        s.is_valid(raise_exception=True)
        supplier = s.validated_data.get("supplier")
        if supplier is not None and supplier.kind != "supplier":
            raise serializers.ValidationError({"supplier": "Choose a supplier."})
        record = services.school_stop(
            by=request.user,
            contact=s.validated_data["contact"],
            supplier=supplier,
            note=s.validated_data.get("note", ""),
        )
        return Response(self.get_serializer(record).data, status=status.HTTP_201_CREATED)

    def destroy(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        services.opt_out_remove(record=self.get_object(), by=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class NudgeReplyViewSet(ScopedViewSetMixin, viewsets.ReadOnlyModelViewSet):
    """What contacts wrote back to nudges (by email). A reply that is not an auto-reply
    stops its rule for that contact until an account manager resumes it."""

    queryset = NudgeReply.objects.all()
    serializer_class = NudgeReplySerializer
    filterset_fields = ["partnership", "contact", "is_auto"]
    ordering_fields = ["received_at"]
    ordering = ["-received_at", "-id"]

    def optimise(self, queryset: QuerySet[NudgeReply]) -> QuerySet[NudgeReply]:
        return queryset.select_related("contact", "stopped_rule")

    @extend_schema(request=None, responses={200: NudgeReplySerializer, **ERRORS})
    @action(detail=True, methods=["post"])
    def resume(self, request: Request, pk: str | None = None) -> Response:
        """Let the rule nudge this contact again (you have answered them)."""
        reply = self.get_object()
        replies.resume(reply=reply, by=request.user)
        reply.refresh_from_db()
        return Response(self.get_serializer(reply).data)
