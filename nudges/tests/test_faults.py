"""Exactly once under faults, with real parts: a real Celery worker (subprocess) on
PostgreSQL, Redis as the broker, SendGrid's SDK against the loopback fake, and the fake's
signed events coming back to a live server. Every nudge must reach the fake exactly once
(counted by the nudge_id custom arg of each accepted personalization), and the rows must
end up all sent and delivered.

(a) the worker is SIGKILLed while it waits for a slow SendGrid answer, mid-batch; a new
    worker recovers the dead claims and the webhook settles the ones in doubt;
(b) Redis (our own redis-server, the broker) is stopped and restarted while the worker is
    dispatching; the worker reconnects;
(c) SendGrid answers a storm of 429s (Retry-After: 1).

They need PostgreSQL (DATABASE_URL) and Redis (REDIS_URL): skipped without them, except
under CI=true, where they must run. On the clock, the helpers and the worker's environment,
see test_integration.py. Then, (d), in-process on any database: a long dispatch run
overlapped by another run's recovery keeps its claims and records SendGrid's answers.
Last, (e): the worker started from the Procfile's own worker line survives a Redis
restart mid-dispatch and runs tasks afterwards.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.db import connection
from django.db.models import Count
from django.utils import timezone

from accounts.models import Contact, Partnership
from accounts.tests import factories as f
from nudges.models import Nudge, NudgeEvent, NudgeTemplate
from nudges.tasks import dispatch_nudges
from tests import test_worker_integration as wi
from tests.fakes.sendgrid import FakeSendGrid, Reply

from .test_integration import (
    WEBHOOK_PATH,
    Clock,
    deliveries_per_nudge,
    nudge_worker,
    publishing_to,
    sendgrid_env,
    virtual_clock,
    wait_for,
    wait_for_worker_ready,
)

pytestmark = [
    pytest.mark.integration,
    pytest.mark.django_db(transaction=True),
    pytest.mark.xdist_group("celery-worker"),
]

broker = wi.broker  # a leased Redis database (these tests need REDIS_URL)

NUDGES = 3000
BATCH = 500
SETTLE_TIMEOUT = 60.0  # seconds for everything to be sent and delivered after the fault
FAULT_ENV = {
    "NUDGE_BATCH_SIZE": str(BATCH),
    "NUDGE_STALE_CLAIM_SECONDS": "2",
    # Well over the fake's event delay (1 s) plus the webhook's backlog on a busy machine:
    # a nudge in doubt is resent when SendGrid has said nothing about it for this long.
    "NUDGE_SETTLE_SECONDS": "8",
}
EVENT_DELAY = 1.0


def _need(condition: bool, why: str) -> None:
    if condition:
        return
    message = f"Fault tests need PostgreSQL and Redis: {why}"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture
def real_services() -> None:
    _need(
        connection.vendor == "postgresql",
        f"the test database is {connection.vendor} (set DATABASE_URL=postgres://...)",
    )
    _need(bool(os.environ.get("REDIS_URL")), "REDIS_URL is not set")


@pytest.fixture
def clock(real_services: None) -> Iterator[Clock]:
    with virtual_clock() as c:
        yield c


# --- Data -------------------------------------------------------------------------------------


def make_due_nudges(count: int) -> list[int]:
    """``count`` nudges due now, to distinct contacts, from three account managers (so each
    claimed batch goes to SendGrid in three requests, one per sender)."""
    s1, s2 = f.SupplierFactory(name="Acme Learning"), f.SupplierFactory(name="Brightboard")
    a, b = f.SchoolFactory(name="Ashfield Primary"), f.SchoolFactory(name="Beacon Academy")
    partnerships = [
        f.PartnershipFactory(supplier=s, school=school, account_manager=f.UserFactory())
        for s, school in ((s1, a), (s1, b), (s2, a))
    ]
    templates = {
        s.pk: NudgeTemplate.objects.create(
            supplier=s,
            name="Check-in",
            subject="Hello {{ first_name }}",
            body_text="How is it going at {{ school_name }}?\n\n{{ account_manager_signature }}",
        )
        for s in (s1, s2)
    }
    contacts = Contact.objects.bulk_create(
        [
            Contact(
                school=partnerships[i % 3].school,
                first_name=f"Teacher{i}",
                last_name="Test",
                email=f"teacher{i}@staff.example.org",
            )
            for i in range(count)
        ],
        batch_size=1000,
    )
    now = timezone.now()
    nudges = Nudge.objects.bulk_create(
        [
            _nudge(partnerships[i % 3], contact, templates, now)
            for i, contact in enumerate(contacts)
        ],
        batch_size=1000,
    )
    return [n.pk for n in nudges]


def _nudge(
    p: Partnership, contact: Contact, templates: dict[int, NudgeTemplate], now: Any
) -> Nudge:
    return Nudge(
        supplier_id=p.supplier_id,
        school_id=p.school_id,
        partnership=p,
        contact=contact,
        template=templates[p.supplier_id],
        occurrence=f"manual:fault-{contact.pk}",
        due_at=now,
        next_attempt_at=now,
    )


def statuses(ids: list[int]) -> dict[str, int]:
    rows = Nudge.objects.filter(pk__in=ids).values_list("status").annotate(n=Count("id"))
    return dict(sorted(rows))


def all_delivered(ids: list[int]) -> bool:
    return Nudge.objects.filter(pk__in=ids, status="sent", delivery="delivered").count() == len(ids)


def recovered(worker: wi.Worker) -> Counter[str]:
    """What recover() did in this worker, summed from its log lines."""
    total: Counter[str] = Counter()
    for match in re.finditer(r"recovered=(\{[^}]*\})", worker.output()):
        for key, value in re.findall(r"'(\w+)': (\d+)", match.group(1)):
            total[key] += int(value)
    return total


def assert_exactly_once(fake: FakeSendGrid, ids: list[int]) -> None:
    assert fake.wait_for_events(30), "the fake still has events to post"
    per_nudge = deliveries_per_nudge(fake)
    twice = {nid: n for nid, n in per_nudge.items() if n > 1}
    assert not twice, f"{len(twice)} nudges reached SendGrid more than once: {list(twice)[:10]}"
    assert set(per_nudge) == set(ids), f"{len(set(ids) - set(per_nudge))} never reached it"
    assert statuses(ids) == {"sent": len(ids)}
    assert all_delivered(ids)
    # One processed and one delivered event per nudge, each recorded once.
    assert NudgeEvent.objects.filter(nudge_id__in=ids).count() == 2 * len(ids)


def dispatch_until_delivered(
    ids: list[int], workers: list[wi.Worker], *, every: float = 1.5, timeout: float = SETTLE_TIMEOUT
) -> float:
    """Send dispatch_nudges the way beat would (here every ``every`` seconds) until every
    nudge is sent and delivered."""
    last = 0.0

    def done() -> bool:
        nonlocal last
        if all_delivered(ids):
            return True
        if time.monotonic() - last >= every:
            dispatch_nudges.delay()
            last = time.monotonic()
        return False

    return wait_for(
        "delivery of every nudge",
        done,
        timeout=timeout,
        workers=workers,
        detail=lambda: f"statuses {statuses(ids)}",
    )


def task_runs(worker: wi.Worker) -> int:
    return worker.output().count("Task nudges.tasks.dispatch_nudges[") // 2  # received + done


def _pending_request(fake: FakeSendGrid) -> int | None:
    """The index of the request the fake is still answering (the last one), if any."""
    with fake._lock:
        if fake.answers and fake.answers[-1] == -1:
            return len(fake.answers) - 1
    return None


# --- (a) SIGKILL mid-batch ----------------------------------------------------------------


def test_a_worker_killed_mid_batch_loses_nothing_and_sends_nothing_twice(
    clock: Clock, broker: wi.Broker, live_server: Any, settings: Any, tmp_path: Path
) -> None:
    ids = make_due_nudges(NUDGES)
    fake = FakeSendGrid(webhook_url=live_server.url + WEBHOOK_PATH, event_delay=EVENT_DELAY)
    settings.SENDGRID_WEBHOOK_PUBLIC_KEY = fake.public_key
    with fake, publishing_to(broker):
        env = {**sendgrid_env(fake), **FAULT_ENV}
        # A slow SendGrid: it takes each request at once but answers 0.4 s later.
        fake.default = Reply(delay=0.4)
        with nudge_worker(tmp_path, broker, clock=clock, env=env, name="killed") as first:
            wait_for_worker_ready(first)
            dispatch_nudges.delay()
            # Kill it while it waits for an answer, and not on the last request of a
            # claimed batch (three per batch, one per sender): the batch's later emails
            # are claimed but their request was never made.
            wait_for(
                "a request in progress mid-batch",
                lambda: (
                    (_pending_request(fake) or 0) >= 4 and (_pending_request(fake) or 0) % 3 != 2
                ),
                timeout=30,
                workers=[first],
                interval=0.01,
            )
            killed_on = _pending_request(fake)
            os.killpg(first.process.pid, signal.SIGKILL)
            first.process.wait(timeout=10)
        assert killed_on is not None
        at_kill = statuses(ids)
        in_doubt = Nudge.objects.filter(
            pk__in=ids, status="sending", send_attempted_at__isnull=False
        ).count()
        assert in_doubt > 0, at_kill
        calls_before = fake.calls

        fake.default = Reply()  # SendGrid answers promptly again
        with nudge_worker(tmp_path, broker, clock=clock, env=env, name="recovering") as second:
            wait_for_worker_ready(second)
            waited = dispatch_until_delivered(ids, [second])
            assert_exactly_once(fake, ids)
            recovery = recovered(second)

    # Only the request in flight was in doubt (SendGrid's events may settle it before the
    # recovery looks); the batch's emails after it were plainly released and sent, and
    # nothing was resent on a guess.
    assert 0 < in_doubt <= BATCH // 3 + 1 and recovery["in_doubt"] <= in_doubt
    assert recovery["released"] > 0 and recovery["resent"] == 0
    print(
        f"\n(a) SIGKILL on request #{killed_on + 1}: statuses then {at_kill}, "
        f"{in_doubt} in doubt; {calls_before} calls before, {fake.calls} in all; "
        f"recovery {dict(recovery)}; all {NUDGES} delivered once {waited:.1f}s after restart"
    )


# --- (b) Redis restarted mid-dispatch ----------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class RedisServer:
    """Our own redis-server on a loopback port, as the broker: stopped and started by the
    test (the shared Redis is never touched)."""

    binary: str
    port: int
    folder: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        log = (self.folder / "redis.log").open("ab")
        self.process = subprocess.Popen(
            [
                self.binary,
                *("--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.folder)),
                *("--save", "", "--appendonly", "no", "--protected-mode", "no"),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        log.close()
        wait_for("redis-server answering", self._answers, timeout=15, interval=0.05)

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.process = None

    def _answers(self) -> bool:
        import redis

        try:
            return bool(redis.Redis(port=self.port, socket_timeout=1).ping())
        except redis.RedisError:
            return False


@contextmanager
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    binary = shutil.which("redis-server") or "/usr/bin/redis-server"
    _need(os.path.exists(binary), "no redis-server binary to start our own broker")
    folder = tmp_path / "redis"
    folder.mkdir()
    server = RedisServer(binary, _free_port(), folder)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def test_a_redis_restart_mid_dispatch_loses_nothing_and_sends_nothing_twice(
    clock: Clock, live_server: Any, settings: Any, tmp_path: Path
) -> None:
    ids = make_due_nudges(NUDGES)
    fake = FakeSendGrid(webhook_url=live_server.url + WEBHOOK_PATH, event_delay=EVENT_DELAY)
    settings.SENDGRID_WEBHOOK_PUBLIC_KEY = fake.public_key
    with fake, own_redis(tmp_path) as redis_server:
        env = {**sendgrid_env(fake), **FAULT_ENV}
        own = wi.Broker(
            url=redis_server.url,
            transport_options={},
            env={"CELERY_BROKER_URL": redis_server.url},
        )
        with (
            publishing_to(own),
            nudge_worker(tmp_path, own, clock=clock, env=env, name="worker") as worker,
        ):
            fake.default = Reply(delay=0.3)  # a dispatch of 18 requests takes ~6 s
            wait_for_worker_ready(worker)
            dispatch_nudges.delay()
            wait_for(
                "the dispatch under way", lambda: fake.calls >= 3, timeout=30, workers=[worker]
            )
            redis_server.stop()  # no persistence: the queue and unacked task are gone
            stopped_at_call = fake.calls
            time.sleep(2)
            redis_server.start()
            fake.default = Reply()
            waited = dispatch_until_delivered(ids, [worker])
            assert_exactly_once(fake, ids)
            pid_alive = worker.process.poll() is None
            log = worker.output()

    assert pid_alive  # the same worker throughout: it reconnected
    assert "Connection to broker lost" in log or "Cannot connect to redis" in log, log[-3000:]
    assert task_runs(worker) >= 2  # and ran tasks sent after the restart
    print(
        f"\n(b) Redis stopped at SendGrid call {stopped_at_call}, back 2 s later; "
        f"{fake.calls} calls; all {NUDGES} delivered once {waited:.1f}s after the restart"
    )


# --- (c) A storm of 429s -------------------------------------------------------------------


def test_a_storm_of_429s_delays_but_sends_everything_exactly_once(
    clock: Clock, broker: wi.Broker, live_server: Any, settings: Any, tmp_path: Path
) -> None:
    ids = make_due_nudges(NUDGES)
    fake = FakeSendGrid(webhook_url=live_server.url + WEBHOOK_PATH, event_delay=EVENT_DELAY)
    settings.SENDGRID_WEBHOOK_PUBLIC_KEY = fake.public_key
    storm = 12  # four tries for each of the first three requests: all refused
    fake.script(*[Reply(429, {"Retry-After": "1"})] * storm)
    with fake, publishing_to(broker):
        env = {**sendgrid_env(fake), **FAULT_ENV}
        with nudge_worker(tmp_path, broker, clock=clock, env=env, name="first") as first:
            wait_for_worker_ready(first)
            dispatch_nudges.delay()
            wait_for(
                "the first dispatch", lambda: task_runs(first) >= 1, timeout=60, workers=[first]
            )
            after_storm = statuses(ids)
            busy = Nudge.objects.filter(
                pk__in=ids, status="scheduled", status_reason="SendGrid busy: will retry"
            )
            retrying = busy.count()
            assert retrying == BATCH  # the first batch, all three of its requests refused
            wait_ahead = min(n.next_attempt_at for n in busy) - timezone.now()
            # Not before its backoff: a dispatch now sends nothing.
            calls = fake.calls
            dispatch_nudges.delay()
            wait_for(
                "the second dispatch", lambda: task_runs(first) >= 2, timeout=30, workers=[first]
            )
            assert fake.calls == calls

        # A minute later (beat's next runs), on a worker started then.
        clock.advance(wait_ahead.total_seconds() + 1)
        with nudge_worker(tmp_path, broker, clock=clock, env=env, name="later") as later:
            wait_for_worker_ready(later)
            dispatch_until_delivered(ids, [later])
            assert_exactly_once(fake, ids)

    answers = Counter(fake.answers)
    assert answers[429] == storm
    # The storm's 12 calls, then one request per sender per batch: 6 batches x 3.
    assert answers[202] == (NUDGES // BATCH) * 3
    print(
        f"\n(c) {storm} x 429 (Retry-After: 1): after the first dispatch {after_storm}, "
        f"{retrying} rescheduled {wait_ahead.total_seconds():.0f}s ahead; "
        f"{fake.calls} calls in all ({answers[429]} x 429, {answers[202]} x 202)"
    )


# --- (d) A long run overlapped by another worker's recovery -------------------------------
# In-process (the clock moved by the sender): beat starts a dispatch every minute on any
# worker, so a long run is overlapped by other runs, whose recover() must not take its
# live claims for those of a dead worker.


@dataclass
class SlowSendGrid:
    """Each request takes ``seconds`` (on the travelling clock), and meanwhile another
    worker's dispatch_nudges runs recover()."""

    traveller: Any
    seconds: float
    calls: int = 0
    accepted: Counter[int] = field(default_factory=Counter)

    def send(self, sender: Any, emails: list[Any], request_log: Any) -> Any:
        from nudges.dispatch import recover
        from nudges.sendgrid import Outcome, SendReport

        emails = request_log.started(emails)
        self.calls += 1
        self.traveller.shift(self.seconds)
        recover()
        accepted = Outcome("accepted", message_id=f"msg-{self.calls}")
        self.accepted.update(e.nudge_id for e in emails)
        return SendReport(outcomes={e.nudge_id: accepted for e in emails}, calls=1)


