"""The tenancy matrix: every route under /api/v1/, every user of the cast, every object.

Routes are found by walking the URL resolver, so an endpoint added later is covered the
day it is added (and fails here until tests/tenancy.py says who may see its objects).
"""

from __future__ import annotations

import csv
import io
import re
from typing import Any

import pytest
from django.db.models import Model
from django.urls import URLPattern
from rest_framework.relations import ManyRelatedField

from partnership_crm.api import ScopedPrimaryKeyRelatedField, ScopedViewSetMixin

from .tenancy import ALL_USERS, EXPECTED, UNSCOPED_ROUTES, api_v1_patterns

PATTERNS = api_v1_patterns()


def _viewset(pattern: URLPattern) -> Any:
    return getattr(pattern.callback, "cls", None)


def _kwargs(pattern: URLPattern) -> list[str]:
    regex = getattr(pattern.pattern, "regex", None)
    return list(regex.groupindex) if regex is not None else []


def _url(route: str, kwargs: dict[str, Any]) -> str:
    path = route.replace("^", "").replace("$", "")
    for name, value in kwargs.items():
        path = re.sub(rf"\(\?P<{name}>[^)]*\)", str(value), path)
        path = re.sub(rf"<(\w+:)?{name}>", str(value), path)
    path = path.replace("\\.", ".")
    assert "(" not in path, f"cannot build a URL from {route}"
    return "/" + path


def _objects(world: Any, model: type[Model]) -> dict[str, Model]:
    found = {}
    for bucket in world.BUCKETS:
        for name, obj in getattr(world, bucket).items():
            if isinstance(obj, model):
                found[name] = obj
    return found


def _all_ids(client: Any, url: str, params: dict[str, Any] | None = None) -> tuple[set[int], int]:
    ids: set[int] = set()
    query = {"page_size": 200, **(params or {})}
    response = client.get(url, query)
    status = response.status_code
    assert status == 200, (url, query, status, getattr(response, "content", b"")[:300])
    if response.get("Content-Type", "").startswith("text/csv"):
        text = b"".join(response.streaming_content).decode()
        rows = list(csv.DictReader(io.StringIO(text)))
        return {int(r["id"]) for r in rows}, len(rows)
    body = response.json()
    count = body["count"]
    while True:
        ids |= {row["id"] for row in body["results"]}
        if not body["next"]:
            break
        body = client.get(body["next"]).json()
    return ids, count


def _snapshot(world: Any) -> dict[str, Any]:
    """What must not change when another tenant's user tries to write."""
    snap = {}
    for model in EXPECTED:
        rows = model.objects.order_by("pk").values()
        snap[model.__name__] = [dict(r) for r in rows]
    return snap


ROUTE_IDS = [p.name or route for route, p in PATTERNS]


def test_every_api_route_is_scoped_or_reviewed() -> None:
    assert PATTERNS, "no routes found under api/v1/"
    for route, pattern in PATTERNS:
        cls = _viewset(pattern)
        if pattern.name in UNSCOPED_ROUTES:
            continue
        assert cls is not None and issubclass(cls, ScopedViewSetMixin), (
            f"{route} ({pattern.name}) is not a ScopedViewSetMixin viewset: scope it, or "
            "review it and list it in tests/tenancy.py UNSCOPED_ROUTES with its own tests"
        )
        assert cls.queryset.model in EXPECTED, (
            f"{route}: tests/tenancy.py has no EXPECTED entry for {cls.queryset.model.__name__}"
        )


def test_anonymous_requests_are_refused_everywhere(client: Any, world: Any) -> None:
    for route, pattern in PATTERNS:
        if pattern.name == "auth-token":
            continue
        kwargs = dict.fromkeys(_kwargs(pattern), 1)
        response = client.get(_url(route, kwargs))
        assert response.status_code in (401, 403), (route, response.status_code)


