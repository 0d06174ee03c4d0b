"""The nudge dispatch benchmark: ``make bench-nudges`` (``python -m bench.nudges``).

1. A dedicated PostgreSQL database (BENCH_DATABASE_URL, default
   postgres://postgres@127.0.0.1:5432/crm_bench_nudges), created if missing and migrated;
   everything in it is replaced.
2. Data (data.py): 5 suppliers with 4 account managers each, 500 schools (send window
   00:00-23:59), 750 partnerships, a contact per nudge; then, for each run, N nudges due now.
3. Each run: the loopback fake of SendGrid (tests/fakes/sendgrid.py; no webhook), a real
   Celery worker (bench/nudges/worker.py: solo pool, or prefork with --concurrency 2) on a
   leased Redis database (REDIS_URL, default redis://127.0.0.1:6379), and one
   dispatch_nudges task per worker process sent through the broker; measured until every
   nudge is sent: nudges/second, SendGrid requests (counted by the fake), and the peak RSS
   (VmHWM) of the worker's processes.
4. Runs: batched (the product: one request per account manager and claimed batch) at
   --small and --nudges, so that memory can be seen flat in N; then the baseline, one
   request per email (BENCH_SENDER=per-email, read by the benchmark's worker launcher only)
   at --baseline, extrapolated to --nudges.
5. A table, the ratio (target >= 20x) and the figures as JSON in var/bench/nudges-<timestamp>.json.

The schools' send windows are only open on school working days. On a weekend or bank
holiday the worker's wall clock is shifted (time-machine) to the next working day, 09:00
London; the output says so. Only ever talks to 127.0.0.1.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from datetime import time as clock_time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/crm_bench_nudges"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
TARGET_RATIO = 20.0
MIB = 1024 * 1024
# The same lease as tests/test_worker_integration.py, so that tests and the benchmark never
# share a Redis database.
REDIS_LEASE_KEY = "partnership-crm:integration-test:lease"
REDIS_OWNED_KEY = "partnership-crm:integration-test:owned"
REDIS_LEASE_SECONDS = 1800
STARTED = time.monotonic()


def log(msg: str) -> None:
    print(f"[{time.monotonic() - STARTED:7.1f}s] {msg}", flush=True)


def _args() -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.nudges", description=__doc__.split("\n")[0])
    p.add_argument(
        "--nudges", type=int, default=100_000, help="batched run size (and extrapolation)"
    )
    p.add_argument("--small", type=int, default=20_000, help="the smaller batched run, for memory")
    p.add_argument("--baseline", type=int, default=5_000, help="per-email run size")
    p.add_argument("--concurrency", type=int, choices=(1, 2), default=1, help="worker processes")
    p.add_argument("--batch-size", type=int, default=0, help="NUDGE_BATCH_SIZE (default: settings)")
    p.add_argument(
        "--latency-ms",
        type=float,
        default=0.0,
        help="make the fake answer each request this much later (default 0: loopback speed)",
    )
    p.add_argument(
        "--quiet-wait",
        type=float,
        default=60,
        help="before each run, wait up to this many seconds for other processes to go quiet",
    )
    return p.parse_args()


# --- Database, broker, clock ------------------------------------------------------------


def _local(url: str, what: str) -> None:
    host = urlsplit(url).hostname
    if host not in ("127.0.0.1", "localhost", "::1"):
        sys.exit(f"{what} must point at this machine (127.0.0.1), not {host}")


def _ensure_database(url: str) -> None:
    import psycopg

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    if "bench" not in name:
        sys.exit(
            f"BENCH_DATABASE_URL names {name!r}: the benchmark replaces everything in it, "
            "so it must be a database of its own (with 'bench' in its name)"
        )
    admin = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')
            log(f"created database {name}")


def _clear(client: Any) -> None:
    keep = {REDIS_LEASE_KEY.encode(), REDIS_OWNED_KEY.encode()}
    for key in client.scan_iter(count=500):
        if key not in keep:
            client.delete(key)


@contextmanager
def leased_redis_db(redis_url: str) -> Iterator[str]:
    """A Redis database (1-15) of our own for the broker; never 0, nor anyone else's."""
    import redis

    token = uuid.uuid4().hex
    for db in range(1, 16):
        url = urlunsplit(urlsplit(redis_url)._replace(path=f"/{db}"))
        client = redis.Redis.from_url(url, socket_timeout=5)
        try:
            if not client.set(REDIS_LEASE_KEY, token, nx=True, ex=REDIS_LEASE_SECONDS):
                continue
        except redis.ResponseError:
            break
        if client.exists(REDIS_OWNED_KEY) or client.dbsize() == 1:
            client.set(REDIS_OWNED_KEY, "1")
            _clear(client)
            try:
                yield url
            finally:
                _clear(client)
                if client.get(REDIS_LEASE_KEY) == token.encode():
                    client.delete(REDIS_LEASE_KEY)
                client.close()
            return
        client.delete(REDIS_LEASE_KEY)
        client.close()
    sys.exit(f"No free Redis database (1-15) at {redis_url}")


