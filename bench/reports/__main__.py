"""Benchmark of the reports on the tickets benchmark's data (run `make bench-tickets` first).

    make bench-reports            # or: .venv/bin/python -m bench.reports [--runs 30]

In-process (Django's test client, no HTTP), against PostgreSQL: p50/p99 of a school
scorecard, a trust scorecard (per supplier) and the largest supplier's portfolio, each
next to the raw SQL of its core aggregate. Then the table is shrunk to a tenth for every
other school inside a transaction that is rolled back, and the school scorecard measured
again: its time should not depend on the table's size for a fixed school.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_DB = "postgres://postgres@127.0.0.1:5432/crm_bench"


def _setup(database_url: str) -> None:
    os.environ.update(
        DJANGO_SETTINGS_MODULE="partnership_crm.settings",
        DATABASE_URL=database_url,
        SECRET_KEY=os.environ.get("SECRET_KEY", "bench-only"),
        ALLOWED_HOSTS="testserver",
        SECURE_COOKIES="false",
        LOG_LEVEL="WARNING",
        AXES_ENABLED="false",
    )
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


def _times(fn: Callable[[], object], runs: int) -> dict[str, float]:
    for _ in range(3):
        fn()
    samples = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t) * 1000)
    samples.sort()
    return {
        "p50_ms": round(statistics.median(samples), 2),
        "p99_ms": round(samples[min(len(samples) - 1, int(len(samples) * 0.99))], 2),
    }


SCHOOL_SQL = """
SELECT supplier_id, count(*),
       count(*) FILTER (WHERE first_response_at IS NOT NULL AND first_response_at <= first_response_due_at),
       percentile_cont(0.5) WITHIN GROUP (ORDER BY first_response_seconds),
       percentile_cont(0.9) WITHIN GROUP (ORDER BY first_response_seconds),
       percentile_cont(0.5) WITHIN GROUP (ORDER BY sla_used_seconds) FILTER (WHERE resolved_at IS NOT NULL),
       avg(rating), count(rating)
FROM tickets_ticket WHERE school_id = ANY(%s) AND created_at >= %s AND created_at < %s
GROUP BY supplier_id
"""
PORTFOLIO_SQL = """
SELECT partnership_id, o.open, r.rating
FROM (SELECT partnership_id, count(*) AS open FROM tickets_ticket
      WHERE supplier_id = %s AND status IN ('new','acknowledged','in_progress','waiting_on_school')
      GROUP BY partnership_id) o
FULL JOIN (SELECT partnership_id, avg(rating) AS rating FROM tickets_ticket
      WHERE supplier_id = %s AND rated_at >= now() - interval '90 days'
      GROUP BY partnership_id) r USING (partnership_id)
