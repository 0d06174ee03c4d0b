"""The OpenAPI schema's field mapping (drf-spectacular), where its defaults and our
answers disagreed (found by schemathesis's conformance checks, ``make fuzz-conformance``)."""

from __future__ import annotations

import copy
from typing import Any

from django.core.exceptions import FieldDoesNotExist
from django.db import models
from drf_spectacular.drainage import has_override
from drf_spectacular.openapi import AutoSchema as SpectacularAutoSchema
from drf_spectacular.plumbing import append_meta
from rest_framework import serializers

# OpenAPI's "format: time" is RFC 3339's full-time, which needs an offset ("08:30:00Z");
# a school's day starts at a wall-clock time in its own zone and is written "08:30:00".
TIME_OF_DAY = {
    "type": "string",
    "pattern": r"^([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9](\.[0-9]{1,6})?)?$",
    "example": "08:30:00",
}


def _blank_in_model(field: serializers.Field) -> bool:
    """The model field behind a serializer field allows "" (a text field with blank=True)."""
    model = getattr(getattr(field.parent, "Meta", None), "model", None)
    source = getattr(field, "source", "") or ""
    if model is None or not source or "." in source or source == "*":
        return False
    try:
        model_field = model._meta.get_field(source)
    except FieldDoesNotExist:
        return False
    return bool(model_field.blank) and isinstance(model_field, models.CharField | models.TextField)


class AutoSchema(SpectacularAutoSchema):
    def _map_serializer_field(
        self, field: Any, direction: str, bypass_extensions: bool = False
    ) -> Any:
        if isinstance(field, serializers.TimeField) and not has_override(field, "field"):
            return append_meta(dict(TIME_OF_DAY), self._get_serializer_field_meta(field, direction))
        if (
            isinstance(field, serializers.ChoiceField)
            and not isinstance(field, serializers.MultipleChoiceField)
            and field.read_only
            and not field.allow_blank
            and _blank_in_model(field)
        ):
            # DRF drops allow_blank from read-only fields, but the answer still carries the
            # model's "" (an unresolved ticket's outcome, say): the schema's enum must too.
            field = copy.copy(field)
            field.allow_blank = True
        return super()._map_serializer_field(field, direction, bypass_extensions)
