"""The people API: a person's subject access export and their erasure.

``GET /api/v1/people/{id}/subject-access/``: what the asker holds about the contact (see
privacy/access.py); ``POST /api/v1/people/{id}/erase/``: the school's lead (or the
operator) erases them. The viewset is over ``Contact``, so a contact outside the asker's
scope answers 404 on both routes, like a missing one (the tenancy matrix covers them).
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.models import Contact
from partnership_crm.api import ScopedViewSetMixin

from .access import subject_access
from .erasure import erase_contact
from .models import Erasure

ERRORS = {
    400: OpenApiResponse(description="Invalid input: field errors (e.g. already erased)."),
    403: OpenApiResponse(description="Your role may not do this."),
    404: OpenApiResponse(description="Not found, or outside your scope."),
}


class ErasureSerializer(serializers.ModelSerializer):
    class Meta:
        model = Erasure
        fields = ["id", "at", "contact_id", "school_id", "user_id", "counts"]
        read_only_fields = fields


class PersonViewSet(ScopedViewSetMixin, viewsets.GenericViewSet):
    queryset = Contact.objects.all()
    serializer_class = ErasureSerializer
    http_method_names = ["get", "post", "head", "options"]

    def optimise(self, queryset: Any) -> Any:
        return queryset.select_related("user", "school")

    @extend_schema(
        responses={200: OpenApiResponse(OpenApiTypes.OBJECT, "The export."), **ERRORS},
    )
    @action(detail=True, methods=["get"], url_path="subject-access", url_name="subject-access")
    def subject_access(self, request: Request, pk: str | None = None) -> Response:
        """Everything held about the person that you may see, as one JSON document."""
        data = subject_access(by=request.user, contact=self.get_object())
        filename = f"subject-access-{pk}.json"
        return Response(data, headers={"Content-Disposition": f'inline; filename="{filename}"'})

    @extend_schema(request=None, responses={200: ErasureSerializer, **ERRORS})
    @action(detail=True, methods=["post"])
    def erase(self, request: Request, pk: str | None = None) -> Response:
        """Erase the person (the school's lead, or the operator): pseudonymised in one
        transaction, reports unchanged, their address refused from now on."""
        erasure = erase_contact(by=request.user, contact=self.get_object())
        return Response(ErasureSerializer(erasure).data)
