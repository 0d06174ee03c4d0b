"""The tickets benchmark: ``make bench-tickets`` (``python -m bench.tickets``).

1. A dedicated PostgreSQL database (BENCH_DATABASE_URL, default
   postgres://postgres@127.0.0.1:5432/crm_bench), created if missing and migrated.
2. Data (data.py): 100,000 tickets first, measured; then grown to --tickets (default
   1,000,000) and measured again, with the same users, school and ticket.
3. The app under gunicorn (2 sync workers) and the raw-SQL floor (floor.py) likewise.
4. For the largest supplier's account manager and the lead of their busiest school: the
   first page of /api/v1/tickets/, a filtered page and a ticket's detail, each loaded with
   --connections keep-alive connections for --duration seconds (wrk, or load.py's
   fallback), and each request's SQL counted and EXPLAINed in-process.
5. Tables of figures, the growth ratios and the targets, also written as JSON to
   var/bench/tickets-<timestamp>.json.

Options: --tickets N, --skip-load (measure the data already loaded), --duration S,
--connections C, --quiet-wait S (before each run, wait up to S seconds for other
processes to stop using the CPU; the cores they used during each run are reported, and a
run they disturbed is repeated once, keeping the less disturbed).
Only ever talks to 127.0.0.1.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg

from . import data, load

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/crm_bench"
FIRST_SIZE = 100_000
WATCHED = {"tickets_ticket", "tickets_ticketmessage"}
TARGETS = {"list": 2.0, "filtered": 2.0, "detail": 3.0}
GROWTH_TARGET = 1.2
CONTENDED = 0.3  # cores used by other processes during a run that make its figures suspect
STARTED = time.monotonic()
APP_PATHS = ["tickets", "accounts", "partnership_crm", "pyproject.toml", "constraints.txt"]


def log(msg: str) -> None:
    print(f"[{time.monotonic() - STARTED:7.1f}s] {msg}", flush=True)


def uptime() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def _label(size: int) -> str:
    return f"{size / 1e6:g}M" if size >= 1_000_000 else f"{size / 1e3:g}k"


def _args() -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.tickets", description=__doc__.split("\n")[0])
    p.add_argument("--tickets", type=int, default=1_000_000, help="final table size")
    p.add_argument("--skip-load", action="store_true", help="measure the data already loaded")
    p.add_argument("--duration", type=float, default=10, help="seconds per scenario and server")
    p.add_argument("--connections", type=int, default=16)
    p.add_argument(
        "--quiet-wait",
        type=float,
        default=20,
        help="before each run, wait up to this many seconds for other processes to go quiet",
    )
    return p.parse_args()


def _environment(url: str) -> dict[str, str]:
    parts = urlsplit(url)
    if parts.hostname not in ("127.0.0.1", "localhost"):
        sys.exit(f"BENCH_DATABASE_URL must point at 127.0.0.1, not {parts.hostname}")
    env = {
        "DATABASE_URL": url,
        "SECRET_KEY": "bench",
        "DEBUG": "false",
        "ALLOWED_HOSTS": "127.0.0.1",
        "SECURE_COOKIES": "false",
        "LOG_LEVEL": "WARNING",
        "DJANGO_SETTINGS_MODULE": "partnership_crm.settings",
    }
    os.environ.update(env)
    return dict(os.environ)


def _ensure_database(url: str) -> None:
    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    admin = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            log(f"database {name} exists")
        else:
            conn.execute(f'CREATE DATABASE "{name}"')
            log(f"created database {name}")


def code_version() -> str:
    """The commit, plus a digest of uncommitted changes to the code these requests run
    (tickets, accounts, the project package and the dependency pins; tests aside): other
    people work in this tree, and stages measured on different code do not compare."""

    def git(*args: str) -> str:
        try:
            return subprocess.run(
                ["git", *args], cwd=ROOT, capture_output=True, text=True, check=True
            ).stdout
        except (OSError, subprocess.CalledProcessError):
            return ""

    paths = ["--", *APP_PATHS, ":(exclude)*/tests/*"]
    head = git("rev-parse", "--short", "HEAD").strip() or "unknown"
    digest = hashlib.sha1(git("diff", "HEAD", *paths).encode())
    for name in git("ls-files", "--others", "--exclude-standard", *paths).split():
        digest.update(name.encode())
        with contextlib.suppress(OSError):
            digest.update((ROOT / name).read_bytes())
    clean = digest.hexdigest() == hashlib.sha1(b"").hexdigest()
    return head if clean else f"{head}+{digest.hexdigest()[:8]}"


def _migrate(env: dict[str, str]) -> None:
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
        cwd=ROOT,
        env=env,
        check=True,
    )


# --- SQL per request ------------------------------------------------------------------


def _plan_nodes(node: dict[str, Any]) -> list[dict[str, Any]]:
    return [node, *(n for child in node.get("Plans", []) for n in _plan_nodes(child))]


def _summary(plan: dict[str, Any]) -> str:
    parts = []
    for n in _plan_nodes(plan):
        target = n.get("Index Name") or n.get("Relation Name")
        parts.append(f"{n['Node Type']}({target})" if target else n["Node Type"])
    return " > ".join(parts)


def sql_per_request(path: str, token: str) -> dict[str, Any]:
    """The request's queries (in-process, Django test client), each EXPLAIN ANALYZEd."""
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client(HTTP_AUTHORIZATION=f"Token {token}", HTTP_HOST="127.0.0.1")
    client.get(path)  # warm: imports, URL resolver, connection
    with CaptureQueriesContext(connection) as ctx:
        status = client.get(path).status_code
    queries = []
    for q in ctx.captured_queries:
        entry: dict[str, Any] = {"sql": q["sql"], "ms": round(float(q["time"]) * 1000, 2)}
        if q["sql"].lstrip().upper().startswith("SELECT"):
            with connection.cursor() as cur:
                cur.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + q["sql"])
                plan = cur.fetchone()[0]
            plan = json.loads(plan) if isinstance(plan, str) else plan
            nodes = _plan_nodes(plan[0]["Plan"])
            entry["exec_ms"] = round(plan[0]["Execution Time"], 2)
            entry["plan"] = _summary(plan[0]["Plan"])
            entry["seq_scans"] = sorted(
                {
                    n["Relation Name"]
                    for n in nodes
                    if n["Node Type"] == "Seq Scan" and n.get("Relation Name") in WATCHED
                }
            )
        queries.append(entry)
    return {
        "status": status,
        "count": len(queries),
        "queries": queries,
        "seq_scan": sorted({r for q in queries for r in q.get("seq_scans", [])}),
    }