@pytest.mark.parametrize(
    "seconds",
    [200, 400],
    ids=["each-request-shorter-than-the-stale-time", "one-request-longer-than-it"],
)
def test_claims_of_a_long_running_dispatch_are_not_taken_for_dead_ones(
    seconds: float, settings: Any
) -> None:
    from nudges.dispatch import dispatch_due

    settings.NUDGE_STALE_CLAIM_SECONDS = 300
    with virtual_clock() as clock:
        ids = make_due_nudges(30)
        slow = SlowSendGrid(clock.traveller, seconds)
        stats = dispatch_due(batch_size=10, sender=slow)  # 3 batches x 3 senders

    assert stats.sent == 30
    # Each nudge went in exactly one request. A request longer than the stale time makes
    # the rest of its batch look abandoned: released, they are sent by a later claim, and
    # this run leaves them out of its own requests.
    assert set(slow.accepted.values()) == {1} and len(slow.accepted) == 30
    if seconds < settings.NUDGE_STALE_CLAIM_SECONDS:
        assert slow.calls == 9
    # Whatever a concurrent recovery thought, SendGrid's 202 is recorded: nothing is left
    # "in doubt" to be resent later.
    assert statuses(ids) == {"sent": 30}
    assert Nudge.objects.filter(pk__in=ids, sendgrid_message_id="").count() == 0


