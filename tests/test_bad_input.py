"""Bad input is the client's error (400 with a message), never the server's (500).

Each case below answered 500 on PostgreSQL (issue 17, item 15): a page number whose OFFSET
passes bigint, ids past bigint in filters, date-times with offsets PostgreSQL refuses,
NUL bytes in query strings, a week past the calendar's end, and fields a service did not
take. The schema walk at the end sends the same values to every query parameter of every
GET operation the schema describes, so a filter added later is covered the day it is added.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

HUGE = "99999999999999999999"  # past PostgreSQL's bigint (and SQLite's integer)
BAD_OFFSET = "2026-03-01T10:00:00-16:58"  # Python allows offsets to 23:59; PostgreSQL to 15:59
EDGE_OF_TIME = "9999-12-31T23:59:00-05:00"  # in UTC, a year past 9999


def _page_client(world: Any, user: str) -> Client:
    client = Client()
    client.force_login(world.users[user])
    return client


# --- The API -------------------------------------------------------------------------------


def test_a_page_number_past_any_list_is_a_400_saying_so(world: Any) -> None:
    response = world.client("s1_admin").get("/api/v1/tickets/", {"page": HUGE})
    assert response.status_code == 400
    assert response.json() == {"page": ["At most 1,000,000."]}


def test_a_page_past_the_last_is_still_not_found(world: Any) -> None:
    response = world.client("s1_admin").get("/api/v1/tickets/", {"page": 1_000_000})
    assert response.status_code == 404


@pytest.mark.parametrize(
    "url,param",
    [
        ("/api/v1/tickets/", "partnership"),
        ("/api/v1/visits/", "person"),
        ("/api/v1/time-entries/", "ticket"),
        ("/api/v1/partnerships/", "school"),
    ],
)
def test_an_id_past_bigint_in_a_filter_is_a_400_on_that_filter(
    world: Any, url: str, param: str
) -> None:
    response = world.client("s1_admin").get(url, {param: HUGE})
    assert response.status_code == 400, response.content
    assert param in response.json()


def test_an_id_past_bigint_in_a_path_is_not_found(world: Any) -> None:
    client = world.client("s1_admin")
    assert client.get(f"/api/v1/tickets/{HUGE}/").status_code == 404
    assert client.get(f"/api/v1/tickets/{HUGE}/messages/").status_code == 404


@pytest.mark.parametrize(
    "url,param",
    [
        ("/api/v1/tickets/", "created_after"),
        ("/api/v1/visits/", "starts_before"),
    ],
)
def test_a_date_time_with_an_offset_postgresql_refuses_still_filters(
    world: Any, url: str, param: str
) -> None:
    """-16:58 is a valid ISO 8601 offset; compared in UTC, the filter works."""
    response = world.client("s1_admin").get(url, {param: BAD_OFFSET})
    assert response.status_code == 200, response.content


def test_a_date_time_that_ends_past_year_9999_in_utc_is_a_400(world: Any) -> None:
    response = world.client("s1_admin").get("/api/v1/tickets/", {"created_after": EDGE_OF_TIME})
    assert response.status_code == 400
    assert response.json() == {"created_after": ["This date and time is out of range."]}


def test_a_visit_planned_with_an_offset_postgresql_refuses_is_planned(world: Any) -> None:
    response = world.client("s1_am").post(
        "/api/v1/visits/",
        {
            "partnership": world.p_a1.pk,
            "kind": "training",
            "starts_at": "2030-03-01T10:00:00-16:58",
            "ends_at": "2030-03-01T11:00:00-16:58",
        },
    )
    assert response.status_code == 201, response.content
    assert response.json()["starts_at"] == "2030-03-02T02:58:00Z"


@pytest.mark.parametrize(
    "url",
    [
        "/api/v1/partnerships/?stage=%00",
        "/api/v1/portfolio/?stage=%00",
        "/api/v1/tickets/?q=a%00b",
        "/api/v1/contacts/?search=%00",
        "/api/v1/tickets/?%00=1",
    ],
)
def test_a_nul_byte_in_the_query_string_is_a_400_saying_so(world: Any, url: str) -> None:
    response = world.client("s1_admin").get(url)
    assert response.status_code == 400
    assert "NUL" in response.json()["detail"]


def test_a_visit_planned_with_notes_keeps_them(world: Any) -> None:
    """The visit's fields include notes; visit_create() did not take them (TypeError)."""
    response = world.client("s1_am").post(
        "/api/v1/visits/",
        {
            "partnership": world.p_a1.pk,
            "kind": "training",
            "starts_at": "2030-03-04T10:00:00Z",
            "ends_at": "2030-03-04T11:00:00Z",
            "notes": "Bring the projector adaptor",
        },
    )
    assert response.status_code == 201, response.content
    assert response.json()["notes"] == "Bring the projector adaptor"