"""


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    _setup(os.environ.get("BENCH_DATABASE_URL", DEFAULT_DB))

    from django.core.management import call_command
    from django.db import connection, transaction
    from django.db.models import Count
    from django.test import Client
    from knox.models import AuthToken

    from accounts.models import Membership, Organisation
    from reports.scorecards import academic_year
    from tickets.models import Ticket

    call_command("migrate", verbosity=0)
    total = Ticket.objects.count()
    if total < 1000:
        sys.exit("No benchmark data: run `make bench-tickets` first.")
    with connection.cursor() as cur:  # tickets loaded before the field existed
        cur.execute(
            "UPDATE tickets_ticket SET first_response_seconds = "
            "LEAST(EXTRACT(EPOCH FROM first_response_at - created_at)::int, 2000000000) "
            "WHERE first_response_at IS NOT NULL AND first_response_seconds IS NULL"
        )
    # The state autovacuum keeps a live table in: a previous run's rolled-back shrink (below)
    # leaves every page not-all-visible, which turns index-only scans into heap reads.
    with connection.cursor() as cur:
        cur.execute("VACUUM (ANALYZE) tickets_ticket")
    period = academic_year(
        Ticket.objects.order_by("-created_at").values_list("created_at", flat=True).first().date()
    )
    start, end = period.bounds

    school_id = (
        Ticket.objects.values("school_id").annotate(n=Count("id")).order_by("-n")[0]["school_id"]
    )
    trust_id = (
        Organisation.objects.filter(kind="trust")
        .annotate(n=Count("schools__school_tickets"))
        .order_by("-n")[0]
        .pk
    )
    supplier_id = (
        Ticket.objects.values("supplier_id")
        .annotate(n=Count("id"))
        .order_by("-n")[0]["supplier_id"]
    )
    lead = Membership.objects.get_or_create(
        organisation_id=school_id,
        role="school_lead",
        defaults={"user": Membership.objects.filter(organisation_id=school_id).first().user},
    )[0].user
    trust_lead = Membership.objects.filter(organisation_id=trust_id, role="trust_lead").first()
    if trust_lead is None:
        trust_lead = Membership.objects.create(
            organisation_id=trust_id, role="trust_lead", user=lead
        )
    am = Membership.objects.filter(organisation_id=supplier_id, role="account_manager").first().user

    def client(user: object) -> Client:
        _, token = AuthToken.objects.create(user=user)
        return Client(HTTP_AUTHORIZATION=f"Token {token}")

    q = {"from": period.start.isoformat(), "to": period.end.isoformat()}
    lead_c, trust_c, am_c = client(lead), client(trust_lead.user), client(am)
    trust_schools = list(
        Organisation.objects.filter(trust_id=trust_id).values_list("id", flat=True)
    )

    def raw(sql: str, params: list[object]) -> Callable[[], object]:
        def run() -> object:
            with connection.cursor() as cur:
                cur.execute(sql, params)
                return cur.fetchall()

        return run

    def get(c: Client, url: str, params: dict[str, object]) -> Callable[[], object]:
        def run() -> object:
            response = c.get(url, params)
            assert response.status_code == 200, response.content[:200]
            return response

        return run

    scenarios = [
        (
            "school scorecard",
            get(lead_c, "/api/v1/scorecards/", {**q, "school": school_id}),
            raw(SCHOOL_SQL, [[school_id], start, end]),
        ),
        (
            "trust scorecard",
            get(trust_c, "/api/v1/scorecards/", {**q, "trust": trust_id}),
            raw(SCHOOL_SQL, [trust_schools, start, end]),
        ),
        (
            "supplier portfolio",
            get(am_c, "/api/v1/portfolio/", {}),
            raw(PORTFOLIO_SQL, [supplier_id, supplier_id]),
        ),
    ]
    load = os.getloadavg()[0]
    rows = []
    for name, app, floor in scenarios:
        a, f = _times(app, args.runs), _times(floor, args.runs)
        rows.append(
            {
                "scenario": name,
                "app": a,
                "raw_sql": f,
                "ratio_p50": round(a["p50_ms"] / f["p50_ms"], 2),
            }
        )

    # Growth: the same school, with the rest of the table cut to a tenth, then rolled back.
    growth = {}
    with transaction.atomic():
        with connection.cursor() as cur:
            for table in ("tickets_ticketmessage", "tickets_ticketevent", "visits_timeentry"):
                column = "ticket_id"
                cur.execute(
                    f"DELETE FROM {table} WHERE {column} IN (SELECT id FROM tickets_ticket "
                    "WHERE school_id <> %s AND id %% 10 <> 0)",
                    [school_id],
                )
            cur.execute(
                "DELETE FROM tickets_idempotencykey WHERE ticket_id IN (SELECT id FROM tickets_ticket WHERE school_id <> %s AND id %% 10 <> 0)",
                [school_id],
            )
            cur.execute(
                "DELETE FROM tickets_ticket WHERE school_id <> %s AND id %% 10 <> 0", [school_id]
            )
            cur.execute("ANALYZE tickets_ticket")
        small = Ticket.objects.count()
        growth["small_table_rows"] = small
        growth["small"] = _times(scenarios[0][1], args.runs)
        transaction.set_rollback(True)
    with connection.cursor() as cur:
        cur.execute("ANALYZE tickets_ticket")
    growth["large_table_rows"] = total
    growth["large"] = rows[0]["app"]
    growth["ratio_p50"] = round(growth["large"]["p50_ms"] / growth["small"]["p50_ms"], 2)

    school_rows = Ticket.objects.filter(
        school_id=school_id, created_at__gte=start, created_at__lt=end
    ).count()
    print(
        f"\nReports on {total:,} tickets (school {school_id}: {school_rows:,} tickets in the period; "
        f"load average {load:.2f})\n"
    )
    print(
        f"{'scenario':22} {'app p50':>9} {'app p99':>9} {'SQL p50':>9} {'SQL p99':>9} {'ratio':>7}"
    )
    for r in rows:
        print(
            f"{r['scenario']:22} {r['app']['p50_ms']:>9} {r['app']['p99_ms']:>9} "
            f"{r['raw_sql']['p50_ms']:>9} {r['raw_sql']['p99_ms']:>9} {r['ratio_p50']:>7}"
        )
    print(
        f"\nschool scorecard p50: {growth['small']['p50_ms']} ms with {growth['small_table_rows']:,} tickets in the "
        f"table, {growth['large']['p50_ms']} ms with {total:,} (x{growth['ratio_p50']})"
    )
    print("Targets: within 1.5x of the raw SQL; flat in the table's size for a fixed school.")
    out = ROOT / "var" / "bench"
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"reports-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(
        json.dumps({"rows": rows, "growth": growth, "load": load}, indent=2, default=str)
    )
    print(f"Figures: {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