def clock_offset() -> tuple[float, str]:
    """Seconds to shift the worker's wall clock so that it is inside a school working day
    (with an hour to spare before the 23:59 close of the send window)."""
    from accounts.working_time import LONDON, WorkingCalendar

    day = WorkingCalendar(tz=LONDON, day_starts=clock_time(0, 0), day_ends=clock_time(23, 0))
    now = datetime.now(UTC)
    opens = day.next_working_moment(now)
    if opens <= now:
        return 0.0, "real time (a school working day)"
    target = datetime.combine(opens.astimezone(LONDON).date(), clock_time(9, 0), tzinfo=LONDON)
    return (
        target.timestamp() - now.timestamp(),
        f"the worker's clock is shifted to {target:%a %d %b %Y %H:%M} London "
        f"(now, {now.astimezone(LONDON):%a %d %b %H:%M}, is not a school working day)",
    )


# --- The worker and its memory ----------------------------------------------------------


def _status_kib(pid: int, key: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


def _family(pid: int) -> list[int]:
    """The process and its descendants (a prefork pool's children)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        with suppress(OSError):
            for task in Path(f"/proc/{p}/task").iterdir():
                todo.extend(int(c) for c in (task / "children").read_text().split())
    return out


@dataclass
class MemorySampler:
    """Peak resident memory (VmHWM) of each of the worker's processes, sampled until stopped."""

    pid: int
    peaks: dict[int, int] = field(default_factory=dict)  # KiB
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def sample(self) -> None:
        for p in _family(self.pid):
            self.peaks[p] = max(self.peaks.get(p, 0), _status_kib(p, "VmHWM"))

    def _loop(self) -> None:
        while not self._stop.wait(0.2):
            self.sample()

    def start(self) -> None:
        self.sample()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self.sample()
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=5)

    @property
    def peak_mib(self) -> float:
        return max(self.peaks.values(), default=0) / 1024

    @property
    def total_mib(self) -> float:
        return sum(self.peaks.values()) / 1024


def _machine_ticks() -> tuple[int, int]:
    """(busy, total) clock ticks of all CPUs since boot, from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
    return sum(values) - idle, sum(values)


def _process_ticks(pid: int) -> int:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])  # utime + stime
    except (OSError, IndexError, ValueError):
        return 0


def _our_pids(worker_pid: int, database: str) -> list[int]:
    """This process (the fake SendGrid runs in it), the worker's processes, and the
    PostgreSQL backends serving the benchmark's database."""
    pids = [os.getpid(), *_family(worker_pid)]
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            with suppress(OSError):
                if (
                    f" {database} "
                    in f" {(proc / 'cmdline').read_bytes().decode(errors='replace')} "
                ):
                    pids.append(int(proc.name))
    return pids


@dataclass
class CpuMeter:
    """Cores used during a run: by the benchmark (bench process, worker, its PostgreSQL
    backends) and by everything else on the machine, which makes the figures suspect."""

    worker_pid: int
    database: str
    start: tuple[int, int] = (0, 0)
    ours_start: dict[int, int] = field(default_factory=dict)

    def begin(self) -> None:
        self.ours_start = {p: _process_ticks(p) for p in _our_pids(self.worker_pid, self.database)}
        self.start = _machine_ticks()

    def end(self) -> dict[str, float]:
        busy, total = _machine_ticks()
        pids = set(self.ours_start) | set(_our_pids(self.worker_pid, self.database))
        ours = sum(_process_ticks(p) - self.ours_start.get(p, 0) for p in pids)
        span = (total - self.start[1]) / (os.cpu_count() or 1)  # ticks per core
        if span <= 0:
            return {"busy_cores": 0.0, "ours_cores": 0.0, "others_cores": 0.0}
        all_busy = (busy - self.start[0]) / span
        mine = ours / span
        return {
            "busy_cores": round(all_busy, 2),
            "ours_cores": round(mine, 2),
            "others_cores": round(max(0.0, all_busy - mine), 2),
        }