# --- One table size -------------------------------------------------------------------


def _scenarios(s: dict[str, int]) -> list[tuple[str, str, str]]:
    out = []
    for who in ("am", "lead"):
        out += [
            (who, "list", "/api/v1/tickets/"),
            (who, "filtered", f"/api/v1/tickets/?status=in_progress&school={s['school_id']}"),
            (who, "detail", f"/api/v1/tickets/{s['detail_ticket_id']}/"),
        ]
    return out


def _shape(value: Any) -> Any:
    """Keys (recursively, first item of lists) and ids: what app and floor must share."""
    if isinstance(value, dict):
        return {k: _shape(v) for k, v in value.items() if k not in ("count", "next")}
    if isinstance(value, list):
        ids = [v.get("id") for v in value if isinstance(v, dict)]
        return {"items": len(value), "ids": ids, "first": _shape(value[0]) if value else None}
    return None


def _rows(body: dict[str, Any]) -> int:
    return len(body["results"]) if "results" in body else len(body.get("messages", []))


def measure(
    size_label: str,
    subjects: dict[str, int],
    args: argparse.Namespace,
    env: dict[str, str],
    url: str,
) -> dict[str, Any]:
    from django.db import connection
    from knox.models import AuthToken

    from accounts.models import User
    from tickets.models import Ticket

    users = {
        "am": User.objects.get(pk=subjects["am_user_id"]),
        "lead": User.objects.get(pk=subjects["lead_user_id"]),
    }
    # Fresh tokens: knox reads all of a user's tokens on every request, so old ones would
    # slow the app down run after run.
    AuthToken.objects.filter(user__in=users.values()).delete()
    tokens = {who: AuthToken.objects.create(user=u)[1] for who, u in users.items()}
    total = Ticket.objects.count()
    scope_sizes = {who: Ticket.objects.visible_to(u).count() for who, u in users.items()}
    log(
        f"{size_label}: {total:,} tickets; scope of the account manager {scope_sizes['am']:,}, "
        f"of the school lead {scope_sizes['lead']:,}"
    )
    scenarios = _scenarios(subjects)

    log("SQL per request (in-process; each query's execution time from EXPLAIN ANALYZE):")
    sql = {}
    for who, kind, path in scenarios:
        r = sql[f"{who}/{kind}"] = sql_per_request(path, tokens[who])
        flag = f"  SEQ SCAN on {', '.join(r['seq_scan'])}" if r["seq_scan"] else ""
        log(
            f"  {who}/{kind}: HTTP {r['status']}, {r['count']} queries, "
            f"{sum(q.get('exec_ms', 0) for q in r['queries']):.2f} ms executing{flag}"
        )
        for q in r["queries"]:
            timing = f"{q['exec_ms']:7.2f} ms" if "exec_ms" in q else f"~{q['ms']:5.0f} ms  "
            log(f"      {timing}  {q.get('plan', '')[:110]}  | {q['sql'][:80]}")
    connection.close()

    floor_env = {
        **env,
        "FLOOR_DATABASE_URL": url,
        "FLOOR_SCOPES": json.dumps(
            {
                tokens["am"]: {"supplier_ids": [subjects["supplier_id"]], "school_ids": []},
                tokens["lead"]: {"supplier_ids": [], "school_ids": [subjects["school_id"]]},
            }
        ),
    }
    rows = []
    tool = "wrk" if load.have_wrk() else "python threads (wrk not found)"
    dbname = urlsplit(url).path.lstrip("/")
    with (
        load.gunicorn("partnership_crm.wsgi", env) as (app_url, app_sid),
        load.gunicorn("bench.tickets.floor:app", floor_env) as (floor_url, floor_sid),
    ):
        sessions = {app_sid, floor_sid}
        log(
            f"serving: app {app_url}, floor {floor_url}; load with {tool}, "
            f"{args.connections} connections, {args.duration:g}s per run (+ warm-up)"
        )
        for who, kind, path in scenarios:
            name = f"{who}/{kind}"
            row: dict[str, Any] = {
                "scenario": name,
                "path": path,
                "sql_queries": sql[name]["count"],
                "seq_scan": sql[name]["seq_scan"],
            }
            bodies = {}
            for server, base in (("app", app_url), ("floor", floor_url)):
                status, body = load.get(base + path, tokens[who])
                if status != 200:
                    raise RuntimeError(f"{server} {path} as {who}: HTTP {status}: {body[:300]!r}")
                bodies[server] = json.loads(body)
            row["rows"] = _rows(bodies["app"])
            row["same_shape"] = _shape(bodies["app"]) == _shape(bodies["floor"])
            if not row["same_shape"]:
                log(f"  WARNING {name}: app and floor answers differ in keys or rows")
            for server, base in (("app", app_url), ("floor", floor_url)):
                # A run during which other processes took CPU is run once more; the
                # less disturbed of the two counts.
                best: dict[str, Any] | None = None
                for attempt in (1, 2):
                    waited = load.wait_for_quiet(sessions, dbname, args.quiet_wait)
                    if args.quiet_wait and waited >= args.quiet_wait:
                        log(f"  other processes still busy after waiting {waited:.0f}s")
                    load.run(base + path, tokens[who], min(2.0, args.duration), args.connections)
                    before = uptime()
                    with load.CpuWatch(sessions, dbname) as cpu:
                        r = load.run(base + path, tokens[who], args.duration, args.connections)
                    r.update(load_before=before, others_cpu=round(cpu.others, 2), attempts=attempt)
                    if best is None or r["others_cpu"] < best["others_cpu"]:
                        best = r
                    if cpu.others <= CONTENDED:
                        break
                    if attempt == 1:
                        log(f"  {name} {server}: others used {cpu.others:.2f} cores; once more")
                r = best
                row.update({f"{server}_{k}": v for k, v in r.items()})
                if r["non_2xx"] or r["socket_errors"]:
                    log(
                        f"  WARNING {name} {server}: {r['non_2xx']} non-2xx, "
                        f"socket errors {r['socket_errors']}"
                    )
            row["p50_ratio"] = row["app_p50_ms"] / row["floor_p50_ms"]
            log(
                f"  {name:14} app {row['app_rps']:7.1f} req/s p50 {row['app_p50_ms']:7.2f} ms"
                f" | floor {row['floor_rps']:7.1f} req/s p50 {row['floor_p50_ms']:6.2f} ms"
                f" | x{row['p50_ratio']:.2f}  (load {row['app_load_before']}; others' CPU "
                f"{row['app_others_cpu']:.2f} | {row['floor_others_cpu']:.2f} cores)"
            )
            rows.append(row)
    return {
        "label": size_label,
        "tickets": total,
        "scope_sizes": scope_sizes,
        "rows": rows,
        "sql": sql,
        "tool": tool,
    }


