"""/healthz checks the real database and the real broker, answers 503 naming what failed,
and answers quickly even when the broker is unreachable or hangs."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.db import OperationalError, connection
from django.test import Client

from accounts.tasks import heartbeat
from partnership_crm.celery import app
from partnership_crm.health import BROKER_TIMEOUT_SECONDS

pytestmark = pytest.mark.django_db

UseBroker = Callable[..., None]


@pytest.fixture
def use_broker(monkeypatch: pytest.MonkeyPatch) -> UseBroker:
    """Point the app's broker somewhere else for one test; the check code runs unchanged."""

    def use(url: str, transport_options: dict[str, Any] | None = None) -> None:
        # Celery lets these environment variables override its configuration.
        for var in ("CELERY_BROKER_URL", "CELERY_BROKER_WRITE_URL"):
            monkeypatch.delenv(var, raising=False)
        monkeypatch.setitem(app.conf, "broker_url", url)
        monkeypatch.setitem(app.conf, "broker_write_url", None)
        if transport_options is not None:
            monkeypatch.setitem(app.conf, "broker_transport_options", transport_options)

    return use


@pytest.fixture
def closed_port() -> int:
    """A local port nothing listens on: connecting is refused at once."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A local port that completes the TCP handshake (the kernel does, from the backlog)
    but never answers: a hung broker."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(8)
        yield int(s.getsockname()[1])


def _get(client: Client) -> tuple[int, dict[str, Any], float]:
    started = time.monotonic()
    response = client.get("/healthz")
    return response.status_code, response.json(), time.monotonic() - started


def test_healthz_is_ok_when_the_database_and_the_broker_answer(client: Client) -> None:
    status, body, _ = _get(client)

    assert status == 200
    assert body["status"] == "ok"
    assert body["database"] == "ok"
    assert body["broker"] == "ok"
    assert body["last_beat_seconds_ago"] is None  # beat has never run in this database
    assert "no-cache" in client.get("/healthz")["Cache-Control"]


def test_healthz_reports_how_long_ago_beat_last_fired(client: Client) -> None:
    heartbeat()  # what the worker runs when beat fires it

    status, body, _ = _get(client)

    assert status == 200
    assert 0 <= body["last_beat_seconds_ago"] <= 5


def test_healthz_answers_503_naming_the_database_when_it_fails(client: Client) -> None:
    def refuse(*args: Any) -> None:
        raise OperationalError("could not connect to server")

    # The check's own cursor runs its own SQL; every statement is refused on the way out.
    with connection.execute_wrapper(refuse):
        status, body, _ = _get(client)

    assert status == 503
    assert body["status"] == "unavailable"
    assert body["database"] == "failed: OperationalError"
    assert body["broker"] == "ok"
    assert "last_beat_seconds_ago" not in body


def test_healthz_answers_503_naming_the_broker_quickly_when_it_refuses_connections(
    client: Client, use_broker: UseBroker, closed_port: int
) -> None:
    use_broker(f"redis://127.0.0.1:{closed_port}/0")

    status, body, elapsed = _get(client)

    assert status == 503
    assert body["broker"] == "failed: OperationalError"
    assert body["database"] == "ok"
    # One attempt, no retry with back-off (kombu would otherwise sleep 2 s and more).
    assert elapsed < 1.5


def test_healthz_gives_up_on_a_broker_that_hangs_after_its_timeout(
    client: Client, use_broker: UseBroker, silent_port: int
) -> None:
    use_broker(f"redis://127.0.0.1:{silent_port}/0")

    status, body, elapsed = _get(client)

    assert status == 503
    assert body["broker"].startswith("failed: ")
    assert body["database"] == "ok"
    assert elapsed < BROKER_TIMEOUT_SECONDS + 1.5


def test_healthz_answers_503_when_the_filesystem_brokers_folder_is_gone(
    client: Client, use_broker: UseBroker, tmp_path: Path
) -> None:
    queue = tmp_path / "queue"
    queue.mkdir()
    (tmp_path / "control").mkdir()
    options = {
        "data_folder_in": str(queue),
        "data_folder_out": str(queue),
        "control_folder": str(tmp_path / "control"),
    }
    use_broker("filesystem://", options)
    assert _get(client)[0] == 200  # the same broker with its folders in place is healthy

    queue.rmdir()
    status, body, _ = _get(client)

    assert status == 503
    assert body["broker"] == "failed: BrokerFolderMissing"


def test_sending_through_sendgrid_without_its_event_webhook_is_reported(
    client: Client, settings: Any
) -> None:
    from django.core.checks import run_checks

    assert "degraded" not in _get(client)[1]
    settings.SENDGRID_API_KEY = "SG.configured"
    settings.SENDGRID_WEBHOOK_PUBLIC_KEY = ""
    status, body, _ = _get(client)
    assert status == 200 and "SENDGRID_WEBHOOK_PUBLIC_KEY" in body["degraded"][0]
    assert "nudges.W001" in {w.id for w in run_checks()}
