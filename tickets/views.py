"""API v1 for tickets: parse -> service -> serialize. Rows only through visible_to."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from typing import Any

from django.db.models import Prefetch, QuerySet
from django.http import FileResponse, StreamingHttpResponse
from django.utils import timezone
from django.utils.cache import patch_cache_control
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.decorators import action
from rest_framework.parsers import MultiPartParser
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.calendars import calendars_for_schools
from accounts.scoping import scope_for
from partnership_crm.api import ScopedModelViewSet
from partnership_crm.drf import CSVRenderer, csv_safe

from . import services, sla
from .filters import TicketFilter
from .models import Ticket, TicketAttachment, TicketEvent, TicketMessage
from .serializers import (
    LIST_VALUES,
    AttachmentSerializer,
    AttachmentUploadSerializer,
    MessageSerializer,
    RatingSerializer,
    TicketCreateSerializer,
    TicketDetailSerializer,
    TicketSerializer,
    TicketTransitionSerializer,
    ticket_rows,
)
from .transitions import allowed_next

ERRORS = {
    400: OpenApiResponse(description="Invalid input: field errors."),
    403: OpenApiResponse(description="Your role may not do this."),
    404: OpenApiResponse(description="Not found, or outside your scope."),
}


class TicketViewSet(ScopedModelViewSet):
    """Feedback and problems from school staff, with the SLA clock in school working time.

    Supplier staff see their supplier's tickets; school leads (and trust leads) their
    schools'; teachers the tickets they raised."""

    queryset = Ticket.objects.all()
    filterset_class = TicketFilter
    ordering_fields = [
        "created_at",
        "updated_at",
        "priority",
        "status",
        "first_response_due_at",
        "resolution_due_at",
    ]
    ordering = ["-created_at", "-id"]
    http_method_names = ["get", "post", "patch", "head", "options"]

    def get_serializer_class(self) -> Any:
        return {
            "list": TicketSerializer,
            "create": TicketCreateSerializer,
            "transition": TicketTransitionSerializer,
            "rate": RatingSerializer,
        }.get(self.action, TicketDetailSerializer)

    def optimise(self, queryset: QuerySet[Ticket]) -> QuerySet[Ticket]:
        if self.action == "list":
            return queryset  # read as .values(*LIST_VALUES) by list()
        queryset = queryset.select_related("supplier", "school", "raised_by")
        if self.action == "export":
            return queryset.defer("search_document")
        user = self.request.user
        messages = (
            TicketMessage.objects.visible_to(user).select_related("author").with_attachments(user)
        )
        return queryset.with_attachments(user).prefetch_related(
            Prefetch("messages", queryset=messages, to_attr="visible_messages"),
            Prefetch("events", queryset=TicketEvent.objects.select_related("by")),
        )

    def filter_queryset(self, queryset: QuerySet[Ticket]) -> QuerySet[Ticket]:
        """Filters, search and ordering narrow lists and exports; one ticket is looked up by
        its id alone (building the filter form cost a detail request more than its SQL)."""
        if self.action in ("list", "export"):
            return super().filter_queryset(queryset)
        return queryset

    def get_serializer_context(self) -> dict[str, Any]:
        """What the ticket serializers read, for any serializer the view builds (the
        browsable API's forms build one too, and failed with KeyError 'sla'): SLA figures
        without working time elapsed, unless _context_for() gives the calendars."""
        now = timezone.now()
        user = self.request.user
        return {
            **super().get_serializer_context(),
            "sla": lambda t: sla.view(t, now),
            "allowed_statuses": lambda t: allowed_next(
                t.status, supplier_side=scope_for(user).supplier_role(t.supplier_id) is not None
            ),
        }

    def _context_for(self, tickets: list[Ticket], *, elapsed: bool = True) -> dict[str, Any]:
        """The SLA figures as of now. Working time elapsed needs each school's calendar
        (3 queries); lists leave it out and show due times and breach flags only."""
        now = timezone.now()
        calendars = calendars_for_schools({t.school_id for t in tickets}) if elapsed else {}
        return {
            **self.get_serializer_context(),
            "sla": lambda t: sla.view(t, now, calendars.get(t.school_id)),
        }

    def _detail(self, pk: int, code: int = status.HTTP_200_OK) -> Response:
        ticket = self.optimise(Ticket.objects.visible_to(self.request.user).filter(pk=pk)).get()
        return Response(
            TicketDetailSerializer(ticket, context=self._context_for([ticket])).data, status=code
        )

    @extend_schema(responses=TicketSerializer(many=True))
    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        tickets = self.filter_queryset(self.get_queryset())
        page = self.paginator.paginate_queryset(tickets, request, view=self, values=LIST_VALUES)
        return self.get_paginated_response(ticket_rows(page, timezone.now()))

    def retrieve(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        ticket = self.get_object()
        return Response(TicketDetailSerializer(ticket, context=self._context_for([ticket])).data)

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "Idempotency-Key",
                OpenApiTypes.STR,
                OpenApiParameter.HEADER,
                description="Send the same key when retrying: the ticket is filed once.",
            )
        ],
        responses={201: TicketDetailSerializer, 200: TicketDetailSerializer, **ERRORS},
    )
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """Raise a ticket; as multipart/form-data it may carry ``files``."""
        s = TicketCreateSerializer(data=request.data, context=self.get_serializer_context())
        s.is_valid(raise_exception=True)
        data = {k: v for k, v in s.validated_data.items() if k not in ("assignee", "files")}
        key = (request.headers.get("Idempotency-Key") or "").strip()[:100] or None
        ticket, created = services.ticket_create(
            by=request.user,
            idempotency_key=key,
            attachments=s.validated_data.get("files", []),
            **data,
        )
        return self._detail(ticket.pk, status.HTTP_201_CREATED if created else status.HTTP_200_OK)

    @extend_schema(request=TicketSerializer, responses={200: TicketDetailSerializer, **ERRORS})
    def partial_update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        ticket = self.get_object()
        s = TicketSerializer(
            ticket, data=request.data, partial=True, context=self.get_serializer_context()
        )
        s.is_valid(raise_exception=True)
        services.ticket_update(ticket=ticket, by=request.user, **s.validated_data)
        return self._detail(ticket.pk)

    @extend_schema(
        request=TicketTransitionSerializer,
        responses={
            200: TicketDetailSerializer,
            400: OpenApiResponse(
                description="Refused: `status` says why; `allowed_statuses` lists the moves you may make."
            ),
            403: ERRORS[403],
            404: ERRORS[404],
        },
    )
    @action(detail=True, methods=["post"])
    def transition(self, request: Request, pk: str | None = None) -> Response:
        """Move the ticket along its workflow. Resolving needs an outcome."""
        ticket = self.get_object()
        s = TicketTransitionSerializer(data=request.data)
        s.is_valid(raise_exception=True)
        result = services.ticket_transition(
            ticket=ticket, by=request.user, channel="api", **s.validated_data
        )
        # Past the reopen window the school's reopen files a linked follow-up ticket.
        if result.pk != ticket.pk:
            return self._detail(result.pk, status.HTTP_201_CREATED)
        return self._detail(ticket.pk)

    @extend_schema(request=RatingSerializer, responses={200: TicketDetailSerializer, **ERRORS})
    @action(detail=True, methods=["post"])
    def rate(self, request: Request, pk: str | None = None) -> Response:
        """The raiser rates a resolved ticket once, 1 to 5, with an optional comment."""
        ticket = self.get_object()
        s = RatingSerializer(data=request.data)
        s.is_valid(raise_exception=True)
        services.ticket_rate(
            ticket=ticket,
            by=request.user,
            rating=s.validated_data["rating"],
            comment=s.validated_data.get("comment", ""),
        )
        return self._detail(ticket.pk)

    @extend_schema(responses={(200, "text/csv"): OpenApiTypes.STR, 400: ERRORS[400]})
    @action(detail=False, methods=["get"], renderer_classes=[JSONRenderer, CSVRenderer])
    def export(self, request: Request) -> StreamingHttpResponse:
        """The filtered list as CSV, streamed (takes the same filters as the list)."""
        queryset = self.filter_queryset(self.get_queryset())
        response = StreamingHttpResponse(
            _csv_rows(queryset), content_type="text/csv; charset=utf-8"
        )
        response["Content-Disposition"] = 'attachment; filename="tickets.csv"'
        return response