@pytest.mark.parametrize("route,pattern", PATTERNS, ids=ROUTE_IDS)
def test_no_object_leaks_through_this_route(route: str, pattern: URLPattern, world: Any) -> None:
    cls = _viewset(pattern)
    if cls is None or not issubclass(cls, ScopedViewSetMixin):
        pytest.skip(f"{pattern.name} is reviewed in {UNSCOPED_ROUTES.get(pattern.name)}")
    model = cls.queryset.model
    expected = EXPECTED[model]
    objects = _objects(world, model)
    kwarg_names = _kwargs(pattern)
    actions = {
        method: action
        for method, action in getattr(pattern.callback, "actions", {}).items()
        if method in cls.http_method_names  # others answer 405 whatever the object
    }
    before = _snapshot(world)

    unknown = [k for k in kwarg_names if k != "pk" and k not in cls.url_kwarg_models]
    assert not unknown, f"{route}: declare the models of {unknown} in url_kwarg_models"
    probes = getattr(cls, "scoped_query_params", {})
    if not kwarg_names and set(actions.values()) <= set(probes):
        _check_query_param_action(route, cls, actions, world)
    elif not kwarg_names:
        _check_collection(route, cls, actions, world, model, expected, objects)
    elif "pk" not in kwarg_names:
        _check_nested_collection(route, cls, actions, world, expected, objects, kwarg_names)
    else:
        _check_object_route(route, actions, world, expected, objects, kwarg_names, cls)

    assert _snapshot(world) == before, f"{route}: a refused request changed stored data"


def _check_object_route(
    route: str,
    actions: dict[str, str],
    world: Any,
    expected: dict[str, set[str]],
    objects: dict[str, Model],
    kwarg_names: list[str],
    cls: Any,
) -> None:
    for user in ALL_USERS:
        client = world.client(user)
        for name, obj in objects.items():
            # A nested object (tickets/{ticket_pk}/attachments/{pk}/) under its own parent.
            kwargs = {
                k: obj.pk if k == "pk" else getattr(obj, cls.url_kwarg_fields[k])
                for k in kwarg_names
            }
            url = _url(route, kwargs)
            visible = name in expected[user]
            for method in actions:
                if visible and method != "get":
                    continue  # allowed writes are covered by each app's API tests
                response = getattr(client, method)(url, {}, format="json")
                if visible:
                    assert response.status_code == 200, (user, method, url, response.content[:200])
                else:
                    assert response.status_code == 404, (
                        f"{user} {method.upper()} {url} -> {response.status_code}: "
                        f"{name} is outside their scope and must answer 404"
                    )
            if visible:
                _check_under_other_parents(client, route, cls, world, user, name, kwargs)
            if visible and "patch" in actions:
                _check_references_refused(client, url, "patch", cls, user, world)


def _check_under_other_parents(
    client: Any, route: str, cls: Any, world: Any, user: str, name: str, kwargs: dict[str, Any]
) -> None:
    """A visible nested object asked for under another parent the user sees is a 404."""
    for kwarg, model in cls.url_kwarg_models.items():
        for parent_name, parent in _objects(world, model).items():
            if parent_name not in EXPECTED[model][user] or parent.pk == kwargs[kwarg]:
                continue
            url = _url(route, {**kwargs, kwarg: parent.pk})
            response = client.get(url)
            assert response.status_code == 404, (user, url, name, response.status_code)


def _check_query_param_action(route: str, cls: Any, actions: dict[str, str], world: Any) -> None:
    """A collection action about one object named in the query string
    (time-entries/onsite-summary/?partnership=): 404 unless the user sees that object."""
    url = _url(route, {})
    for method, action_name in actions.items():
        for param, model in cls.scoped_query_params[action_name].items():
            for user in ALL_USERS:
                client = world.client(user)
                for name, obj in _objects(world, model).items():
                    response = getattr(client, method)(url, {param: obj.pk})
                    want = 200 if name in EXPECTED[model][user] else 404
                    assert response.status_code == want, (
                        user,
                        url,
                        param,
                        name,
                        response.status_code,
                    )


def _check_nested_collection(
    route: str,
    cls: Any,
    actions: dict[str, str],
    world: Any,
    expected: dict[str, set[str]],
    objects: dict[str, Model],
    kwarg_names: list[str],
) -> None:
    """A list under a parent (tickets/{ticket_pk}/messages/): an invisible parent is a
    404 for every method; a visible one lists exactly the user's children of it."""
    [kwarg] = kwarg_names
    parent_model, field = cls.url_kwarg_models[kwarg], cls.url_kwarg_fields[kwarg]
    for user in ALL_USERS:
        client = world.client(user)
        for parent_name, parent in _objects(world, parent_model).items():
            url = _url(route, {kwarg: parent.pk})
            if parent_name not in EXPECTED[parent_model][user]:
                for method in actions:
                    response = getattr(client, method)(url, {}, format="json")
                    assert response.status_code == 404, (user, method, url, response.status_code)
                continue
            allowed = {
                obj.pk
                for name, obj in objects.items()
                if name in expected[user] and getattr(obj, field) == parent.pk
            }
            if "get" in actions:
                ids, count = _all_ids(client, url)
                assert ids == allowed, f"{user} GET {url}: got {ids}, expected {allowed}"
                assert count == len(allowed)


