"""The chaos script: ``make chaos`` (``python -m bench.chaos``).

The real dispatcher through faults, each case with and without SendGrid's events:

* worker-kill:   the worker is SIGKILLed (its whole process group) while it waits for
                 SendGrid's answer mid-batch; a new worker is started;
* broker-kill:   our own redis-server (the broker) is stopped mid-dispatch for a few
                 seconds and started again, empty;
* 429-storm:     SendGrid answers every request 429 (Retry-After: 1) for a while;
* 500-storm:     the same with 500;
* slow-answers:  SENDGRID_TIMEOUT=2 and SendGrid ACCEPTS each mail but answers after 3 s
                 for a while: every one of those requests is "maybe sent";
* slow-lost:     the same, but SendGrid does NOT accept those mails (the request reached it,
                 and was lost there): "maybe sent" that was in fact never sent;
* slow-lost-later (not in the default run): slow-lost with later traffic: a tenth of the
                 nudges fall due 3 minutes after the rest, so that SendGrid's events for
                 them show the lost requests never arrived.

Real parts: Celery workers started from the Procfile's worker line (subprocesses), a
dedicated PostgreSQL database (CHAOS_DATABASE_URL, default
postgres://postgres@127.0.0.1:5432/crm_bench_chaos: created, migrated, and everything in
it replaced), a redis-server of our own on a free loopback port (the shared Redis is never
touched), SendGrid's SDK against the loopback fake (tests/fakes/sendgrid.py), and, "with
events", the fake's signed events posted to the product's webhook served from this
process. "Without events": no SENDGRID_WEBHOOK_PUBLIC_KEY and the fake posts nothing.

Beat is played by this process: dispatch_nudges sent every 2 s (beat: every 60 s). The
product's NUDGE_* defaults are kept (stale claim 300 s, settle 300 s, event margin 60 s,
backoffs of a minute and more); instead of waiting for them, when nothing is left to do
but wait, the wall clock of this process and of the workers (time-machine, as the tests'
virtual_clock) is moved to the next moment something is due and the worker restarted on
the new clock. The output says how much was skipped; "settle" is the time on that clock
from the end of the fault until no nudge is left scheduled, sending or unknown.

Deliveries are counted from the fake's accepted personalizations (their nudge_id custom
arg). Per case: due, delivered exactly once, duplicates, lost (no email, but the row says
done: sent, failed or skipped), unsettled (held for the supplier admin, or still unknown),
and the time to settle. Figures as JSON in var/bench/chaos-<timestamp>.json.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from bench.chaos import parts
from bench.chaos.parts import ROOT, log

CASES = ("worker-kill", "broker-kill", "429-storm", "500-storm", "slow-answers", "slow-lost")
MORE_CASES = ("slow-lost-later",)
LATER_SECONDS = 180  # slow-lost-later: when the later tenth falls due
BEAT_EVERY = 2.0  # real seconds between dispatch_nudges sent by this process
QUIET = 6.0  # real seconds without change (and no task running) before the clock moves
STORM_SECONDS = 15.0  # how long a storm / slow spell lasts (real seconds)
BROKER_DOWN = 5.0  # seconds the broker is down
SLOW_TIMEOUT = 2  # SENDGRID_TIMEOUT in the slow-answers case
SLOW_ANSWER = 3.0  # the fake's answer delay there (it accepts the mail first)
CASE_LIMIT = 300.0  # real seconds before a case is given up as stuck
DONE = ("sent", "failed", "skipped", "cancelled")


def _args() -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.chaos", description=__doc__.split("\n")[0])
    p.add_argument("--nudges", type=int, default=2000, help="nudges due in each case")
    p.add_argument("--batch-size", type=int, default=500, help="NUDGE_BATCH_SIZE")
    p.add_argument(
        "--cases", default=",".join(CASES), help="comma-separated, of: " + ", ".join(CASES)
    )
    p.add_argument(
        "--events", choices=("both", "with", "without"), default="both", help="webhook events"
    )
    p.add_argument("--pool", default="", help="extra worker arguments, e.g. '--pool=threads'")
    return p.parse_args()


# --- The webhook, served from this process ---------------------------------------------


@contextlib.contextmanager
def webhook_server() -> Any:
    from django.core.servers.basehttp import ThreadedWSGIServer, WSGIRequestHandler
    from django.core.wsgi import get_wsgi_application

    class Quiet(WSGIRequestHandler):
        def log_message(self, *args: Any) -> None:
            return

    server = ThreadedWSGIServer(("127.0.0.1", 0), Quiet)
    server.set_app(get_wsgi_application())
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1})
    thread.daemon = True
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


# --- One worker at a time, restarted as a supervisor would ----------------------------------


@dataclass
class Workers:
    folder: Path
    broker_url: str
    clock: Any
    env: dict[str, str]
    extra: list[str]
    started: int = 0
    died: int = 0  # exits we did not cause (a supervisor would restart them)
    logs: list[str] = field(default_factory=list)
    _cm: Any = None
    worker: Any = None

    def start(self) -> Any:
        self.started += 1
        name = f"worker-{self.started}"
        self._cm = parts.procfile_worker(
            self.folder / name,
            broker_url=self.broker_url,
            clock=self.clock,
            env=self.env,
            extra=self.extra,
        )
        self.worker = self._cm.__enter__()
        self.logs.append(str(self.worker.log_path.relative_to(ROOT)))
        parts.wait_until(
            lambda: " ready." in self.worker.output(), 90, "worker ready", [self.worker]
        )
        return self.worker

    def stop(self) -> None:
        if self._cm is not None:
            self._cm.__exit__(None, None, None)
        self._cm = self.worker = None

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.worker.process.pid, signal.SIGKILL)
        self.worker.process.wait(timeout=10)
        self.stop()

    def restart(self) -> None:
        self.stop()
        self.start()

    def ensure_alive(self) -> bool:
        """Restart a worker that exited by itself; True if it had."""
        if self.worker is not None and self.worker.process.poll() is None:
            return False
        if self.worker is not None:
            self.died += 1
            log(f"  the worker exited by itself ({self.worker.process.returncode}): restarting it")
        self.restart()
        return True

    def busy(self) -> bool:
        out = self.worker.output() if self.worker else ""
        received = out.count("] received")
        ended = out.count("] succeeded in") + out.count("] raised") + out.count("] retry:")
        return received > ended


def _quiet_error(request: Any, client_address: Any) -> None:
    if not isinstance(sys.exc_info()[1], ConnectionError):
        import traceback

        traceback.print_exc()


# --- Reading the rows ---------------------------------------------------------------------


def statuses() -> dict[str, int]:
    from django.db.models import Count

    from nudges.models import Nudge

    return dict(sorted(Nudge.objects.values_list("status").annotate(n=Count("id"))))


def next_moment(now: datetime) -> datetime | None:
    """The next time something becomes due for the dispatcher, on the product's settings:
    a retry's next attempt, a dead claim going stale, an unknown nudge to be settled."""
    from django.conf import settings
    from django.db.models import Min

    from nudges.models import Nudge

    stale = timedelta(seconds=settings.NUDGE_STALE_CLAIM_SECONDS + 1)
    settle = timedelta(seconds=settings.NUDGE_SETTLE_SECONDS + 1)
    q = Nudge.objects
    candidates = [
        q.filter(status="scheduled").aggregate(m=Min("next_attempt_at"))["m"],
        (q.filter(status="sending").aggregate(m=Min("claimed_at"))["m"] or None),
        (q.filter(status="unknown").aggregate(m=Min("send_attempted_at"))["m"] or None),
    ]
    if candidates[1]:
        candidates[1] += stale
    if candidates[2]:
        candidates[2] += settle
    times = [t for t in candidates if t is not None]
    return min(times) if times else None


