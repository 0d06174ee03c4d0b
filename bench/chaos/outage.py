"""``python -m bench.chaos.outage``: does a Celery worker, started the way the Procfile
starts it, survive its Redis broker going away and coming back, and run tasks again?

Each trial: our own redis-server on a free loopback port (never the shared one), a worker
(the Procfile's ``worker:`` line, plus any ``--pool``/``--concurrency`` given), a heartbeat
task sent and run, then (unless ``--idle``) a dispatch of 300 nudges against a slow fake
SendGrid, so that the worker holds an unacknowledged task; then redis-server stopped for
``--down`` seconds and started again (empty: no persistence), and a heartbeat task sent
every second for up to ``--wait`` seconds. The trial passes when the same worker
process is still alive and runs a task sent after the restart. Prints one line per trial
and the counts; figures as JSON in var/bench/.

Needs PostgreSQL for the worker's database (CHAOS_DATABASE_URL, default
postgres://postgres@127.0.0.1:5432/crm_bench_chaos, created and migrated if missing).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from datetime import datetime
from pathlib import Path

from bench.chaos import parts


def _args() -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.chaos.outage")
    p.add_argument("--trials", type=int, default=5)
    p.add_argument("--pool", default="", help="--pool for the worker (default: the Procfile's)")
    # CHAOS_BROKER_TRANSPORT_OPTIONS='{"ack_emulation": false}' (JSON) measures a broker
    # setting without editing settings.py (bench/chaos/worker.py applies it).
    p.add_argument("--concurrency", type=int, default=0, help="default: the Procfile's")
    p.add_argument("--down", type=float, default=10.0, help="seconds Redis stays down")
    p.add_argument("--wait", type=float, default=60.0, help="seconds to wait for a task after")
    p.add_argument(
        "--idle",
        dest="busy",
        action="store_false",
        help="stop Redis while the worker is idle (default: while it runs a dispatch)",
    )
    return p.parse_args()


def trial(n: int, args: argparse.Namespace, folder: Path) -> dict[str, object]:
    from accounts.models import Heartbeat
    from accounts.tasks import heartbeat
    from nudges.tasks import dispatch_nudges
    from nudges.tests.test_faults import make_due_nudges
    from nudges.tests.test_integration import sendgrid_env, virtual_clock
    from tests.fakes.sendgrid import FakeSendGrid, Reply

    def beats() -> int:
        return Heartbeat.objects.filter(name="beat").values_list("count", flat=True).first() or 0

    _clear_nudges()
    with (
        virtual_clock() as clock,
        FakeSendGrid() as fake,
        parts.own_redis(folder / f"redis-{n}") as redis_server,
    ):
        extra = [f"--pool={args.pool}"] if args.pool else []
        env = {**sendgrid_env(fake), "NUDGE_BATCH_SIZE": "60"}
        env.pop("SENDGRID_WEBHOOK_PUBLIC_KEY")
        with (
            parts.publishing_to_url(redis_server.url),
            parts.procfile_worker(
                folder / f"worker-{n}",
                broker_url=redis_server.url,
                concurrency=args.concurrency,
                extra=extra,
                clock=clock,
                env=env,
            ) as worker,
        ):
            parts.wait_until(lambda: " ready." in worker.output(), 60, "worker ready", [worker])
            before = beats()
            heartbeat.delay()
            parts.wait_until(lambda: beats() > before, 30, "a heartbeat before", [worker])
            if args.busy:
                # A dispatch in progress (SendGrid answering each request 1 s late) when
                # Redis goes: the worker holds an unacknowledged task (acks_late).
                make_due_nudges(300)
                fake.default = Reply(delay=1.0)
                dispatch_nudges.delay()
                parts.wait_until(lambda: fake.calls >= 2, 60, "the dispatch under way", [worker])
            redis_server.stop()
            time.sleep(args.down)
            redis_server.start()
            fake.default = Reply()
            back = time.monotonic()
            after = beats()
            ran_again = None
            last_send = 0.0
            while time.monotonic() - back < args.wait:
                if worker.process.poll() is not None:
                    break
                if beats() > after:
                    ran_again = round(time.monotonic() - back, 1)
                    break
                if time.monotonic() - last_send >= 1:
                    with contextlib.suppress(Exception):  # reconnects on its next try
                        heartbeat.delay()
                    last_send = time.monotonic()
                time.sleep(0.2)
            alive = worker.process.poll() is None
            log = worker.output()
    _clear_nudges()
    return {
        "trial": n,
        "busy": args.busy,
        "alive": alive,
        "exit_code": worker.process.returncode,
        "ran_task_after_restart_s": ran_again,
        "survived": alive and ran_again is not None,
        "nonetype_hostname": "object has no attribute 'hostname'" in log,
        "log": str(worker.log_path),
    }


def _clear_nudges() -> None:
    """Everything the trial wrote (the database is the chaos script's own)."""
    from django.db import connection

    from bench.nudges.data import reset

    reset()
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE nudges_sendattempt RESTART IDENTITY CASCADE")


def main() -> None:
    args = _args()
    parts.setup_django()
    stamp = datetime.now().astimezone().strftime("%Y%m%d-%H%M%S")
    folder = parts.ROOT / "var" / "bench" / f"chaos-outage-{stamp}"
    folder.mkdir(parents=True, exist_ok=True)
    from nudges.tests.test_faults import procfile_worker_args

    extra = [f"--pool={args.pool}"] if args.pool else []
    if args.concurrency:
        extra.append(f"--concurrency={args.concurrency}")
    label = "celery " + " ".join(procfile_worker_args() + extra)
    if os.environ.get("CHAOS_BROKER_TRANSPORT_OPTIONS"):
        label += f" (broker_transport_options {os.environ['CHAOS_BROKER_TRANSPORT_OPTIONS']})"
    import celery
    import kombu

    print(
        f"celery {celery.__version__}, kombu {kombu.__version__}; worker {label}; "
        f"Redis down {args.down:g}s",
        flush=True,
    )
    results = []
    for n in range(1, args.trials + 1):
        r = trial(n, args, folder)
        results.append(r)
        print(
            f"trial {n}: {'survived' if r['survived'] else 'DIED' if not r['alive'] else 'STUCK'}"
            f" (alive={r['alive']}, exit={r['exit_code']}, task after restart="
            f"{r['ran_task_after_restart_s']}s, NoneType.hostname in log={r['nonetype_hostname']})",
            flush=True,
        )
    ok = sum(1 for r in results if r["survived"])
    print(f"{label}: survived {ok} of {len(results)}")
    out = parts.ROOT / "var" / "bench" / f"chaos-outage-{stamp}.json"
    out.write_text(
        json.dumps(
            {
                "when": stamp,
                "celery": celery.__version__,
                "kombu": kombu.__version__,
                "worker": label,
                "down_seconds": args.down,
                "trials": results,
                "survived": ok,
            },
            indent=2,
        )
    )
    print(f"figures: {out.relative_to(parts.ROOT)}")
    sys.exit(0 if ok == len(results) else 1)


if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "partnership_crm.settings")
    main()