# --- Output ---------------------------------------------------------------------------


def print_table(stage: dict[str, Any]) -> None:
    head = (
        f"{'scenario':14} {'rows':>4} {'app r/s':>8} {'p50 ms':>7} {'p99 ms':>7} "
        f"{'floor r/s':>9} {'p50 ms':>7} {'p99 ms':>7} {'p50 x':>6} {'SQL q':>5}  "
        f"{'others':>11}  {'load avg before (app | floor)':<32} notes"
    )
    print(
        f"\n== {stage['label']}: {stage['tickets']:,} tickets (scope: account manager "
        f"{stage['scope_sizes']['am']:,}, school lead {stage['scope_sizes']['lead']:,}); "
        f"app code {stage['code']} =="
    )
    print(head)
    print("-" * len(head))
    for r in stage["rows"]:
        notes = []
        if r["seq_scan"]:
            notes.append("SEQ SCAN " + ",".join(r["seq_scan"]))
        if not r["same_shape"]:
            notes.append("shape differs")
        if r["app_non_2xx"] or r["floor_non_2xx"]:
            notes.append("non-2xx")
        if max(r["app_others_cpu"], r["floor_others_cpu"]) > CONTENDED:
            notes.append("CONTENDED")
        if max(r["app_attempts"], r["floor_attempts"]) > 1:
            notes.append("run twice")
        print(
            f"{r['scenario']:14} {r['rows']:>4} {r['app_rps']:>8.1f} {r['app_p50_ms']:>7.2f} "
            f"{r['app_p99_ms']:>7.2f} {r['floor_rps']:>9.1f} {r['floor_p50_ms']:>7.2f} "
            f"{r['floor_p99_ms']:>7.2f} {r['p50_ratio']:>6.2f} {r['sql_queries']:>5} "
            f"{r['app_others_cpu']:>5.2f}|{r['floor_others_cpu']:<5.2f}  "
            f"{r['app_load_before'] + ' | ' + r['floor_load_before']:<32} {'; '.join(notes)}"
        )

    print(
        "rows: tickets on the page (messages for a detail); p50 x: app p50 / floor p50; "
        "SQL q: queries per request;\nothers: cores used by other processes during the app | "
        f"floor run (of {os.cpu_count()}); CONTENDED: over {CONTENDED} cores"
    )