def wait_for_quiet(limit: float) -> float:
    """Wait up to ``limit`` seconds for other processes to stop using the CPU (under half a
    core over 2 s); returns the cores they were using when we went ahead."""
    deadline = time.monotonic() + limit
    while True:
        b0, t0 = _machine_ticks()
        time.sleep(2)
        b1, t1 = _machine_ticks()
        busy = (b1 - b0) / max(1, t1 - t0) * (os.cpu_count() or 1)
        if busy < 0.5 or time.monotonic() >= deadline:
            return round(busy, 2)


@dataclass
class Worker:
    process: subprocess.Popen[bytes]
    log_path: Path

    def output(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> None:
        if self.process.poll() is None:
            with suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            with suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=20)
        with suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        with suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=10)


@contextmanager
def running_worker(env: dict[str, str], concurrency: int, log_path: Path) -> Iterator[Worker]:
    pool = (
        ["--pool=solo"] if concurrency == 1 else ["--pool=prefork", f"--concurrency={concurrency}"]
    )
    command = [
        sys.executable,
        "-m",
        "bench.nudges.worker",
        "-A",
        "partnership_crm",
        "worker",
        *pool,
        "--loglevel=INFO",
        f"--hostname=bench-nudges-{uuid.uuid4().hex[:6]}@%h",
        "--without-mingle",
        "--without-gossip",
        "--without-heartbeat",
    ]
    with log_path.open("wb") as out:
        process = subprocess.Popen(
            command,
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    worker = Worker(process, log_path)
    try:
        deadline = time.monotonic() + 60
        while " ready." not in worker.output():
            if process.poll() is not None or time.monotonic() > deadline:
                sys.exit(f"The worker did not start:\n{worker.output()[-3000:]}")
            time.sleep(0.1)
        yield worker
    finally:
        worker.stop()


# --- One run ------------------------------------------------------------------------------


def run(
    mode: str,
    count: int,
    *,
    world: Any,
    fake: Any,
    env: dict[str, str],
    offset: float,
    concurrency: int,
    stamp: str,
    database: str,
    quiet_wait: float,
    latency: float,
) -> dict[str, Any]:
    from django.db.models import Count

    from bench.nudges import data
    from nudges.models import Nudge
    from nudges.tasks import dispatch_nudges

    due = datetime.now(UTC) + timedelta(seconds=offset - 60)
    started = time.monotonic()
    ids = data.load_nudges(world, count, due)
    log(f"{mode}: {len(ids):,} nudges due, loaded in {time.monotonic() - started:.1f}s")
    fake.reset()
    busy_before = wait_for_quiet(quiet_wait)
    if busy_before >= 0.5:
        log(f"{mode}: other processes still use {busy_before} cores: figures will be low")
    worker_env = {**env, "BENCH_SENDER": "per-email" if mode == "per-email" else ""}
    log_path = ROOT / "var" / "bench" / f"nudges-{stamp}-worker-{mode}-{count}.log"
    per_nudge = (1 / 20 + latency) if mode == "per-email" else 1 / 150
    limit = max(180.0, count * per_nudge * 2)  # give up on a run this slow
    with running_worker(worker_env, concurrency, log_path) as worker:
        memory = MemorySampler(worker.process.pid)
        memory.start()
        ready_mib = memory.peak_mib
        cpu = CpuMeter(worker.process.pid, database)
        cpu.begin()
        t0 = time.monotonic()
        for _ in range(concurrency):  # one run per worker process; claims are exclusive
            dispatch_nudges.delay()
        last_report = t0
        while True:
            sent = Nudge.objects.filter(status="sent").count()
            if sent >= count:
                break
            now = time.monotonic()
            if worker.process.poll() is not None:
                sys.exit(f"The worker died:\n{worker.output()[-3000:]}")
            if now - t0 > limit:
                counts = dict(Nudge.objects.values_list("status").annotate(n=Count("id")))
                sys.exit(
                    f"{mode}: not done after {limit:.0f}s: {counts}\n{worker.output()[-3000:]}"
                )
            if now - last_report >= 15:
                log(f"{mode}: {sent:,}/{count:,} sent ({sent / (now - t0):,.0f}/s)")
                last_report = now
            time.sleep(0.1)
        seconds = time.monotonic() - t0
        cores = cpu.end()
        memory.stop()
    per_nudge = Counter(d.nudge_id for d in fake.deliveries)
    if len(per_nudge) != count or max(per_nudge.values()) != 1:
        sys.exit(f"{mode}: {len(per_nudge)} distinct nudges reached the fake for {count} sent")
    result = {
        "mode": mode,
        "nudges": count,
        "seconds": round(seconds, 2),
        "nudges_per_second": round(count / seconds, 1),
        "sendgrid_calls": fake.calls,
        "peak_rss_mib": round(memory.peak_mib, 1),
        "peak_rss_all_processes_mib": round(memory.total_mib, 1),
        "rss_at_start_mib": round(ready_mib, 1),
        "cpu_cores": cores,
        "worker_log": str(log_path.relative_to(ROOT)),
        "measured": True,
    }
    log(
        f"{mode}: {count:,} sent in {seconds:.1f}s = {result['nudges_per_second']:,}/s, "
        f"{fake.calls:,} SendGrid calls, peak RSS {result['peak_rss_mib']} MiB; cores used: "
        f"{cores['ours_cores']} by the benchmark, {cores['others_cores']} by other processes"
    )
    return result


# --- Report -------------------------------------------------------------------------------


def _table(rows: list[dict[str, Any]]) -> str:
    head = (
        f"{'mode':<28} {'N':>8} {'seconds':>9} {'nudges/s':>9} {'calls':>8} "
        f"{'peak RSS MiB':>13} {'others':>7}"
    )
    lines = [head, "-" * len(head)]
    for r in rows:
        label = r["mode"] + ("" if r["measured"] else " (extrapolated)")
        rss = f"{r['peak_rss_mib']:.1f}" if r.get("peak_rss_mib") is not None else "-"
        others = f"{r['cpu_cores']['others_cores']:.2f}" if r.get("cpu_cores") else "-"
        lines.append(
            f"{label:<28} {r['nudges']:>8,} {r['seconds']:>9.1f} {r['nudges_per_second']:>9,.1f} "
            f"{r['sendgrid_calls']:>8,} {rss:>13} {others:>7}"
        )
    lines.append("others: cores used by other processes on the machine during the run")
    return "\n".join(lines)


def main() -> None:
    args = _args()
    db_url = os.environ.get("BENCH_DATABASE_URL", DEFAULT_DATABASE_URL)
    redis_url = os.environ.get("REDIS_URL") or DEFAULT_REDIS_URL
    _local(db_url, "BENCH_DATABASE_URL")
    _local(redis_url, "REDIS_URL")
    _ensure_database(db_url)
    stamp = datetime.now().astimezone().strftime("%Y%m%d-%H%M%S")
    (ROOT / "var" / "bench").mkdir(parents=True, exist_ok=True)

    with leased_redis_db(redis_url) as broker_url:
        base = {
            "DATABASE_URL": db_url,
            "CELERY_BROKER_URL": broker_url,
            "REDIS_URL": "",  # no cache on the shared Redis: the broker is all we need
            "SECRET_KEY": "bench-nudges-not-a-secret",
            "DEBUG": "false",
            "DJANGO_SETTINGS_MODULE": "partnership_crm.settings",
            "CELERY_TASK_ALWAYS_EAGER": "false",
            "LOG_LEVEL": "INFO",
            "NUDGE_FROM_EMAIL": "nudges@crm.example.org",
            "VAR_DIR": str(ROOT / "var" / "bench" / "nudges-var"),
        }
        if args.batch_size:
            base["NUDGE_BATCH_SIZE"] = str(args.batch_size)
        for name in ("CELERY_BROKER_READ_URL", "CELERY_BROKER_WRITE_URL", "CELERY_RESULT_BACKEND"):
            os.environ.pop(name, None)
        os.environ.update(base)
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
            cwd=ROOT,
            env=dict(os.environ),
            check=True,
        )
        import django

        django.setup()
        from django.conf import settings

        from bench.nudges import data
        from tests.fakes.sendgrid import FakeSendGrid, Reply

        offset, clock_note = clock_offset()
        log(f"clock: {clock_note}")
        sizes = [args.small, args.nudges, args.baseline]
        started = time.monotonic()
        world = data.load_world(max(sizes))
        log(
            f"{max(sizes):,} contacts, 500 schools, 750 partnerships in {time.monotonic() - started:.1f}s"
        )

        fake = FakeSendGrid(api_key="SG.bench-nudges").start()
        if args.latency_ms:
            fake.default = Reply(delay=args.latency_ms / 1000)
        env = {
            **dict(os.environ),
            "SENDGRID_API_KEY": fake.api_key,
            "SENDGRID_API_HOST": fake.host,
            "BENCH_CLOCK_OFFSET": repr(offset),
            "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        }
        common = {"world": world, "fake": fake, "env": env, "offset": offset}
        common.update(concurrency=args.concurrency, stamp=stamp, quiet_wait=args.quiet_wait)
        common["database"] = urlsplit(db_url).path.lstrip("/")
        common["latency"] = args.latency_ms / 1000
        try:
            small = run("batched", args.small, **common)
            large = run("batched", args.nudges, **common)
            baseline = run("per-email", args.baseline, **common)
        finally:
            fake.stop()

    rate = baseline["nudges_per_second"]
    extrapolated = {
        "mode": "per-email",
        "nudges": args.nudges,
        "seconds": round(args.nudges / rate, 1),
        "nudges_per_second": rate,
        "sendgrid_calls": round(baseline["sendgrid_calls"] / args.baseline * args.nudges),
        "peak_rss_mib": None,
        "measured": False,
    }
    rows = [small, large, baseline, extrapolated]
    ratio = large["nudges_per_second"] / rate
    memory_ratio = large["peak_rss_mib"] / small["peak_rss_mib"] if small["peak_rss_mib"] else 0
    print()
    print(
        f"Nudge dispatch: one worker ({'solo pool' if args.concurrency == 1 else 'prefork x2'}), "
        f"batch size {settings.NUDGE_BATCH_SIZE if not args.batch_size else args.batch_size}, "
        f"PostgreSQL + Redis, SendGrid = loopback fake in this process"
        + (f" answering {args.latency_ms:g} ms late" if args.latency_ms else "")
        + f"; {os.cpu_count()} cores"
    )
    print(_table(rows))
    print()
    print(
        f"throughput, batched / one call per email: {ratio:.1f}x (target >= {TARGET_RATIO:g}x: "
        f"{'met' if ratio >= TARGET_RATIO else 'NOT met'}); SendGrid calls for "
        f"{args.nudges:,}: {large['sendgrid_calls']:,} vs {extrapolated['sendgrid_calls']:,} "
        "(the per-email row at that N is extrapolated from the measured per-email rate)"
    )
    print(
        f"memory flat in N: peak worker RSS {small['peak_rss_mib']} MiB at {args.small:,}, "
        f"{large['peak_rss_mib']} MiB at {args.nudges:,} ({memory_ratio:.2f}x for "
        f"{args.nudges / args.small:g}x the nudges)"
    )
    report = {
        "when": stamp,
        "clock": clock_note,
        "database": urlsplit(db_url)._replace(netloc=urlsplit(db_url).hostname or "").geturl(),
        "concurrency": args.concurrency,
        "batch_size": args.batch_size or settings.NUDGE_BATCH_SIZE,
        "latency_ms": args.latency_ms,
        "cores": os.cpu_count(),
        "runs": rows,
        "ratio": round(ratio, 2),
        "ratio_target": TARGET_RATIO,
        "ratio_met": ratio >= TARGET_RATIO,
        "memory": {"small": small["peak_rss_mib"], "large": large["peak_rss_mib"]},
    }
    out = ROOT / "var" / "bench" / f"nudges-{stamp}.json"
    out.write_text(json.dumps(report, indent=2))
    print(f"\nfigures: {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