def _check_collection(
    route: str,
    cls: Any,
    actions: dict[str, str],
    world: Any,
    model: type[Model],
    expected: dict[str, set[str]],
    objects: dict[str, Model],
) -> None:
    url = _url(route, {})
    pk_of = {name: obj.pk for name, obj in objects.items()}
    probe_values = sorted({obj.pk for m in EXPECTED for obj in _objects(world, m).values()})
    for user in ALL_USERS:
        client = world.client(user)
        allowed = {pk_of[n] for n in expected[user]}
        if "get" in actions:
            ids, count = _all_ids(client, url)
            assert ids == allowed, f"{user} GET {url}: got {ids}, expected {allowed}"
            assert count == len(allowed), f"{user} GET {url}: count {count} leaks"
            _check_filters(client, url, cls, user, allowed, probe_values, world)
        if "post" in actions:
            _check_references_refused(client, url, "post", cls, user, world)


def _check_filters(
    client: Any,
    url: str,
    cls: Any,
    user: str,
    allowed: set[int],
    probe_values: list[int],
    world: Any,
) -> None:
    """Filters, ordering and search narrow the user's scope; they never widen it."""
    filterset = getattr(cls, "filterset_class", None)
    for name, flt in filterset.base_filters.items() if filterset else []:
        choices = getattr(flt, "extra", {}).get("choices")
        if choices:
            values = [c[0] for c in (choices() if callable(choices) else choices)]
        elif type(flt).__name__ in ("NumberFilter", "ModelChoiceFilter"):
            values = probe_values
        else:
            continue
        for value in values:
            if type(flt).__name__ == "ModelChoiceFilter":
                # A scoped choice: an id outside the scope is refused exactly like one
                # that does not exist, so it tells nothing about what exists.
                r = client.get(url, {name: value})
                if r.status_code == 400:
                    missing = client.get(url, {name: 2**31 - 1})
                    assert (r.status_code, r.json()) == (400, missing.json()), (url, name)
                    continue
            ids, count = _all_ids(client, url, {name: value})
            assert ids <= allowed, f"{user} {url}?{name}={value} leaked {ids - allowed}"
            assert count == len(ids), f"{user} {url}?{name}={value}: count {count} leaks"
    for field in getattr(cls, "ordering_fields", []):
        for ordering in (field, f"-{field}"):
            ids, _ = _all_ids(client, url, {"ordering": ordering})
            assert ids == allowed, f"{user} {url}?ordering={ordering}"
    if getattr(cls, "search_fields", None):
        terms = {o.name for o in world.orgs.values()} | {
            c.last_name for c in world.contacts.values()
        }
        terms |= {p.name for p in world.products.values()} | {"100001", "100002"}
        for term in sorted(terms):
            ids, count = _all_ids(client, url, {"search": term})
            assert ids <= allowed, f"{user} {url}?search={term} leaked {ids - allowed}"
            assert count == len(ids)


def _check_references_refused(
    client: Any, url: str, method: str, cls: Any, user: str, world: Any
) -> None:
    """A write that points at an object outside the user's scope is refused as if that
    object did not exist (400 on the field), or refused for the role (403)."""
    view = cls()
    view.action = "create" if method == "post" else "partial_update"
    view.request = None
    view.format_kwarg = None
    serializer = view.get_serializer_class()()
    for field_name, field in serializer.fields.items():
        many = isinstance(field, ManyRelatedField)
        relation = field.child_relation if many else field
        if field.read_only or not isinstance(relation, ScopedPrimaryKeyRelatedField):
            continue
        target = relation.model
        for name, obj in _objects(world, target).items():
            if name in EXPECTED[target][user]:
                continue
            value = [obj.pk] if many else obj.pk
            response = getattr(client, method)(url, {field_name: value}, format="json")
            assert response.status_code in (400, 403), (
                f"{user} {method.upper()} {url} with {field_name}={value} ({name}, outside "
                f"their scope) -> {response.status_code}"
            )
            if response.status_code == 400:
                body = response.json()
                assert field_name in body, (user, url, field_name, body)
                assert "does not exist" in str(body[field_name]), body
