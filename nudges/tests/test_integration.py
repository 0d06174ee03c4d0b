"""An account manager's nudges, end to end with real parts: the API to write a template
and a rule, the planner, a real Celery worker (a subprocess, fed through the real broker)
running ``dispatch_nudges``, SendGrid's own SDK posting to the loopback fake of SendGrid,
and the fake posting signed delivery events back to a live Django server.

The clock. Nudges go out only inside the school's send window on a school working day,
and weekends and bank holidays are never working days (accounts.working_time): no data
set-up opens a window on a Saturday afternoon, whatever the school's timezone. So that
these tests run the same on any day of the year, this process and the worker share one
virtual clock: real time shifted by a fixed offset (time-machine, ticking) so that the
test starts on Tuesday 24 November 2026 at 10:00 in London, in the school's window. Only
the wall clock moves; monotonic clocks, the database and the broker are untouched.

The helpers here (the worker with its environment, the shared clock, publishing through
a given broker, waiting with a deadline) are reused by test_faults.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import kombu.pools
import pytest
import time_machine
from django.conf import settings
from django.utils import timezone

from accounts.tests import factories as f
from nudges.models import Nudge, NudgeEvent, NudgeRule, OptOut, Suppression
from nudges.tasks import dispatch_nudges, plan_nudges
from partnership_crm.celery import app
from partnership_crm.reply_tokens import read_reply_address
from tests import test_worker_integration as wi
from tests.fakes.sendgrid import FakeSendGrid

pytestmark = [
    pytest.mark.integration,
    pytest.mark.django_db(transaction=True),
    pytest.mark.xdist_group("celery-worker"),
]

# The broker fixture of tests/test_worker_integration.py: a leased Redis database when
# REDIS_URL is set, else the filesystem broker in a temporary folder.
broker = wi.broker

LONDON = ZoneInfo("Europe/London")
# A Tuesday in the autumn term, no bank holiday: inside the default send window (07:30-16:30).
VIRTUAL_START = datetime(2026, 11, 24, 10, 0, tzinfo=LONDON)
FROM_EMAIL = "nudges@crm.example.org"  # the fake, like SendGrid, wants a dotted domain
WEBHOOK_PATH = "/webhooks/sendgrid/events/"

# Starts the Celery CLI with the wall clock shifted by CRM_TEST_CLOCK_OFFSET seconds.
_LAUNCHER = """\
import os, sys, time
offset = float(os.environ.get("CRM_TEST_CLOCK_OFFSET") or 0)
if offset:
    import time_machine
    time_machine.travel(time.time() + offset, tick=True).start()
    time.time()  # time-machine starts the clock ticking at its first reading
from celery.__main__ import main
sys.argv[0] = "celery"
sys.exit(main())
"""


# --- The shared clock -----------------------------------------------------------------------


@dataclass
class Clock:
    """This process's shifted wall clock; workers started with ``offset`` share it."""

    traveller: Any
    offset: float

    def advance(self, seconds: float) -> None:
        """Jump this process's clock; workers started afterwards get the new offset."""
        self.traveller.shift(seconds)
        self.offset += seconds


@contextmanager
def virtual_clock(start: datetime = VIRTUAL_START) -> Iterator[Clock]:
    offset = start.timestamp() - time.time()
    traveller = time_machine.travel(start, tick=True)
    coordinates = traveller.start()
    time.time()  # time-machine starts the clock ticking at its first reading
    try:
        yield Clock(coordinates, offset)
    finally:
        traveller.stop()


@pytest.fixture
def school_clock() -> Iterator[Clock]:
    with virtual_clock() as clock:
        yield clock


# --- Publishing and the worker ----------------------------------------------------------


@contextmanager
def publishing_to(broker: wi.Broker) -> Iterator[wi.Broker]:
    """Make this process's .delay() go through ``broker`` for real (not eagerly), as in
    tests/test_worker_integration.py's publish_to, for any broker."""
    # kombu keeps connection and producer pools per broker URL in a global registry, and
    # other tests close theirs when they end: start from none, and leave none behind.
    kombu.pools.reset()
    with pytest.MonkeyPatch.context() as mp:
        for var in ("CELERY_BROKER_URL", "CELERY_BROKER_WRITE_URL"):
            mp.delenv(var, raising=False)
        mp.setitem(app.conf, "task_always_eager", False)
        mp.setitem(app.conf, "broker_url", broker.url)
        mp.setitem(app.conf, "broker_write_url", None)
        mp.setitem(app.conf, "broker_transport_options", broker.transport_options)
        mp.setattr(app, "_pool", None)
        mp.setattr(app.amqp, "_producer_pool", None)
        try:
            yield broker
        finally:
            for pool in (app.amqp._producer_pool, app._pool):
                if pool is not None:
                    pool.force_close_all()
            kombu.pools.reset()