EXPORT_COLUMNS = [
    "id",
    "created_at",
    "school",
    "urn",
    "supplier",
    "partnership",
    "category",
    "priority",
    "status",
    "subject",
    "raised_by",
    "first_response_due_at",
    "first_response_at",
    "first_response_breached",
    "resolution_due_at",
    "resolved_at",
    "business_hours_elapsed",
    "resolution_breached",
    "outcome",
    "outcome_reason",
    "rating",
]


class _Echo:
    def write(self, value: str) -> str:
        return value


def _csv_rows(queryset: QuerySet[Ticket], chunk: int = 2000) -> Iterator[str]:
    writer = csv.writer(_Echo())
    yield writer.writerow(EXPORT_COLUMNS)
    now = timezone.now()
    calendars: dict[int, Any] = {}
    batch: list[Ticket] = []

    def flush(rows: list[Ticket]) -> Iterator[str]:
        missing = {t.school_id for t in rows} - calendars.keys()
        if missing:
            calendars.update(calendars_for_schools(missing))
        for t in rows:
            v = sla.view(t, now, calendars[t.school_id])
            yield writer.writerow(
                [
                    csv_safe(x)
                    for x in [
                        t.pk,
                        t.created_at.isoformat(),
                        t.school.name,
                        t.school.urn,
                        t.supplier.name,
                        t.partnership_id,
                        t.category,
                        t.priority,
                        t.status,
                        t.subject,
                        t.raised_by.get_full_name(),
                        v.first_response_due_at.isoformat(),
                        v.first_response_at.isoformat() if v.first_response_at else "",
                        v.first_response_breached,
                        v.resolution_due_at.isoformat() if v.resolution_due_at else "",
                        v.resolved_at.isoformat() if v.resolved_at else "",
                        round(v.business_seconds_elapsed / 3600, 2),
                        v.resolution_breached,
                        t.outcome,
                        t.outcome_reason,
                        t.rating or "",
                    ]
                ]
            )

    for ticket in queryset.iterator(chunk_size=chunk):
        batch.append(ticket)
        if len(batch) >= chunk:
            yield from flush(batch)
            batch = []
    yield from flush(batch)