def test_the_api_ignores_a_week_it_does_not_take(world: Any) -> None:
    response = world.client("s1_am").get("/api/v1/visits/", {"week": "9999-12-31"})
    assert response.status_code == 200


# --- Pages -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "user,url",
    [
        ("s1_am", "/visits/?week=9999-12-31"),
        ("s1_am", "/visits/?week=0001-01-01"),
        ("s1_am", f"/portfolio/?page={HUGE}"),
        ("s1_am", f"/tickets/?page={HUGE}"),
        ("a_lead", f"/school/tickets/?page={HUGE}"),
        ("s1_am", f"/tickets/{HUGE}/"),
    ],
)
def test_pages_with_out_of_range_values_do_not_fail(world: Any, user: str, url: str) -> None:
    response = _page_client(world, user).get(url)
    assert response.status_code < 500
    assert response.status_code in (200, 400, 404)


@pytest.mark.parametrize(
    "user,url",
    [("s1_am", "/tickets/?status=%00"), ("a_lead", "/school/tickets/?q=%00"), ("s1_am", "/%00/")],
)
def test_a_nul_byte_in_a_page_address_is_a_400_page(world: Any, user: str, url: str) -> None:
    response = _page_client(world, user).get(url)
    assert response.status_code == 400
    assert b"NUL character" in response.content


# --- Every query parameter the schema describes ----------------------------------------------

VALUES = {
    "huge": HUGE,
    "negative huge": "-" + HUGE,
    "bad offset": BAD_OFFSET,
    "edge of time": EDGE_OF_TIME,
    "far date": "9999-12-31",
    "first date": "0001-01-01",
    "nul": "\x00",
}


def _get_operations(client: Any) -> list[tuple[str, list[str]]]:
    schema = client.get("/api/schema/", {"format": "json"}).json()
    found = []
    for path, item in schema["paths"].items():
        operation = item.get("get")
        if operation is None or "{" in path:
            continue
        params = [p["name"] for p in operation.get("parameters", []) if p["in"] == "query"]
        found.append((path, params))
    return found


@pytest.mark.parametrize("user", ["s1_admin", "a_lead"])
def test_no_query_parameter_of_any_list_fails_on_an_extreme_value(world: Any, user: str) -> None:
    client = world.client(user)
    failures = []
    operations = _get_operations(client)
    assert len(operations) > 15
    for path, params in operations:
        for param in params:
            for label, value in VALUES.items():
                response = client.get(path, {param: value})
                if response.status_code >= 500:
                    failures.append(f"{path}?{param}= {label}: {response.status_code}")
    assert not failures, "\n".join(failures)


def test_the_browsable_api_shows_a_ticket(world: Any) -> None:
    """Its forms build the view's serializer without the SLA context (KeyError: 'sla')."""
    client = world.client("s1_am")
    response = client.get(f"/api/v1/tickets/{world.t_a1.pk}/", HTTP_ACCEPT="text/html")
    assert response.status_code == 200
    assert b"Ticket t_a1" in response.content
    response = client.patch(
        f"/api/v1/tickets/{world.t_a1.pk}/", {"priority": "high"}, HTTP_ACCEPT="text/html"
    )
    assert response.status_code == 200
    assert world.t_a1.__class__.objects.get(pk=world.t_a1.pk).priority == "high"