def sendgrid_env(fake: FakeSendGrid, site_url: str = "") -> dict[str, str]:
    env = {
        "SENDGRID_API_KEY": fake.api_key,
        "SENDGRID_API_HOST": fake.host,
        "SENDGRID_WEBHOOK_PUBLIC_KEY": fake.public_key,
        "SENDGRID_TIMEOUT": "10",
        "NUDGE_FROM_EMAIL": FROM_EMAIL,
    }
    if site_url:
        env["SITE_URL"] = site_url  # unsubscribe links point at the live server
    return env


@contextmanager
def nudge_worker(
    tmp_path: Path,
    broker: wi.Broker,
    *,
    clock: Clock | None,
    env: dict[str, str],
    name: str = "worker",
) -> Iterator[wi.Worker]:
    """A real Celery worker (solo pool) on the test database and ``broker``, configured
    through its environment as in production, on the shared clock. Stopped (its whole
    process group) on the way out, whatever happened."""
    folder = tmp_path / name
    folder.mkdir(parents=True, exist_ok=True)
    full = {k: v for k, v in os.environ.items() if k not in wi._STRIPPED_ENV}
    full.update(broker.env)
    full.update(
        DJANGO_SETTINGS_MODULE="partnership_crm.settings",
        # This process's key: the live server must accept the unsubscribe links it signs.
        SECRET_KEY=str(settings.SECRET_KEY),
        # ...and the reply addresses it signs.
        INBOUND_DOMAIN=settings.INBOUND_DOMAIN,
        DATABASE_URL=wi._test_database_url(),
        VAR_DIR=str(folder / "var"),
        CELERY_TASK_ALWAYS_EAGER="false",
        CRM_TEST_CLOCK_OFFSET=repr(clock.offset if clock else 0.0),
        PYTHONPATH=os.pathsep.join(filter(None, [str(settings.BASE_DIR), full.get("PYTHONPATH")])),
    )
    full.update(env)
    command = [
        sys.executable,
        "-c",
        _LAUNCHER,
        "-A",
        "partnership_crm",
        "worker",
        "--pool=solo",
        "--loglevel=INFO",
        f"--hostname={name}-{uuid.uuid4().hex[:8]}@%h",
        "--without-mingle",
        "--without-gossip",
        "--without-heartbeat",
    ]
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
    worker = wi.Worker(process=process, log_path=log_path, command=["celery", *command[3:]])
    try:
        yield worker
    finally:
        worker.stop()
        print(worker.describe())  # shown by pytest only when the test fails


def wait_for(
    what: str,
    check: Callable[[], bool],
    *,
    timeout: float,
    workers: Iterable[wi.Worker] = (),
    interval: float = 0.2,
    detail: Callable[[], str] = lambda: "",
) -> float:
    """Poll ``check`` until it holds; fail with the workers' logs after ``timeout`` seconds
    or as soon as a worker has died. Returns the seconds waited."""
    started = time.monotonic()
    while not check():
        for w in workers:
            if w.process.poll() is not None:
                pytest.fail(
                    f"The worker exited ({w.process.returncode}) before {what}\n{w.describe()}"
                )
        if time.monotonic() - started > timeout:
            logs = "\n".join(w.describe() for w in workers)
            pytest.fail(f"No {what} after {timeout:.0f}s. {detail()}\n{logs}")
        time.sleep(interval)
    return time.monotonic() - started


def wait_for_worker_ready(worker: wi.Worker, timeout: float = 40.0) -> None:
    wait_for(
        "ready worker",
        lambda: " ready." in worker.output(),
        timeout=timeout,
        workers=[worker],
        interval=0.1,
    )


def deliveries_per_nudge(fake: FakeSendGrid) -> Counter[int | None]:
    with fake._lock:
        return Counter(d.nudge_id for d in fake.deliveries)


# --- The journey --------------------------------------------------------------------------


