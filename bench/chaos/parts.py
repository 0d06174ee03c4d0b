"""The chaos script's parts, shared by its cases: its own PostgreSQL database, its own
redis-server, workers started as the Procfile starts them, waiting with a deadline.

The helpers the fault tests use are imported from them (they are plain functions and
context managers): nudges/tests/test_faults.py (RedisServer, procfile_worker, the data),
nudges/tests/test_integration.py (virtual_clock, publishing_to, sendgrid_env,
deliveries_per_nudge), tests/test_worker_integration.py (Broker, Worker). Only what is
pytest-bound there (fixtures, pytest.fail on a timeout) is replaced here.
"""

from __future__ import annotations

import contextlib
import io
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/crm_bench_chaos"
STARTED = time.monotonic()


class ChaosError(RuntimeError):
    pass


def log(msg: str) -> None:
    print(f"[{time.monotonic() - STARTED:7.1f}s] {msg}", flush=True)


def database_url() -> str:
    return os.environ.get("CHAOS_DATABASE_URL", DEFAULT_DATABASE_URL)


def _ensure_database(url: str) -> None:
    import psycopg

    parts = urlsplit(url)
    if parts.hostname not in ("127.0.0.1", "localhost", "::1"):
        sys.exit(f"CHAOS_DATABASE_URL must point at this machine, not {parts.hostname}")
    name = parts.path.lstrip("/")
    if "bench" not in name and "chaos" not in name:
        sys.exit(
            f"CHAOS_DATABASE_URL names {name!r}: the chaos script replaces everything in it, "
            "so it must be a database of its own (with 'bench' or 'chaos' in its name)"
        )
    admin = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')
            log(f"created database {name}")


def setup_django() -> None:
    """This process on the chaos database (migrated), with no Redis of anyone else's: no
    shared cache, and the broker is set per case."""
    url = database_url()
    _ensure_database(url)
    for name in (
        "CELERY_BROKER_URL",
        "CELERY_BROKER_READ_URL",
        "CELERY_BROKER_WRITE_URL",
        "CELERY_RESULT_BACKEND",
        "SENDGRID_API_KEY",
        "SENDGRID_WEBHOOK_PUBLIC_KEY",
    ):
        os.environ.pop(name, None)
    os.environ.update(
        DATABASE_URL=url,
        REDIS_URL="",
        DJANGO_SETTINGS_MODULE="partnership_crm.settings",
        SECRET_KEY=os.environ.get("SECRET_KEY") or "chaos-script-not-a-secret",
        DEBUG="false",
        CELERY_TASK_ALWAYS_EAGER="false",
        VAR_DIR=str(ROOT / "var" / "bench" / "chaos-var"),
        ALLOWED_HOSTS="127.0.0.1,localhost,testserver",
    )
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
        cwd=ROOT,
        env=dict(os.environ),
        check=True,
    )
    import django

    django.setup()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def own_redis(folder: Path) -> Iterator[Any]:
    """Our own redis-server (test_faults.RedisServer) on a free loopback port."""
    import shutil

    from nudges.tests.test_faults import RedisServer

    binary = shutil.which("redis-server") or "/usr/bin/redis-server"
    if not os.path.exists(binary):
        sys.exit("the chaos script needs a redis-server binary (apt-get install redis-server)")
    folder.mkdir(parents=True, exist_ok=True)
    server = RedisServer(binary, free_port(), folder)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def broker_for(url: str) -> Any:
    from tests.test_worker_integration import Broker

    return Broker(url=url, transport_options={}, env={"CELERY_BROKER_URL": url})


@contextmanager
def publishing_to_url(url: str) -> Iterator[Any]:
    from nudges.tests.test_integration import publishing_to

    with publishing_to(broker_for(url)) as b:
        yield b


@contextmanager
def procfile_worker(
    folder: Path,
    *,
    broker_url: str,
    concurrency: int = 0,
    extra: list[str] | tuple[str, ...] = (),
    clock: Any = None,
    env: dict[str, str] | None = None,
    name: str = "worker",
) -> Iterator[Any]:
    """A worker started from the Procfile's worker line (test_faults.procfile_worker), on
    this process's database and the given broker."""
    from nudges.tests.test_faults import procfile_worker as start

    args = list(extra)
    if concurrency:
        args.append(f"--concurrency={concurrency}")
    full_env = {"REDIS_URL": "", **(env or {})}
    launcher: tuple[str, ...] = ()
    if os.environ.get("CHAOS_BROKER_TRANSPORT_OPTIONS"):
        launcher = ("-m", "bench.chaos.worker")
    cm = start(
        folder.parent,
        broker_for(broker_url),
        clock=clock,
        env=full_env,
        name=folder.name if name == "worker" else name,
        extra=tuple(args),
        launcher=launcher,
    )
    worker = cm.__enter__()
    try:
        yield worker
    finally:
        # The test helper prints the worker's whole log when it stops (for pytest to show
        # on failure); here the log stays in its file.
        with contextlib.redirect_stdout(io.StringIO()):
            cm.__exit__(*sys.exc_info())


def wait_until(
    check: Callable[[], bool],
    timeout: float,
    what: str,
    workers: Iterable[Any] = (),
    interval: float = 0.2,
) -> float:
    started = time.monotonic()
    while not check():
        for w in workers:
            if w.process.poll() is not None:
                raise ChaosError(
                    f"the worker exited ({w.process.returncode}) before {what}:\n"
                    f"{w.output()[-3000:]}"
                )
        if time.monotonic() - started > timeout:
            raise ChaosError(f"no {what} after {timeout:.0f}s")
        time.sleep(interval)
    return time.monotonic() - started