# --- Every page, with the same values in the parameters pages read ---------------------------

PAGE_PARAMS = [
    "page", "week", "school", "supplier", "trust", "partnership", "status", "category",
    "priority", "q", "mine", "ended", "from", "to", "template", "contact", "assignee",
]  # fmt: skip
PAGE_VALUES = {k: v for k, v in VALUES.items() if k != "nul"}  # NUL: 400 by the middleware


def _page_routes() -> list[str]:
    from django.urls import URLPattern, URLResolver, get_resolver

    routes: list[str] = []

    def walk(patterns: list[Any], prefix: str) -> None:
        for p in patterns:
            route = prefix + str(p.pattern)
            if isinstance(p, URLResolver):
                walk(p.url_patterns, route)
            elif isinstance(p, URLPattern) and "<" not in route and "(" not in route:
                routes.append("/" + route)

    frontend = [p for p in get_resolver().url_patterns if "frontend" in str(p)]
    walk(frontend, "")
    return [r for r in routes if "sign-out" not in r]


@pytest.mark.parametrize("user", ["s1_am", "a_lead", "a_teacher", "trust_lead"])
def test_no_page_fails_on_an_extreme_value(world: Any, user: str) -> None:
    client = _page_client(world, user)
    routes = _page_routes()
    assert "/visits/" in routes and "/school/tickets/" in routes
    failures = []
    for route in routes:
        for label, value in PAGE_VALUES.items():
            response = client.get(route, dict.fromkeys(PAGE_PARAMS, value))
            if response.status_code >= 500:
                failures.append(f"{route} {label}: {response.status_code}")
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("error", [OverflowError("date value out of range"), "data"])
def test_a_value_nothing_checked_is_still_a_400(world: Any, error: Any) -> None:
    """The exception handler's last line of defence, for an input no field or filter
    range-checks: the database's DataError or the calendar's OverflowError."""
    from unittest import mock

    from django.db import DataError

    exc = DataError("integer out of range") if error == "data" else error
    with mock.patch("tickets.views.TicketViewSet.list", side_effect=exc):
        response = world.client("s1_am").get("/api/v1/tickets/")
    assert response.status_code == 400
    assert "out of range" in response.json()["detail"]


def _detail_urls(world: Any, client: Any) -> list[str]:
    """Every GET path of the schema, with a real id of the cast's where it takes one."""
    from django.urls import resolve

    from partnership_crm.api import ScopedViewSetMixin

    schema = client.get("/api/schema/", {"format": "json"}).json()
    urls = []
    for path, item in schema["paths"].items():
        if "get" not in item:
            continue
        if "{" not in path:
            urls.append(path)
            continue
        match = resolve(path.replace("{id}", "1").replace("{ticket_pk}", "1"))
        view = getattr(match.func, "cls", None)
        if view is None or not issubclass(view, ScopedViewSetMixin):
            continue
        ids = {"id": view.queryset.model._default_manager.order_by("pk").first()}
        for kwarg, model in view.url_kwarg_models.items():
            ids[kwarg] = model._default_manager.order_by("pk").first()
        if all(ids.values()):
            urls.append(path.format(**{k: v.pk for k, v in ids.items()}))
    return urls


@pytest.mark.parametrize("user", ["s1_admin", "a_lead"])
def test_the_browsable_api_shows_every_get_route(world: Any, user: str) -> None:
    """The browsable API (Accept: text/html) builds each view's serializer for its forms,
    without what the view's own answers pass (the ticket page failed with KeyError)."""
    client = world.client(user)
    urls = _detail_urls(world, client)
    assert len(urls) > 30
    failures = []
    for url in urls:
        response = client.get(url, HTTP_ACCEPT="text/html")
        if response.status_code >= 500:
            failures.append(f"{url}: {response.status_code}")
    assert not failures, "\n".join(failures)