def verdicts(stages: list[dict[str, Any]]) -> dict[str, Any]:
    last = stages[-1]
    checks = []
    for r in last["rows"]:
        kind = r["scenario"].split("/")[1]
        checks.append(
            {
                "check": f"{r['scenario']} p50 within {TARGETS[kind]:g}x of the floor",
                "value": round(r["p50_ratio"], 2),
                "pass": r["p50_ratio"] <= TARGETS[kind],
            }
        )
    growth = {}
    if len(stages) > 1:
        first = {r["scenario"]: r for r in stages[0]["rows"]}
        for r in last["rows"]:
            g = r["app_p50_ms"] / first[r["scenario"]]["app_p50_ms"]
            fg = r["floor_p50_ms"] / first[r["scenario"]]["floor_p50_ms"]
            growth[r["scenario"]] = {"app": round(g, 2), "floor": round(fg, 2)}
            checks.append(
                {
                    "check": f"{r['scenario']} app p50 flat ({stages[0]['label']} -> "
                    f"{last['label']}) within {GROWTH_TARGET:g}x",
                    "value": round(g, 2),
                    "pass": g <= GROWTH_TARGET,
                }
            )
    return {"growth": growth, "checks": checks}


def main() -> None:
    args = _args()
    url = os.environ.get("BENCH_DATABASE_URL", DEFAULT_URL)
    env = _environment(url)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run the finally blocks
    phases: dict[str, float] = {}

    def phase(name: str, started: float) -> None:
        phases[name] = round(time.monotonic() - started, 1)

    out = ROOT / "var" / "bench" / f"tickets-{datetime.now().astimezone():%Y%m%d-%H%M%S}.json"
    report: dict[str, Any] = {"args": vars(args), "database": url, "phases": phases}

    def save() -> None:
        """Written after every stage, so that a later failure keeps the figures so far."""
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=2, default=str))

    log(f"tickets benchmark: database {url}; uptime load average {uptime()}")
    t = time.monotonic()
    _ensure_database(url)
    _migrate(env)
    phase("database_and_migrate_s", t)
    log(f"migrated in {phases['database_and_migrate_s']}s")

    import django

    django.setup()
    from django.db import connection

    if args.skip_load:
        sizes: list[int | None] = [None]
    elif args.tickets > FIRST_SIZE:
        sizes = [FIRST_SIZE, args.tickets]
    else:
        sizes = [args.tickets]
    stages, loads, cast = [], [], None
    subjects: dict[str, int] = {}
    for i, size in enumerate(sizes):
        if size is None:
            subjects = data.get_meta("subjects")  # type: ignore[assignment]
        else:
            if i == 0:
                t = time.monotonic()
                log("resetting the bench tables and building the cast (ORM)")
                data.reset()
                cast = data.build_cast()
                phase("cast_s", t)
                log(f"  cast in {phases['cast_s']}s: {cast}")
            connection.close()
            log(f"loading tickets up to {size:,} (uptime load average {uptime()})")
            loads.append({"target": size, **data.load_tickets(url, size, log)})
            if i == 0:
                subjects = data.pick_subjects()
            log(f"subjects: {subjects}")
        t = time.monotonic()
        label = _label(size) if size else "existing data"
        _migrate(env)  # the tree may have gained migrations since the start
        version = code_version()
        log(f"app code: {version}")
        stages.append({**measure(label, subjects, args, env, url), "code": version})
        if version != code_version():
            log("WARNING: the app's code changed while this stage was measured")
            stages[-1]["code"] += " (changed during the stage)"
        phase(f"measure_{label}_s", t)
        print_table(stages[-1])
        report.update(cast=cast, subjects=subjects, loads=loads, stages=stages)
        save()

    result = verdicts(stages)
    if result["growth"]:
        print(f"\n== growth: p50({stages[-1]['label']}) / p50({stages[0]['label']}) ==")
        if len({st["code"] for st in stages}) > 1:
            print(
                "WARNING: the stages ran on different app code "
                f"({' -> '.join(st['code'] for st in stages)}): these ratios mix the two"
            )
        for name, g in result["growth"].items():
            print(f"{name:14} app x{g['app']:.2f}   floor x{g['floor']:.2f}")
    print("\n== targets ==")
    for c in result["checks"]:
        print(f"{'PASS' if c['pass'] else 'FAIL'}  {c['check']}: x{c['value']:.2f}")
    phases["total_s"] = round(time.monotonic() - STARTED, 1)
    report.update(result)
    save()
    print(f"\nphases: {phases}\nfigures written to {out.relative_to(ROOT)}")


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        print("\ninterrupted; servers stopped", file=sys.stderr)
        sys.exit(130)
