"""Answers agree with the schema a client generates its code from (issue 17, item 22): each
case here disagreed and was found by schemathesis's conformance checks
(``make fuzz-conformance``); the check runs on a real answer of the cast's world."""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from knox.models import AuthToken
from schemathesis import checks as st_checks

from partnership_crm.wsgi import application

from .test_fuzz import in_process_requests  # noqa: F401 (a fixture)

_RAW: dict[str, Any] = {}


@pytest.fixture
def schema(world: Any, request: pytest.FixtureRequest) -> Any:
    """The schema the API serves (generated once per test process). Then requests go
    in-process, on the test's connection (the test client reconnects Django's
    close_old_connections after each request, so that fixture comes after it)."""
    if not _RAW:
        _RAW.update(world.client("s1_am").get("/api/schema/", {"format": "json"}).json())
    request.getfixturevalue("in_process_requests")
    return schemathesis.openapi.from_dict(_RAW)


def _conforms(
    world: Any,
    schema: Any,
    user: str,
    method: str,
    path: str,
    body: Any = None,
    **path_parameters: Any,
) -> Any:
    """The answer, after checking its body against the schema (response_schema_conformance)."""
    st_checks.load_all_checks()
    _, token = AuthToken.objects.create(user=world.users[user])
    extra = {} if body is None else {"body": body, "media_type": "application/json"}
    case = schema[path][method].Case(path_parameters=path_parameters, **extra)
    response = case.call(app=application, headers={"Authorization": f"Token {token}"})
    assert response.status_code < 300, (path, response.status_code, response.content[:300])
    case.validate_response(response, checks=[st_checks.response_schema_conformance])
    return response.json()


def test_an_unresolved_ticket_has_no_outcome_and_the_schema_allows_it(
    world: Any, schema: Any
) -> None:
    body = _conforms(world, schema, "s1_am", "GET", "/api/v1/tickets/{id}/", id=world.t_a1.pk)
    assert body["outcome"] == ""
    listed = _conforms(world, schema, "s1_am", "GET", "/api/v1/tickets/")
    assert listed["results"][0]["outcome"] == ""


def test_a_schools_day_is_a_wall_clock_time_in_the_schema_too(world: Any, schema: Any) -> None:
    """ "08:30:00" is not an RFC 3339 time (no offset), which "format: time" demanded."""
    school = world.school_a
    body = _conforms(world, schema, "a_lead", "GET", "/api/v1/organisations/{id}/", id=school.pk)
    assert body["day_starts"] == school.day_starts.strftime("%H:%M:%S")
    supplier = _conforms(
        world, schema, "s1_am", "GET", "/api/v1/organisations/{id}/", id=world.s1.pk
    )
    assert supplier["phase"] == ""


def test_an_undecided_phase_has_no_decision_and_the_schema_allows_it(
    world: Any, schema: Any
) -> None:
    phase = world.ph_a1
    body = _conforms(world, schema, "s1_am", "GET", "/api/v1/trial-phases/{id}/", id=phase.pk)
    assert body["decision"] == ""


def test_a_rules_preview_is_the_list_the_schema_describes(world: Any, schema: Any) -> None:
    rule = world.rule_s1
    body = _conforms(
        world, schema, "s1_am", "POST", "/api/v1/nudge-rules/{id}/preview/", {}, id=rule.pk
    )
    assert isinstance(body, list)
    operation = schema["/api/v1/nudge-rules/{id}/preview/"]["POST"]
    answer = operation.definition.raw["responses"]["200"]["content"]["application/json"]
    assert answer["schema"]["type"] == "array"


def test_patching_a_readiness_action_without_done_changes_nothing(world: Any, schema: Any) -> None:
    """The schema's PATCH body has every field optional; the API asked for "done"."""
    action = world.fa_a1
    body = _conforms(
        world, schema, "s1_am", "PATCH", "/api/v1/readiness-actions/{id}/", {}, id=action.pk
    )
    assert body["id"] == action.pk
    action.refresh_from_db()
    assert action.done_at is None
    done = _conforms(
        world,
        schema,
        "s1_am",
        "PATCH",
        "/api/v1/readiness-actions/{id}/",
        {"done": True},
        id=action.pk,
    )
    assert done["done_at"]
