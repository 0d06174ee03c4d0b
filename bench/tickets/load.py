"""Serving and load: gunicorn on 127.0.0.1, and wrk (or a Python fallback) against it."""

from __future__ import annotations

import http.client
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

HOST = "127.0.0.1"
ROOT = Path(__file__).resolve().parents[2]
GUNICORN = str(Path(sys.executable).with_name("gunicorn"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def _stop(proc: subprocess.Popen) -> None:
    """Stop a process group we started: TERM, then KILL after 10 s."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=5)
    except ProcessLookupError:
        pass


@contextmanager
def gunicorn(app: str, env: dict[str, str], workers: int = 2) -> Iterator[tuple[str, int]]:
    """Serve ``app`` with ``workers`` sync workers on a free loopback port; yields the base
    URL (and the server's session id) once /healthz answers (any status), and always
    stops the server."""
    port = free_port()
    cmd = [
        GUNICORN,
        app,
        "--workers",
        str(workers),
        "--worker-class",
        "sync",
        "--bind",
        f"{HOST}:{port}",
        "--log-level",
        "warning",
        "--timeout",
        "60",
    ]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, start_new_session=True)
    base = f"http://{HOST}:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"{app} exited with {proc.returncode} while starting")
            try:
                with urllib.request.urlopen(f"{base}/healthz", timeout=5):
                    break
            except urllib.error.HTTPError:
                break  # it answered (e.g. 503 without a worker heartbeat): it is serving
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{app} did not answer /healthz within 60 s") from None
                time.sleep(0.2)
        yield base, proc.pid
    finally:
        _stop(proc)


def get(url: str, token: str) -> tuple[int, bytes]:
    req = urllib.request.Request(url, headers={"Authorization": f"Token {token}"})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def load_average() -> float:
    return float(Path("/proc/loadavg").read_text().split()[0])


# --- Contention: CPU used by processes that are not the bench's ---------------------------

HZ = os.sysconf("SC_CLK_TCK")


def _busy_jiffies() -> int:
    """CPU time used on the machine (all cores), excluding idle, iowait and steal."""
    user, nice, system, _idle, _iowait, irq, softirq = map(
        int, Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:8]
    )
    return user + nice + system + irq + softirq


def _our_jiffies(sessions: set[int], marker: bytes) -> int:
    """CPU time of the bench's processes: this one (and its reaped children, e.g. wrk),
    the gunicorn servers' sessions, and the PostgreSQL backends of the bench database."""
    me, total = os.getpid(), 0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
            f = stat[stat.rindex(")") + 2 :].split()
            ours = int(entry.name) == me or int(f[3]) in sessions
            if not ours:
                ours = marker in Path(entry.path, "cmdline").read_bytes()
        except (OSError, ValueError):
            continue
        if ours:
            total += int(f[11]) + int(f[12])
            if int(entry.name) == me:
                total += int(f[13]) + int(f[14])
    return total


class CpuWatch:
    """``with CpuWatch(...) as w: ...`` then ``w.others``: cores used by other processes
    (other engineers' test runs, ...) while the block ran."""

    def __init__(self, sessions: set[int], dbname: str) -> None:
        self.sessions, self.marker = sessions, f" {dbname} ".encode()
        self.others = 0.0

    def __enter__(self) -> CpuWatch:
        self.t0, self.busy0 = time.monotonic(), _busy_jiffies()
        self.ours0 = _our_jiffies(self.sessions, self.marker)
        return self

    def __exit__(self, *exc: object) -> None:
        elapsed = max(time.monotonic() - self.t0, 1e-3)
        ours = _our_jiffies(self.sessions, self.marker) - self.ours0
        self.others = max(0, _busy_jiffies() - self.busy0 - ours) / HZ / elapsed


def wait_for_quiet(sessions: set[int], dbname: str, limit: float, below: float = 0.3) -> float:
    """Wait (at most ``limit`` seconds) until other processes use under ``below`` cores;
    returns the seconds waited."""
    started = time.monotonic()
    while time.monotonic() - started < limit:
        with CpuWatch(sessions, dbname) as w:
            time.sleep(1)
        if w.others < below:
            break
    return time.monotonic() - started


# --- wrk ---------------------------------------------------------------------------------

_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def _ms(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if not m:
        raise ValueError(f"unreadable wrk latency {text!r}")
    return float(m.group(1)) * _UNITS[m.group(2)]


def have_wrk() -> bool:
    return shutil.which("wrk") is not None


def run_wrk(url: str, token: str, seconds: float, connections: int) -> dict[str, float]:
    cmd = [
        "wrk",
        "--latency",
        "-t",
        "2",
        "-c",
        str(connections),
        "-d",
        f"{max(1, round(seconds))}s",
        "--timeout",
        "30s",
        "-H",
        f"Authorization: Token {token}",
        url,
    ]
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
    )
    try:
        out, _ = proc.communicate(timeout=seconds + 60)
    finally:
        _stop(proc)
    if proc.returncode != 0:
        raise RuntimeError(f"wrk failed: {out}")
    lat = dict(re.findall(r"^\s+(50|99)%\s+(\S+)\s*$", out, re.M))
    rps = re.search(r"^Requests/sec:\s+([\d.]+)", out, re.M)
    total = re.search(r"^\s+(\d+) requests in", out, re.M)
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)$", out, re.M)
    if not (rps and total and "50" in lat and "99" in lat):
        raise RuntimeError(f"could not read wrk's output: {out}")
    return {
        "rps": float(rps.group(1)),
        "p50_ms": _ms(lat["50"]),
        "p99_ms": _ms(lat["99"]),
        "requests": int(total.group(1)),
        "non_2xx": int(bad.group(1)) if bad else 0,
        "socket_errors": errors.group(1) if errors else "",
    }


# --- Fallback: threads with http.client keep-alive ----------------------------------------


def run_python(url: str, token: str, seconds: float, connections: int) -> dict[str, float]:
    """Closed-loop load like wrk's: each thread keeps one connection (reopened when the
    server closes it, as gunicorn's sync workers do) and sends the next request on reply."""
    parsed = urllib.parse.urlsplit(url)
    target = parsed.path + (f"?{parsed.query}" if parsed.query else "")
    headers = {"Authorization": f"Token {token}", "Connection": "keep-alive"}
    latencies: list[list[float]] = [[] for _ in range(connections)]
    bad = [0] * connections
    deadline = time.monotonic() + seconds

    def worker(i: int) -> None:
        conn = None
        while time.monotonic() < deadline:
            if conn is None:
                conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=30)
            start = time.perf_counter()
            try:
                conn.request("GET", target, headers=headers)
                resp = conn.getresponse()
                resp.read()
            except (OSError, http.client.HTTPException):
                conn.close()
                conn = None
                continue
            latencies[i].append((time.perf_counter() - start) * 1000)
            bad[i] += resp.status >= 400
            if resp.will_close:
                conn.close()
                conn = None
        if conn is not None:
            conn.close()

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(connections)]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=seconds + 60)
    elapsed = time.monotonic() - started
    all_ms = sorted(x for lst in latencies for x in lst)
    if not all_ms:
        raise RuntimeError(f"no request to {url} succeeded")
    return {
        "rps": len(all_ms) / elapsed,
        "p50_ms": all_ms[len(all_ms) // 2],
        "p99_ms": all_ms[min(len(all_ms) - 1, int(len(all_ms) * 0.99))],
        "requests": len(all_ms),
        "non_2xx": sum(bad),
        "socket_errors": "",
    }


def run(url: str, token: str, seconds: float, connections: int) -> dict[str, float]:
    if have_wrk():
        return run_wrk(url, token, seconds, connections)
    return run_python(url, token, seconds, connections)