def _one_click(url: str) -> int:
    """What a mail client does for RFC 8058 one-click unsubscribe."""
    request = urllib.request.Request(
        url,
        data=b"List-Unsubscribe=One-Click",
        method="POST",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return int(response.status)


def test_an_account_managers_nudges_are_sent_once_delivered_and_honour_opt_outs_and_bounces(
    school_clock: Clock,
    world: Any,
    broker: wi.Broker,
    live_server: Any,
    settings: Any,
    tmp_path: Path,
) -> None:
    w = world
    # The cast's own nudges and rules are not this journey's.
    Nudge.objects.update(status=Nudge.Status.CANCELLED)
    NudgeRule.objects.update(is_active=False)
    ann = w.c_a_teacher
    bea = f.ContactFactory(
        school=w.school_a, first_name="Bea", tags=",teacher,", email="bea@bouncing.example.org"
    )
    carl = f.ContactFactory(school=w.school_a, first_name="Carl", tags=",teacher,")
    for contact in (bea, carl):
        f.PartnershipContactFactory(partnership=w.p_a1, contact=contact)
    am = w.client("s1_am")

    # The account manager writes a template and previews it for a teacher...
    r = am.post(
        "/api/v1/nudge-templates/",
        {
            "name": "Pilot check-in",
            "subject": "How is {{ product_name }} going, {{ first_name }}?",
            "body_text": "Hello {{ first_name }},\n\nHow is {{ product_name }} going at "
            "{{ school_name }}?\n\n{{ account_manager_signature }}",
        },
    )
    assert r.status_code == 201, r.content
    template_id = r.json()["id"]
    r = am.post(f"/api/v1/nudge-templates/{template_id}/preview/", {"contact": ann.pk})
    assert r.status_code == 200, r.content
    assert r.json()["subject"] == "How is Acme Maths going, Ann?"
    assert "How is Acme Maths going at Ashfield Primary?" in r.json()["text"]

    # ... makes a fortnightly rule for the pilot's teachers and previews what it will do...
    r = am.post(
        "/api/v1/nudge-rules/",
        {
            "partnership": w.p_a1.pk,
            "template": template_id,
            "name": "Fortnightly check-in",
            "trigger": "cadence",
            "every_n_school_weeks": 2,
            "audience_tags": ["teacher"],
        },
    )
    assert r.status_code == 201, r.content
    rule_id = r.json()["id"]
    r = am.post(f"/api/v1/nudge-rules/{rule_id}/preview/")
    assert r.status_code == 200, r.content
    drafts = r.json()
    assert {d["contact"] for d in drafts} == {ann.pk, bea.pk, carl.pk}
    # This week's (due now: the window is open) and the one two school weeks on.
    assert sorted({d["occurrence"] for d in drafts}) == ["cadence:2026-W48", "cadence:2026-W50"]

    # ... and the planner (beat's plan_nudges) turns it into rows.
    assert plan_nudges() == 6
    this_week = {
        n.contact_id: n
        for n in Nudge.objects.filter(rule_id=rule_id, occurrence="cadence:2026-W48")
    }
    assert set(this_week) == {ann.pk, bea.pk, carl.pk}
    assert all(n.due_at <= timezone.now() for n in this_week.values())

    fake = FakeSendGrid(
        api_key="SG.integration-test",
        webhook_url=live_server.url + WEBHOOK_PATH,
        bounce={bea.email},
        event_delay=0.2,
    )
    settings.SENDGRID_WEBHOOK_PUBLIC_KEY = fake.public_key  # the live server's key
    with (
        fake,
        publishing_to(broker),
        nudge_worker(
            tmp_path,
            broker,
            clock=school_clock,
            env=sendgrid_env(fake, site_url=live_server.url),
        ) as worker,
    ):
        # The beat task, sent through the broker to the worker.
        dispatch_nudges.delay()

        def settled() -> bool:
            rows = Nudge.objects.filter(pk__in=[n.pk for n in this_week.values()])
            done = {(n.status, n.delivery) for n in rows}
            return done <= {("sent", "delivered"), ("sent", "bounced")} and len(rows) == 3

        wait_for("sent and delivered nudges", settled, timeout=60, workers=[worker])
        assert fake.wait_for_events(10)

        # One request to SendGrid for the three, each email once, as the teacher reads it.
        assert fake.calls == 1
        assert deliveries_per_nudge(fake) == Counter({n.pk: 1 for n in this_week.values()})
        [to_ann] = fake.delivered_to(ann.email)
        assert to_ann.subject == "How is Acme Maths going, Ann?"
        assert "How is Acme Maths going at Ashfield Primary?" in (to_ann.text or "")
        assert "Account manager, Acme Learning" in (to_ann.text or "")
        assert to_ann.from_ == {"email": FROM_EMAIL, "name": "S1 Am (Acme Learning)"}
        # Ann's answer comes back to the product with her own token (inbound/).
        assert to_ann.reply_to and to_ann.reply_to["name"] == "S1 Am"
        token = read_reply_address(to_ann.reply_to["email"])
        assert (token.kind, token.object_id, token.recipient_id) == (
            "nudge",
            this_week[ann.pk].pk,
            ann.pk,
        )
        assert {status for status, _ in fake.webhook_posts} == {200}

        # The account manager sees it sent and delivered, with SendGrid's events.
        r = am.get(f"/api/v1/nudges/{this_week[ann.pk].pk}/")
        assert r.status_code == 200
        body = r.json()
        assert (body["status"], body["delivery"]) == ("sent", "delivered")
        assert body["sent_at"] and body["delivered_at"]
        assert [e["event"] for e in body["events"]] == ["processed", "delivered"]

        # Bea's address bounced: it is suppressed.
        assert Nudge.objects.get(pk=this_week[bea.pk].pk).delivery == "bounced"
        assert Suppression.objects.filter(email=bea.email.lower()).exists()

        # Carl unsubscribes from his mail client: RFC 8058 one-click, to the link SendGrid
        # carried in the email's headers.
        [to_carl] = fake.delivered_to(carl.email)
        assert to_carl.headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        link = to_carl.headers["List-Unsubscribe"].strip("<>")
        assert link.startswith(live_server.url + "/unsubscribe/")
        assert _one_click(link) == 200
        stop = OptOut.objects.get(contact=carl)
        assert (stop.supplier_id, stop.source) == (w.s1.pk, "one_click")
        # His next nudge from this rule, two weeks on, will not go.
        later = Nudge.objects.get(rule_id=rule_id, contact=carl, occurrence="cadence:2026-W50")
        assert later.status == "skipped"

        # A new weekly rule, planned after the stop and the bounce, makes nudges due now for
        # all three; the worker sends none of them again.
        r = am.post(
            "/api/v1/nudge-rules/",
            {
                "partnership": w.p_a1.pk,
                "template": template_id,
                "name": "Weekly tip",
                "trigger": "cadence",
                "every_n_school_weeks": 1,
                "audience_tags": ["teacher"],
            },
        )
        assert r.status_code == 201, r.content
        weekly_id = r.json()["id"]
        plan_nudges()
        weekly = {
            n.contact_id: n.pk
            for n in Nudge.objects.filter(rule_id=weekly_id, occurrence="cadence:2026-W48")
        }
        assert set(weekly) == {ann.pk, bea.pk, carl.pk}
        dispatch_nudges.delay()

        def held() -> bool:
            rows = {n.contact_id: n for n in Nudge.objects.filter(pk__in=weekly.values())}
            return (
                rows[carl.pk].status == "skipped"
                and rows[bea.pk].status == "skipped"
                and "limit" in rows[ann.pk].status_reason
            )

        wait_for(
            "nudges held back",
            held,
            timeout=60,
            workers=[worker],
            detail=lambda: (
                f"now {timezone.now()}: "
                + repr(
                    list(
                        Nudge.objects.filter(pk__in=weekly.values()).values(
                            "contact_id", "status", "next_attempt_at", "status_reason"
                        )
                    )
                )
            ),
        )
        rows = {n.contact_id: n for n in Nudge.objects.filter(pk__in=weekly.values())}
        assert "opted out" in rows[carl.pk].status_reason
        assert "bounced" in rows[bea.pk].status_reason
        # Ann had her one email of the week from this partnership: the next waits a week.
        assert rows[ann.pk].status == "scheduled"
        assert rows[ann.pk].next_attempt_at >= this_week[ann.pk].due_at + timedelta(days=6)

        # Still exactly the three emails, in the one request.
        assert fake.calls == 1
        assert deliveries_per_nudge(fake) == Counter({n.pk: 1 for n in this_week.values()})

    assert NudgeEvent.objects.filter(event="bounce", nudge_id=this_week[bea.pk].pk).exists()
    print(
        json.dumps(
            {
                "sendgrid_calls": fake.calls,
                "deliveries": len(fake.deliveries),
                "webhook_posts": len(fake.webhook_posts),
            }
        )
    )
