"""Schema fuzzing: schemathesis generates requests from /api/schema/ for every operation,
as each role of the cast (supplier admin, account manager, school lead, teacher, each
with an API token), and no answer may be a server error (>= 500).

The suite runs a small bounded pass (``FUZZ_EXAMPLES`` examples per operation and
generation mode, 1 by default, derandomised) so CI catches a new 500 the day it is added;
``make fuzz`` runs the same test with many more examples. ``FUZZ_CHECKS`` names more
schemathesis checks to apply (``response_schema_conformance``, ``negative_data_rejection``
...): ``make fuzz-conformance`` uses it to find where answers and the schema disagree.

Requests go through the WSGI application in-process, inside the test's transaction, each
in a savepoint that is rolled back afterwards: every request meets the same world, and a
database error in one leaves the next a working connection. Path ids are drawn from the
rows that exist (of every tenant, so out-of-scope ids are tried too) as well as generated:
random integers alone find only 404s.
"""

from __future__ import annotations

import functools
import logging
import os
import re
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.db import close_old_connections, transaction
from django.urls import Resolver404, resolve
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from knox.models import AuthToken
from schemathesis import GenerationMode
from schemathesis import checks as st_checks

from partnership_crm.api import ScopedViewSetMixin
from partnership_crm.wsgi import application

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "1"))
EXTRA_CHECKS = [name for name in os.environ.get("FUZZ_CHECKS", "").split(",") if name]
VERBOSE = os.environ.get("FUZZ_VERBOSE", "") not in ("", "0")
ROLES = ["s1_admin", "s1_am", "a_lead", "a_teacher"]
# Signing out would revoke the token the rest of the run signs in with.
SKIPPED = {("POST", "/api/v1/auth/logout/")}


class _Log(logging.Handler):
    """The exceptions behind 500s (django.request logs each with its traceback), and the
    bad input that only the exception handler's last line of defence turned into a 400."""

    def __init__(self) -> None:
        super().__init__(level=logging.WARNING)
        self.errors: list[str] = []
        self.last_defence: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno >= logging.ERROR and record.exc_info and record.exc_info[1]:
            exc = record.exc_info[1]
            self.errors.append(f"{type(exc).__name__}: {str(exc)[:300]}")
        elif record.name in ("partnership_crm.drf", "partnership_crm.middleware"):
            self.last_defence.append(record.getMessage()[:300])


@pytest.fixture
def in_process_requests() -> Iterator[_Log]:
    """Keep the test's connection (and transaction) across requests, as Django's test
    client does, and collect what the server logged."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    handler = _Log()
    loggers = [logging.getLogger(name) for name in ("django.request", "partnership_crm")]
    for logger in loggers:
        logger.addHandler(handler)
    try:
        yield handler
    finally:
        for logger in loggers:
            logger.removeHandler(handler)
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


@functools.cache
def _schema() -> Any:
    """Loaded once per process: the roles share its compiled strategies."""
    return schemathesis.openapi.from_wsgi("/api/schema/?format=json", application)


def _checks() -> list[Any]:
    st_checks.load_all_checks()
    return [st_checks.not_a_server_error, *(getattr(st_checks, n) for n in EXTRA_CHECKS)]


def _has_inputs(operation: Any) -> bool:
    return any(len(part) for part in (operation.path_parameters, operation.query, operation.body))


def _existing_ids(path: str) -> dict[str, list[int]]:
    names = re.findall(r"{(\w+)}", path)
    if not names:
        return {}
    try:
        match = resolve(re.sub(r"{\w+}", "1", path))
    except Resolver404:
        return {}
    view = getattr(match.func, "cls", None)
    if view is None or not issubclass(view, ScopedViewSetMixin):
        return {}
    found: dict[str, list[int]] = {}
    for name in names:
        model = view.queryset.model if name == "id" else view.url_kwarg_models.get(name)
        if model is None:
            return {}
        found[name] = list(model._default_manager.order_by("pk").values_list("pk", flat=True))
    return found if all(found.values()) else {}


def _strategy(operation: Any, mode: GenerationMode) -> Any:
    generated = operation.as_strategy(generation_mode=mode)
    ids = _existing_ids(operation.path)
    if not ids:
        return generated
    real = st.fixed_dictionaries({k: st.sampled_from(v) for k, v in ids.items()}).flatmap(
        lambda params: operation.as_strategy(generation_mode=mode, path_parameters=params)
    )
    return st.one_of(real, real, generated)


def _runner(
    operation: Any,
    mode: GenerationMode,
    headers: dict[str, str],
    log: _Log,
    statuses: Counter[int],
    found: list[str],
    role: str,
) -> Callable[[], None]:
    checks = _checks()

    @given(case=_strategy(operation, mode))
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def run(case: Any) -> None:
        before = len(log.errors)
        with transaction.atomic():
            response = case.call(app=application, headers=headers)
            transaction.set_rollback(True)
        statuses[response.status_code] += 1
        if VERBOSE:
            print(role, response.status_code, case.method, response.request.url)
        if response.status_code >= 500:
            cause = log.errors[before] if len(log.errors) > before else "?"
            found.append(
                f"{role} {mode.value} {response.status_code} {case.method} "
                f"{response.request.url} body={str(case.body)[:200]!r}: {cause}"
            )
        case.validate_response(response, checks=checks)

    return run


def fuzz(role: str, world: Any, log: _Log) -> tuple[Counter[int], list[str]]:
    _, token = AuthToken.objects.create(user=world.users[role])
    headers = {"Authorization": f"Token {token}"}
    statuses: Counter[int] = Counter()
    failures: list[str] = []
    for result in _schema().get_all_operations():
        operation = result.ok()
        if (operation.method.upper(), operation.path) in SKIPPED:
            continue
        modes = [GenerationMode.POSITIVE]
        if _has_inputs(operation):
            modes.append(GenerationMode.NEGATIVE)
        for mode in modes:
            found: list[str] = []
            try:
                _runner(operation, mode, headers, log, statuses, found, role)()
            except Unsatisfiable:
                pass  # e.g. no invalid value exists for a parameter that takes any string
            except (Exception, BaseExceptionGroup) as exc:  # go on; report them all at the end
                failures.extend(found or [f"{role} {mode.value} {operation.label}: {exc}"[:1500]])
    return statuses, failures


@pytest.mark.parametrize("role", ROLES)
def test_no_generated_request_is_a_server_error(
    role: str, world: Any, in_process_requests: _Log
) -> None:
    started = time.monotonic()
    statuses, failures = fuzz(role, world, in_process_requests)
    took = time.monotonic() - started
    print(
        f"\nfuzz {role}: {sum(statuses.values())} requests in {took:.1f}s, "
        f"{EXAMPLES} example(s) per operation and mode; statuses {dict(sorted(statuses.items()))}"
    )
    for line in dict.fromkeys(in_process_requests.last_defence):
        print(f"  400 from the last line of defence: {line}")
    assert not failures, "\n".join(dict.fromkeys(failures))