# --- (e) The worker as the Procfile runs it, through a Redis restart -----------------------
# The tests above start their own worker command. Production runs the Procfile's worker
# line; this test runs that line, with only the executable (this venv's Python, on the
# shared clock) and a unique --hostname changed.

PROCFILE = Path(__file__).resolve().parents[2] / "Procfile"


def procfile_worker_args() -> list[str]:
    """The Celery arguments of the Procfile's ``worker:`` line (after ``celery``)."""
    for line in PROCFILE.read_text().splitlines():
        if line.startswith("worker:"):
            words = line.split(":", 1)[1].split()
            return words[words.index(next(w for w in words if w.endswith("celery"))) + 1 :]
    raise LookupError(f"no worker: line in {PROCFILE}")


@contextmanager
def procfile_worker(
    tmp_path: Path,
    broker: wi.Broker,
    *,
    clock: Clock | None,
    env: dict[str, str],
    name: str = "procfile-worker",
    extra: tuple[str, ...] = (),
    launcher: tuple[str, ...] = (),
) -> Iterator[wi.Worker]:
    """Like test_integration.nudge_worker, but with the Procfile's worker arguments (plus
    ``extra``) instead of the solo pool. ``launcher``: Python arguments that start the
    Celery CLI instead of test_integration's (which shifts the clock)."""
    from .test_integration import _LAUNCHER

    folder = tmp_path / name
    folder.mkdir(parents=True, exist_ok=True)
    full = {k: v for k, v in os.environ.items() if k not in wi._STRIPPED_ENV}
    full.update(broker.env)
    full.update(
        DJANGO_SETTINGS_MODULE="partnership_crm.settings",
        SECRET_KEY=str(django_settings.SECRET_KEY),
        INBOUND_DOMAIN=django_settings.INBOUND_DOMAIN,
        DATABASE_URL=wi._test_database_url(),
        VAR_DIR=str(folder / "var"),
        CELERY_TASK_ALWAYS_EAGER="false",
        CRM_TEST_CLOCK_OFFSET=repr(clock.offset if clock else 0.0),
        PYTHONPATH=os.pathsep.join(
            filter(None, [str(django_settings.BASE_DIR), full.get("PYTHONPATH")])
        ),
    )
    full.update(env)
    args = [*procfile_worker_args(), f"--hostname={name}-{uuid.uuid4().hex[:8]}@%h", *extra]
    command = [sys.executable, *(launcher or ("-c", _LAUNCHER)), *args]
    log_path = folder / "worker.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command,
            cwd=folder,
            env=full,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    worker = wi.Worker(process=process, log_path=log_path, command=["celery", *args])
    try:
        yield worker
    finally:
        worker.stop()
        print(worker.describe())  # shown by pytest only when the test fails


