"""What every API view shares: the scoped base viewset and the scoped related field."""

from __future__ import annotations

from typing import Any

from django.db.models import Model, QuerySet
from rest_framework import serializers, viewsets


class ScopedViewSetMixin:
    """Rows reach a viewset only through ``Model.objects.visible_to(user)``.

    Subclasses may not define ``get_queryset``/``get_object``; they narrow or optimise
    with ``optimise(queryset)``, which can never widen the scope. An object outside the
    user's scope therefore answers 404 on every route, exactly like a missing one.
    """

    queryset: QuerySet[Any]
    # Models of URL kwargs other than "pk" (nested routes), for the tenancy matrix.
    url_kwarg_models: dict[str, type[Model]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for name in ("get_queryset", "get_object"):
            if name in cls.__dict__:
                raise TypeError(
                    f"{cls.__name__} must not override {name}; narrow with optimise() instead"
                )

    def optimise(self, queryset: QuerySet[Any]) -> QuerySet[Any]:
        return queryset

    def get_queryset(self) -> QuerySet[Any]:
        model = self.queryset.model
        scoped = model.objects.visible_to(self.request.user)  # type: ignore[attr-defined]
        return self.optimise(scoped)


class ScopedReadOnlyViewSet(ScopedViewSetMixin, viewsets.ReadOnlyModelViewSet):
    pass


class ScopedModelViewSet(ScopedViewSetMixin, viewsets.ModelViewSet):
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]


class ScopedPrimaryKeyRelatedField(serializers.PrimaryKeyRelatedField):
    """A reference to another object, resolved only within what the user may see: an
    object of another tenant is "does not exist", exactly like a missing id."""

    def __init__(self, model: type[Model], **kwargs: Any) -> None:
        self.model = model
        kwargs.setdefault("queryset", model._default_manager.none())
        super().__init__(**kwargs)

    def get_queryset(self) -> QuerySet[Any]:
        request = self.context.get("request")
        user = getattr(request, "user", None)
        return self.model.objects.visible_to(user)  # type: ignore[attr-defined]
