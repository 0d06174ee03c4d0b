"""What every API view shares: the scoped base viewset and the scoped related field."""

from __future__ import annotations

from typing import Any

from django.db.models import Model, QuerySet
from django.http import Http404
from rest_framework import serializers, viewsets


class ScopedViewSetMixin:
    """Rows reach a viewset only through ``Model.objects.visible_to(user)``.

    Subclasses may not define ``get_queryset``/``get_object``; they narrow or optimise
    with ``optimise(queryset)``, which can never widen the scope. An object outside the
    user's scope therefore answers 404 on every route, exactly like a missing one.
    """

    queryset: QuerySet[Any]
    # Nested routes: the model each parent URL kwarg names (looked up through its own
    # visible_to, so an invisible parent is a 404) and the field of this model that
    # points at it, e.g. {"ticket_pk": Ticket} and {"ticket_pk": "ticket_id"}.
    url_kwarg_models: dict[str, type[Model]] = {}
    url_kwarg_fields: dict[str, str] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for name in ("get_queryset", "get_object"):
            if name in cls.__dict__:
                raise TypeError(
                    f"{cls.__name__} must not override {name}; narrow with optimise() instead"
                )

    def optimise(self, queryset: QuerySet[Any]) -> QuerySet[Any]:
        return queryset

    def initial(self, request: Any, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)  # type: ignore[misc]
        self.parents: dict[str, Model] = {}
        for kwarg, model in self.url_kwarg_models.items():
            visible = model.objects.visible_to(request.user)  # type: ignore[attr-defined]
            try:
                self.parents[kwarg] = visible.get(pk=int(self.kwargs[kwarg]))
            except (model.DoesNotExist, ValueError, TypeError):
                raise Http404 from None

    def get_queryset(self) -> QuerySet[Any]:
        model = self.queryset.model
        scoped = model.objects.visible_to(self.request.user)  # type: ignore[attr-defined]
        for kwarg, field in self.url_kwarg_fields.items():
            scoped = scoped.filter(**{field: self.kwargs[kwarg]})
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
