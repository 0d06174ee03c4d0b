"""A real Celery worker (and beat) started as a subprocess against the test database:
beat schedules the heartbeat, the worker runs it, and a task sent from this process with
.delay() reaches that worker through the real broker.

The broker is Redis when REDIS_URL is set (on a Redis database leased for this test alone,
so parallel runs and xdist workers never take each other's tasks), otherwise the
embedded filesystem broker in a temporary folder.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import kombu.pools
import pytest
from celery.result import EagerResult
from django.conf import settings
from django.db import connection

from accounts.models import Heartbeat
from accounts.tasks import heartbeat
from partnership_crm.celery import app

pytestmark = [
    pytest.mark.integration,
    pytest.mark.django_db(transaction=True),
    # Each test starts a worker; on a 2-core machine two at once only slow each other.
    pytest.mark.xdist_group("celery-worker"),
]

WAIT_SECONDS = 40.0
# Inherited variables that would point the worker somewhere other than where we say.
_STRIPPED_ENV = (
    "DATABASE_URL",
    "CELERY_BROKER_URL",
    "CELERY_BROKER_READ_URL",
    "CELERY_BROKER_WRITE_URL",
    "CELERY_RESULT_BACKEND",
    "CELERY_FILESYSTEM_DIR",
    "CELERY_TASK_ALWAYS_EAGER",
    "VAR_DIR",
)


# --- The broker -------------------------------------------------------------------------

REDIS_LEASE_KEY = "partnership-crm:integration-test:lease"
# Marks a Redis database as this test's own, so leftovers of a killed run may be cleared.
REDIS_OWNED_KEY = "partnership-crm:integration-test:owned"
REDIS_LEASE_SECONDS = 600


@dataclass
class Broker:
    url: str
    transport_options: dict[str, Any]
    env: dict[str, str]


def _redis_url_for_db(redis_url: str, db: int) -> str:
    return urlunsplit(urlsplit(redis_url)._replace(path=f"/{db}"))


def _clear_leftovers(client: Any) -> None:
    keep = {REDIS_LEASE_KEY.encode(), REDIS_OWNED_KEY.encode()}
    for key in client.scan_iter(count=500):
        if key not in keep:
            client.delete(key)


@contextmanager
def _leased_redis_db(redis_url: str) -> Iterator[str]:
    """A Redis database for this test alone. Database 0 (the app's) is never used, nor a
    database holding anyone else's keys; a lease with an expiry guards against runs in
    parallel, and survives a killed run only until it expires."""
    import redis

    token = uuid.uuid4().hex
    for db in range(1, 16):
        url = _redis_url_for_db(redis_url, db)
        client = redis.Redis.from_url(url, socket_timeout=5)
        try:
            if not client.set(REDIS_LEASE_KEY, token, nx=True, ex=REDIS_LEASE_SECONDS):
                continue  # leased by a run in progress
        except redis.ResponseError:
            break  # "DB index is out of range": the server has fewer databases
        if client.exists(REDIS_OWNED_KEY) or client.dbsize() == 1:
            client.set(REDIS_OWNED_KEY, "1")
            _clear_leftovers(client)  # a killed run's queue must not feed this worker
            try:
                yield url
            finally:
                _clear_leftovers(client)
                if client.get(REDIS_LEASE_KEY) == token.encode():
                    client.delete(REDIS_LEASE_KEY)
                client.close()
            return
        client.delete(REDIS_LEASE_KEY)  # someone else's data: leave it alone
        client.close()
    pytest.fail(f"No free Redis database (1-15) to lease at {redis_url}")


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    redis_url = os.environ.get("REDIS_URL")
    if redis_url:
        with _leased_redis_db(redis_url) as url:
            yield Broker(url=url, transport_options={}, env={"CELERY_BROKER_URL": url})
        return
    # The same layout settings.py builds from CELERY_FILESYSTEM_DIR, so that this process
    # publishes where the worker consumes.
    folder = tmp_path / "broker"
    for sub in ("queue", "control", "processed"):
        (folder / sub).mkdir(parents=True)
    yield Broker(
        url="filesystem://",
        transport_options={
            "data_folder_in": str(folder / "queue"),
            "data_folder_out": str(folder / "queue"),
            "control_folder": str(folder / "control"),
            "processed_folder": str(folder / "processed"),
            "store_processed": False,
        },
        env={"CELERY_BROKER_URL": "filesystem://", "CELERY_FILESYSTEM_DIR": str(folder)},
    )


# --- The worker -------------------------------------------------------------------------


def _test_database_url() -> str:
    """The database this test runs on (with pytest-django's test name and any xdist
    suffix), as a DATABASE_URL for the worker's settings."""
    db = connection.settings_dict
    name = str(db["NAME"])
    if db["ENGINE"] == "django.db.backends.sqlite3":
        if name == ":memory:" or name.startswith("file:"):
            pytest.fail("The worker needs the test database in a file (see settings_test.py)")
        return f"sqlite:///{Path(name).resolve()}"
    if db["ENGINE"] == "django.db.backends.postgresql":
        auth = quote(str(db["USER"] or ""), safe="")
        if db["PASSWORD"]:
            auth += ":" + quote(str(db["PASSWORD"]), safe="")
        netloc = f"{auth}@{quote(str(db['HOST'] or ''), safe='')}"
        if db["PORT"]:
            netloc += f":{db['PORT']}"
        return f"postgres://{netloc}/{quote(name, safe='')}"
    pytest.fail(f"No DATABASE_URL form for {db['ENGINE']}")


@dataclass
class Worker:
    process: subprocess.Popen[bytes]
    log_path: Path
    command: list[str] = field(default_factory=list)

    def output(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def describe(self) -> str:
        return f"$ {' '.join(self.command)}\n--- worker output ---\n{self.output()}"

    def stop(self) -> None:
        """SIGTERM to its process group (the worker and its embedded beat), then SIGKILL."""
        pgid = self.process.pid  # start_new_session: the worker leads its own group
        if self.process.poll() is None:
            _signal_group(pgid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                _signal_group(pgid, signal.SIGKILL)
                self.process.wait(timeout=10)
        # Beat runs in a child process; make sure nothing of the group outlives the test.
        _signal_group(pgid, signal.SIGKILL)


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with suppress(ProcessLookupError):  # the group has already gone
        os.killpg(pgid, sig)


@contextmanager
def _running_worker(tmp_path: Path, broker: Broker, *, beat: bool) -> Iterator[Worker]:
    env = {k: v for k, v in os.environ.items() if k not in _STRIPPED_ENV}
    env.update(broker.env)
    env.update(
        DJANGO_SETTINGS_MODULE="partnership_crm.settings",
        SECRET_KEY="integration-tests-only-not-a-secret",
        DATABASE_URL=_test_database_url(),
        # Its own var/ (static, outbox); the database path above is absolute, so unaffected.
        VAR_DIR=str(tmp_path / "var"),
        HEARTBEAT_SECONDS="1",
        CELERY_TASK_ALWAYS_EAGER="false",
        # The worker runs from tmp_path (beat may write files in its working directory).
        PYTHONPATH=os.pathsep.join(filter(None, [str(settings.BASE_DIR), env.get("PYTHONPATH")])),
    )
    command = [
        str(Path(sys.executable).with_name("celery")),
        "-A",
        "partnership_crm",
        "worker",
        "--pool=solo",
        "--loglevel=INFO",
        f"--hostname=integration-{uuid.uuid4().hex[:8]}@%h",
        # No waiting for (or chatting with) other workers: faster start, no cross-talk.
        "--without-mingle",
        "--without-gossip",
        "--without-heartbeat",
    ]
    if beat:
        command.append("--beat")  # the scheduler comes from settings: DatabaseScheduler
    log_path = tmp_path / ("worker-beat.log" if beat else "worker.log")
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command,
            cwd=tmp_path,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    worker = Worker(process=process, log_path=log_path, command=command)
    try:
        yield worker
    finally:
        worker.stop()
        # Shown by pytest only when the test fails.
        print(worker.describe())


def _heartbeats() -> int:
    count = Heartbeat.objects.filter(name="beat").values_list("count", flat=True).first()
    return count or 0


def _wait_for_heartbeats(worker: Worker, at_least: int) -> int:
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        count = _heartbeats()
        if count >= at_least:
            return count
        if worker.process.poll() is not None:
            pytest.fail(f"The worker exited ({worker.process.returncode})\n{worker.describe()}")
        if time.monotonic() > deadline:
            pytest.fail(
                f"{count} heartbeat(s) after {WAIT_SECONDS:.0f}s, wanted {at_least}\n"
                f"{worker.describe()}"
            )
        time.sleep(0.25)


@pytest.fixture
def publish_to(broker: Broker, monkeypatch: pytest.MonkeyPatch) -> Iterator[Broker]:
    """Make this process send tasks through the test's broker, for real (not eagerly),
    the way the web process does in production."""
    for var in ("CELERY_BROKER_URL", "CELERY_BROKER_WRITE_URL"):
        monkeypatch.delenv(var, raising=False)  # Celery lets these beat its configuration
    monkeypatch.setitem(app.conf, "task_always_eager", False)
    monkeypatch.setitem(app.conf, "broker_url", broker.url)
    monkeypatch.setitem(app.conf, "broker_write_url", None)
    monkeypatch.setitem(app.conf, "broker_transport_options", broker.transport_options)
    # The app keeps a connection and producer pool per process, built from the broker
    # settings on first use: start from none so that .delay() connects to this broker.
    monkeypatch.setattr(app, "_pool", None)
    monkeypatch.setattr(app.amqp, "_producer_pool", None)
    # kombu keeps pools per broker URL in a global registry: start from none and leave
    # none behind, or a later test's .delay() meets a closed pool.
    kombu.pools.reset()
    yield broker
    for pool in (app.amqp._producer_pool, app._pool):
        if pool is not None:
            pool.force_close_all()
    kombu.pools.reset()


# --- Tests ------------------------------------------------------------------------------


def test_beat_schedules_the_heartbeat_and_the_worker_runs_it_every_second(
    tmp_path: Path, broker: Broker
) -> None:
    assert _heartbeats() == 0

    with _running_worker(tmp_path, broker, beat=True) as worker:
        started = time.monotonic()
        count = _wait_for_heartbeats(worker, at_least=2)
        elapsed = time.monotonic() - started

    # Two runs of a one-second schedule: beat fired it more than once, the worker ran both.
    assert count >= 2
    print(f"2 heartbeats {elapsed:.1f}s after starting the worker")


def test_a_task_sent_with_delay_from_this_process_is_run_by_the_worker(
    tmp_path: Path, publish_to: Broker
) -> None:
    # No beat this time, so the only heartbeat can be the one sent below.
    with _running_worker(tmp_path, publish_to, beat=False) as worker:
        result = heartbeat.delay()

        assert not isinstance(result, EagerResult)  # it went to the broker
        _wait_for_heartbeats(worker, at_least=1)
        assert result.id in worker.output()  # this very task, run by that worker

    assert _heartbeats() == 1