def settled(counts: dict[str, int]) -> bool:
    return not any(counts.get(s) for s in ("scheduled", "sending", "unknown"))


# --- A case -----------------------------------------------------------------------------


@dataclass
class Context:
    args: argparse.Namespace
    clock: Any
    redis_server: Any
    webhook_url: str
    folder: Path
    world: Any

    def redis(self) -> Any:
        import redis

        return redis.Redis(port=self.redis_server.port, socket_timeout=2)

    def flush_redis(self) -> None:
        self.redis().flushall()

    def queued(self) -> int:
        try:
            return int(self.redis().llen("celery"))
        except Exception:
            return 0


def run_case(kind: str, events: bool, ctx: Context) -> dict[str, Any]:
    from django.conf import settings
    from django.db import connection
    from django.utils import timezone

    from bench.nudges import data
    from nudges.tasks import dispatch_nudges
    from nudges.tests.test_faults import _pending_request
    from nudges.tests.test_integration import deliveries_per_nudge, sendgrid_env
    from tests.fakes.sendgrid import FakeSendGrid, Reply

    name = f"{kind}/{'events' if events else 'no-events'}"
    log(f"{name}: loading {ctx.args.nudges:,} nudges")
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE nudges_nudgeevent, nudges_nudge, nudges_sendattempt CASCADE")
    ids = data.load_nudges(ctx.world, ctx.args.nudges, timezone.now() - timedelta(seconds=60))
    ctx.flush_redis()
    notes: list[str] = []
    if kind == "slow-lost-later":
        from nudges.models import Nudge

        later = ids[-max(1, len(ids) // 10) :]
        Nudge.objects.filter(pk__in=later).update(
            next_attempt_at=timezone.now() + timedelta(seconds=LATER_SECONDS)
        )
        notes.append(f"{len(later)} nudges fall due {LATER_SECONDS}s after the rest")

    fake = FakeSendGrid(webhook_url=ctx.webhook_url if events else None, event_delay=1.0)
    fake.start()
    # A killed worker's or a timed-out client's socket is gone when the fake answers: no
    # traceback for that on the console.
    fake._server.handle_error = _quiet_error  # type: ignore[union-attr, method-assign]
    settings.SENDGRID_WEBHOOK_PUBLIC_KEY = fake.public_key if events else ""
    env = {**sendgrid_env(fake), "NUDGE_BATCH_SIZE": str(ctx.args.batch_size)}
    if not events:
        del env["SENDGRID_WEBHOOK_PUBLIC_KEY"]
    if kind.startswith("slow-"):
        env["SENDGRID_TIMEOUT"] = str(SLOW_TIMEOUT)
    workers = Workers(
        ctx.folder / name.replace("/", "-"),
        ctx.redis_server.url,
        ctx.clock,
        env,
        ctx.args.pool.split(),
    )
    skipped = 0.0
    real_started = time.monotonic()

    def beat() -> None:
        if ctx.queued():
            return  # one run already waits for a free worker process
        with contextlib.suppress(Exception):  # the broker may be down: beat would retry
            dispatch_nudges.delay()

    try:
        with parts.publishing_to_url(ctx.redis_server.url):
            workers.start()
            # --- the fault
            if kind == "worker-kill":
                fake.default = Reply(delay=0.4)
                beat()
                parts.wait_until(
                    lambda: (_pending_request(fake) or 0) >= 2,
                    60,
                    "a request in flight mid-batch",
                    [workers.worker],
                    interval=0.01,
                )
                killed_on = _pending_request(fake)
                workers.kill()
                notes.append(f"SIGKILL while request #{(killed_on or 0) + 1} was in flight")
                fake.default = Reply()
                fault_end = timezone.now()
                workers.start()
            elif kind == "broker-kill":
                fake.default = Reply(delay=0.3)
                beat()
                parts.wait_until(
                    lambda: fake.calls >= 3, 60, "the dispatch under way", [workers.worker]
                )
                ctx.redis_server.stop()
                notes.append(
                    f"redis-server stopped at SendGrid call {fake.calls}, "
                    f"started {BROKER_DOWN:g}s later (empty)"
                )
                time.sleep(BROKER_DOWN)
                ctx.redis_server.start()
                fake.default = Reply()
                fault_end = timezone.now()
            else:
                until = time.monotonic() + STORM_SECONDS
                if kind == "slow-answers":
                    bad = Reply(delay=SLOW_ANSWER)  # accepted, answered after the timeout
                elif kind.startswith("slow-lost"):
                    bad = Reply(delay=SLOW_ANSWER, accept=False)  # never accepted
                else:
                    status = 429 if kind == "429-storm" else 500
                    bad = Reply(status, {"Retry-After": "1"} if status == 429 else {})
                fake.default = lambda _r: bad if time.monotonic() < until else None
                beat()
                last = time.monotonic()
                while time.monotonic() < until:
                    if time.monotonic() - last >= BEAT_EVERY:
                        beat()
                        last = time.monotonic()
                    time.sleep(0.1)
                fault_end = timezone.now()
                notes.append(f"{STORM_SECONDS:g}s of {kind.split('-')[0]} answers")
            real_fault_end = time.monotonic()

            # --- beat until settled, moving the clock over the waits
            last_beat = 0.0
            last_change = time.monotonic()
            snapshot: dict[str, int] = {}
            outcome = "settled"
            while True:
                if workers.ensure_alive():
                    last_change = time.monotonic()
                counts = statuses()
                if settled(counts):
                    break
                if counts != snapshot:
                    snapshot, last_change = counts, time.monotonic()
                if time.monotonic() - last_beat >= BEAT_EVERY:
                    beat()
                    last_beat = time.monotonic()
                quiet = time.monotonic() - last_change
                if quiet >= QUIET and not workers.busy() and fake.wait_for_events(0):
                    now = timezone.now()
                    moment = next_moment(now)
                    if moment is not None and moment > now:
                        jump = (moment - now).total_seconds() + 1
                        ctx.clock.advance(jump)
                        skipped += jump
                        workers.restart()
                        last_change = time.monotonic()
                    elif quiet > 60:
                        outcome = "stuck"
                        break
                if time.monotonic() - real_started > CASE_LIMIT:
                    outcome = "gave up"
                    break
                time.sleep(0.2)
            settle_seconds = (timezone.now() - fault_end).total_seconds()
            real_settle = time.monotonic() - real_fault_end
            fake.wait_for_events(30)
            # A worker that hit an unrecoverable error finishes its task before it exits.
            with contextlib.suppress(parts.ChaosError):
                parts.wait_until(lambda: workers.worker.process.poll() is not None, 5, "exit")
            if workers.worker.process.poll() is not None:
                workers.died += 1
    finally:
        workers.stop()
        fake.stop()
    return measure(
        name, kind, events, ids, fake, deliveries_per_nudge(fake), outcome, notes, workers,
        settle_seconds=settle_seconds, real_settle=real_settle, skipped=skipped,
        real_total=time.monotonic() - real_started,
    )  # fmt: skip


def measure(
    name: str,
    kind: str,
    events: bool,
    ids: list[int],
    fake: Any,
    per_nudge: Counter[int | None],
    outcome: str,
    notes: list[str],
    workers: Workers,
    **times: float,
) -> dict[str, Any]:
    from nudges.models import Nudge, SendAttempt

    rows = {
        r["id"]: r
        for r in Nudge.objects.filter(pk__in=ids).values(
            "id", "status", "status_reason", "delivery", "attempt_id", "attempts", "last_error"
        )
    }
    once = [i for i in ids if per_nudge.get(i, 0) == 1]
    dupes = [i for i in ids if per_nudge.get(i, 0) > 1]
    none = [i for i in ids if per_nudge.get(i, 0) == 0]
    lost = [i for i in none if rows[i]["status"] in DONE]
    held = [i for i in ids if rows[i]["status"] == "held"]
    unknown = [i for i in ids if rows[i]["status"] in ("unknown", "sending", "scheduled")]
    held_delivered = [i for i in held if per_nudge.get(i, 0) == 1]
    row = {
        "case": name,
        "kind": kind,
        "events": events,
        "due": len(ids),
        "exactly_once": len(once),
        "duplicates": len(dupes),
        "extra_emails": sum(per_nudge[i] - 1 for i in dupes),
        "lost": len(lost),
        "held": len(held),
        "held_but_delivered": len(held_delivered),
        "held_not_delivered": len(held) - len(held_delivered),
        "unknown": len(unknown),
        "unsettled": len(held) + len(unknown),
        "settle_seconds": round(times["settle_seconds"], 1),
        "settle_real_seconds": round(times["real_settle"], 1),
        "clock_moved_seconds": round(times["skipped"], 1),
        "case_real_seconds": round(times["real_total"], 1),
        "outcome": outcome,
        "statuses": dict(Counter(r["status"] for r in rows.values())),
        "deliveries": {"sent_and_delivered": sum(1 for r in rows.values() if r["delivery"] == "delivered")},
        "sendgrid_calls": fake.calls,
        "answers": {str(k): v for k, v in Counter(fake.answers).items()},
        "send_attempts": SendAttempt.objects.count(),
        "workers_started": workers.started,
        "worker_exits_unasked": workers.died,
        "worker_logs": workers.logs,
        "recovery": _recovery(workers.logs),
        "unrecoverable_errors": sum(
            (ROOT / p).read_text(errors="replace").count("Unrecoverable error") for p in workers.logs
        ),
        "notes": notes,
    }  # fmt: skip
    problems = [(i, "duplicate") for i in dupes[:5]] + [(i, "lost") for i in lost[:5]]
    if not events:
        problems += [
            (i, "resent without events") for i in ids if "again" in rows[i]["status_reason"]
        ][:5]
    row["examples"] = [
        {
            "nudge": i,
            "problem": what,
            "deliveries": per_nudge.get(i, 0),
            **{k: rows[i][k] for k in ("status", "status_reason", "attempts", "last_error")},
            "send_attempt": _attempt(rows[i]["attempt_id"]),
            "requests": sorted({d.request_index for d in fake.deliveries if d.nudge_id == i}),
        }
        for i, what in problems
    ]  # fmt: skip
    return row


def _recovery(logs: list[str]) -> dict[str, int]:
    """What recover() did, summed from the workers' log lines (test_faults.recovered)."""
    from nudges.tests.test_faults import recovered

    @dataclass
    class Log:
        path: Path

        def output(self) -> str:
            return self.path.read_text(errors="replace")

    total: Counter[str] = Counter()
    for p in logs:
        total.update(recovered(Log(ROOT / p)))  # type: ignore[arg-type]
    return dict(total)


def _attempt(pk: int | None) -> dict[str, Any] | None:
    from nudges.models import SendAttempt

    if pk is None:
        return None
    a = SendAttempt.objects.filter(pk=pk).values().first()
    return {k: (str(v) if v is not None else None) for k, v in (a or {}).items()}


# --- Report -------------------------------------------------------------------------------


def table(rows: list[dict[str, Any]]) -> str:
    head = (
        f"{'case':<26} {'due':>6} {'once':>6} {'dupes':>6} {'lost':>5} {'held':>5} "
        f"{'unknown':>7} {'settle s':>9} {'(moved)':>8} {'real s':>7} {'w.died':>6}  verdict"
    )
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(
            f"{r['case']:<26} {r['due']:>6,} {r['exactly_once']:>6,} {r['duplicates']:>6,} "
            f"{r['lost']:>5,} {r['held']:>5,} {r['unknown']:>7,} {r['settle_seconds']:>9.0f} "
            f"{r['clock_moved_seconds']:>8.0f} {r['case_real_seconds']:>7.0f} "
            f"{r['worker_exits_unasked']:>6}  {verdict(r)}"
        )
    return "\n".join(lines)


def verdict(r: dict[str, Any]) -> str:
    bad = []
    if r["duplicates"]:
        bad.append("DUPLICATES")
    if r["lost"]:
        bad.append("LOST")
    if r["unknown"]:
        bad.append("UNSETTLED")
    if r["events"] and r["held"]:
        bad.append("held despite events")
    if r["outcome"] != "settled":
        bad.append(r["outcome"])
    if r["settle_seconds"] > 600:
        bad.append("over 10 min")
    if r["worker_exits_unasked"] or r["unrecoverable_errors"]:
        bad.append("worker died")
    return ", ".join(bad) or "ok"


def main() -> None:
    args = _args()
    parts.setup_django()
    wanted = [c.strip() for c in args.cases.split(",") if c.strip()]
    unknown = set(wanted) - set(CASES + MORE_CASES)
    if unknown:
        sys.exit(f"unknown cases: {', '.join(sorted(unknown))} (choose from {', '.join(CASES)})")
    flavours = {"both": (True, False), "with": (True,), "without": (False,)}[args.events]
    stamp = datetime.now().astimezone().strftime("%Y%m%d-%H%M%S")
    folder = ROOT / "var" / "bench" / f"chaos-{stamp}"
    folder.mkdir(parents=True, exist_ok=True)

    from django.conf import settings

    from bench.nudges import data
    from nudges.tests.test_faults import procfile_worker_args
    from nudges.tests.test_integration import virtual_clock

    started = time.monotonic()
    world = data.load_world(args.nudges)
    log(f"{args.nudges:,} contacts, {data.SCHOOLS} schools in {time.monotonic() - started:.1f}s")
    rows = []
    with (
        virtual_clock() as clock,
        parts.own_redis(folder / "redis") as redis_server,
        webhook_server() as site,
    ):
        ctx = Context(args, clock, redis_server, site + "/webhooks/sendgrid/events/", folder, world)

        for kind in wanted:
            for events in flavours:
                try:
                    row = run_case(kind, events, ctx)
                except parts.ChaosError as exc:
                    log(f"{kind}: the case could not run: {exc}")
                    raise
                rows.append(row)
                log(
                    f"{row['case']}: {row['exactly_once']:,}/{row['due']:,} once, "
                    f"{row['duplicates']} duplicates, {row['lost']} lost, {row['held']} held, "
                    f"{row['unknown']} unknown; settled {row['settle_seconds']:.0f}s after the "
                    f"fault ({row['clock_moved_seconds']:.0f}s of it skipped); {row['statuses']}"
                    + (f"; worker exited by itself {row['worker_exits_unasked']}x" if row["worker_exits_unasked"] else "")
                )  # fmt: skip
                for ex in row["examples"]:
                    log(f"  {ex}")
    total = time.monotonic() - started
    worker_line = "celery " + " ".join(procfile_worker_args() + args.pool.split())
    print()
    print(
        f"Chaos: {args.nudges:,} nudges per case, batch {args.batch_size}; worker: {worker_line}; "
        f"PostgreSQL + our own redis-server; SendGrid = loopback fake; {os.cpu_count()} cores"
    )
    print(
        f"NUDGE_* defaults: stale claim {settings.NUDGE_STALE_CLAIM_SECONDS}s, settle "
        f"{settings.NUDGE_SETTLE_SECONDS}s, event margin {settings.NUDGE_EVENT_MARGIN_SECONDS}s. "
        f"Shortened: beat every {BEAT_EVERY:g}s (not 60s); waits skipped by moving the clock "
        "(column 'moved'); faults last "
        f"{STORM_SECONDS:g}s (storms, slow answers), {BROKER_DOWN:g}s (broker)."
    )
    print(table(rows))
    print(
        "once: reached SendGrid exactly once; lost: never reached it though its row says done; "
        "held: in doubt, shown to the supplier admin; settle: clock seconds from the fault's end "
        "until nothing is scheduled, sending or unknown; w.died: worker exits we did not cause "
        "(restarted, as a supervisor would)"
    )
    print(f"run time {total:.0f}s")
    out = ROOT / "var" / "bench" / f"chaos-{stamp}.json"
    out.write_text(
        json.dumps(
            {
                "when": stamp,
                "nudges": args.nudges,
                "batch_size": args.batch_size,
                "worker": worker_line,
                "cores": os.cpu_count(),
                "shortened": {
                    "beat_every_seconds": BEAT_EVERY,
                    "clock_moved": "over waits for stale claims, settling and retry backoffs",
                    "fault_seconds": {"storm": STORM_SECONDS, "broker_down": BROKER_DOWN},
                },
                "settings": {
                    "NUDGE_STALE_CLAIM_SECONDS": settings.NUDGE_STALE_CLAIM_SECONDS,
                    "NUDGE_SETTLE_SECONDS": settings.NUDGE_SETTLE_SECONDS,
                    "NUDGE_EVENT_MARGIN_SECONDS": settings.NUDGE_EVENT_MARGIN_SECONDS,
                },
                "run_seconds": round(total, 1),
                "cases": rows,
            },
            indent=2,
            default=str,
        )
    )
    print(f"figures: {out.relative_to(ROOT)}")
    ok = all(r["duplicates"] == 0 and r["lost"] == 0 and r["unknown"] == 0 for r in rows)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