def test_the_procfile_worker_survives_a_redis_restart_and_dispatches_afterwards(
    clock: Clock, live_server: Any, settings: Any, tmp_path: Path
) -> None:
    """Redis stopped for 10 s while the Procfile's worker is running a dispatch (its task
    unacknowledged: acks_late): the same worker process reconnects, runs beat's next tasks
    and sends the nudges that fell due meanwhile. (A prefork worker, the Procfile's pool
    until issue 17 item 4, exited for good here: AttributeError 'NoneType' object has no
    attribute 'hostname' in kombu's restore_unacked.)"""
    ids = make_due_nudges(300)
    later = ids[200:]  # due only once Redis is back: only a dispatch run after it sends them
    Nudge.objects.filter(pk__in=later).update(next_attempt_at=timezone.now() + timedelta(days=1))
    fake = FakeSendGrid(webhook_url=live_server.url + WEBHOOK_PATH, event_delay=EVENT_DELAY)
    settings.SENDGRID_WEBHOOK_PUBLIC_KEY = fake.public_key
    with fake, own_redis(tmp_path) as redis_server:
        env = {**sendgrid_env(fake), **FAULT_ENV, "NUDGE_BATCH_SIZE": "50"}
        own = wi.Broker(
            url=redis_server.url,
            transport_options={},
            env={"CELERY_BROKER_URL": redis_server.url},
        )
        with (
            publishing_to(own),
            procfile_worker(tmp_path, own, clock=clock, env=env) as worker,
        ):
            fake.default = Reply(delay=0.5)  # 4 batches x 3 requests: ~6 s of dispatch
            wait_for_worker_ready(worker)
            dispatch_nudges.delay()
            wait_for(
                "the dispatch under way", lambda: fake.calls >= 2, timeout=30, workers=[worker]
            )
            redis_server.stop()
            time.sleep(10)
            redis_server.start()
            fake.default = Reply()
            runs_before = task_runs(worker)
            Nudge.objects.filter(pk__in=later).update(next_attempt_at=timezone.now())
            # wait_for fails at once if the worker process exits.
            waited = dispatch_until_delivered(ids, [worker], every=2.0, timeout=120)
            assert_exactly_once(fake, ids)
            time.sleep(2)  # a worker that hit an unrecoverable error exits after its task
            pid_alive = worker.process.poll() is None
            log = worker.output()

    assert pid_alive, log[-3000:]
    assert "Connection to broker lost" in log or "Cannot connect to redis" in log, log[-3000:]
    assert "Unrecoverable error" not in log, log[-3000:]
    assert task_runs(worker) > runs_before  # it ran tasks sent after the restart
    print(
        f"\n(e) Procfile worker: Redis down 10 s mid-dispatch; all delivered once {waited:.1f}s after"
    )