class TicketMessageViewSet(ScopedModelViewSet):
    """The conversation on a ticket. School users see public messages only; supplier staff
    also write internal notes (``is_internal``), which never reach the school."""

    queryset = TicketMessage.objects.all()
    serializer_class = MessageSerializer
    url_kwarg_models = {"ticket_pk": Ticket}
    url_kwarg_fields = {"ticket_pk": "ticket_id"}
    ordering_fields = ["created_at"]
    ordering = ["created_at", "id"]
    http_method_names = ["get", "post", "head", "options"]

    def optimise(self, queryset: QuerySet[TicketMessage]) -> QuerySet[TicketMessage]:
        return queryset.select_related("author").with_attachments(self.request.user)

    @extend_schema(responses={201: MessageSerializer, **ERRORS})
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """Post a message; as multipart/form-data it may carry ``files``."""
        s = self.get_serializer(data=request.data)
        s.is_valid(raise_exception=True)
        data = dict(s.validated_data)
        message = services.ticket_post_message(
            ticket=self.parents["ticket_pk"],
            by=request.user,
            channel="api",
            attachments=data.pop("files", []),
            **data,
        )
        return Response(self.get_serializer(message).data, status=status.HTTP_201_CREATED)


class TicketAttachmentViewSet(ScopedModelViewSet):
    """Files on a ticket and its messages. A file on an internal note is the supplier's,
    like the note. Downloads check the same scope (404 outside it): there is no public
    address for a file."""

    queryset = TicketAttachment.objects.all()
    url_kwarg_models = {"ticket_pk": Ticket}
    url_kwarg_fields = {"ticket_pk": "ticket_id"}
    ordering_fields = ["created_at"]
    ordering = ["created_at", "id"]
    parser_classes = [MultiPartParser]
    http_method_names = ["get", "post", "head", "options"]

    def get_serializer_class(self) -> Any:
        return AttachmentUploadSerializer if self.action == "create" else AttachmentSerializer

    @extend_schema(
        request=AttachmentUploadSerializer,
        responses={201: AttachmentSerializer(many=True), **ERRORS},
    )
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """Add files to one of your messages on the ticket, or (school staff) to the
        ticket itself."""
        s = AttachmentUploadSerializer(data=request.data, context=self.get_serializer_context())
        s.is_valid(raise_exception=True)
        rows = services.ticket_attach(
            ticket=self.parents["ticket_pk"],
            by=request.user,
            files=s.validated_data["files"],
            message=s.validated_data.get("message"),
        )
        return Response(AttachmentSerializer(rows, many=True).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        responses={
            (200, "application/octet-stream"): OpenApiResponse(
                OpenApiTypes.BINARY,
                description="The file, with its own content type. Images (re-encoded when "
                "they were attached) are served inline, everything else as a download.",
            ),
            404: ERRORS[404],
        }
    )
    def retrieve(self, request: Request, *args: Any, **kwargs: Any) -> FileResponse:
        """Download the file."""
        attachment = self.get_object()
        response = FileResponse(
            attachment.file.open("rb"),
            as_attachment=not attachment.is_image,
            filename=attachment.name,
            content_type=attachment.content_type,
        )
        response["X-Content-Type-Options"] = "nosniff"
        # Opened on its own, the file runs nothing and loads nothing.
        response["Content-Security-Policy"] = "default-src 'none'; sandbox"
        patch_cache_control(response, private=True, max_age=600)
        return response
