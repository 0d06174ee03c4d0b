"""Benchmark of retention's batched blanking: webhook events past their 90 days.

    .venv/bin/python -m bench.retention [--rows 200000] [--batch 500] [--database-url ...]

Makes its own PostgreSQL database (default ``crm_bench_retention``, dropped and created),
migrates it, writes ``--rows`` due SendGrid events (bulk_create) on one nudge, then runs
``privacy.retention.webhook_payloads`` and prints, as JSON, rows per second, the number of
batches and the longest single batch (select the keys + update, one transaction) in ms.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from contextlib import contextmanager

from bench.privacy import _recreate, _setup

DEFAULT_DB = "postgres://postgres@127.0.0.1:5432/crm_bench_retention"


def _events(rows: int) -> None:
    from datetime import timedelta

    from django.utils import timezone

    from accounts.models import Contact, Organisation, Partnership
    from nudges.models import Nudge, NudgeEvent

    supplier = Organisation.objects.create(kind="supplier", name="Bench Supplier")
    school = Organisation.objects.create(kind="school", name="Bench School", urn="999002")
    p = Partnership.objects.create(supplier=supplier, school=school)
    contact = Contact.objects.create(
        school=school, first_name="Bench", last_name="Person", email="person@bench.example"
    )
    now = timezone.now()
    nudge = Nudge.objects.create(
        supplier=supplier,
        school=school,
        partnership=p,
        contact=contact,
        occurrence="manual:bench",
        due_at=now,
        next_attempt_at=now,
    )
    old = now - timedelta(days=200)
    for start in range(0, rows, 10_000):
        NudgeEvent.objects.bulk_create(
            [
                NudgeEvent(
                    nudge=nudge,
                    sg_event_id=f"ev-{i}",
                    event="delivered",
                    email=contact.email,
                    reason="250 OK",
                    occurred_at=old,
                    received_at=old,
                )
                for i in range(start, min(rows, start + 10_000))
            ]
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=None, help="default RETENTION_BATCH")
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_DB))
    args = parser.parse_args()
    _recreate(args.database_url)
    _setup(args.database_url)

    from django.conf import settings
    from django.db import transaction

    from privacy import retention

    _events(args.rows)
    batches: list[float] = []

    @contextmanager
    def timed_atomic():  # each batch's transaction, timed
        started = time.perf_counter()
        with transaction.atomic():
            yield
        batches.append(time.perf_counter() - started)

    class Timed:
        atomic = staticmethod(timed_atomic)

    retention.transaction = Timed  # type: ignore[assignment]
    started = time.perf_counter()
    done = retention.webhook_payloads(batch=args.batch)
    seconds = time.perf_counter() - started
    print(
        json.dumps(
            {
                "rows": done,
                "batch": args.batch or settings.RETENTION_BATCH,
                "batches": len(batches),
                "seconds": round(seconds, 2),
                "rows_per_second": round(done / seconds),
                "longest_batch_ms": round(max(batches) * 1000, 1),
                "median_batch_ms": round(sorted(batches)[len(batches) // 2] * 1000, 1),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
