"""Benchmark of subject access and erasure for one person with 10,000 rows.

    .venv/bin/python -m bench.privacy [--rows 10000] [--database-url postgres://...]

Makes its own PostgreSQL database (default ``crm_bench_privacy``, dropped and created),
migrates it, and gives one member of staff (with a sign-in) tickets, messages, nudges and
delivery events in equal parts, written with bulk_create. Then prints, as JSON, the seconds
and the number of queries of the school lead's export, of the operator's export, and of the
erasure (in a transaction rolled back afterwards, so the figures can be taken again).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DB = "postgres://postgres@127.0.0.1:5432/crm_bench_privacy"


def _recreate(database_url: str) -> None:
    import psycopg

    url = urlparse(database_url)
    name = url.path.lstrip("/")
    admin = database_url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')


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
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def _person(rows: int) -> tuple[object, object]:
    from datetime import timedelta

    from django.utils import timezone

    from accounts.models import Contact, Membership, Organisation, Partnership, User
    from nudges.models import Nudge, NudgeEvent
    from tickets.models import Ticket, TicketMessage

    supplier = Organisation.objects.create(kind="supplier", name="Bench Supplier")
    school = Organisation.objects.create(kind="school", name="Bench School", urn="999001")
    lead = User.objects.create_user("lead@bench.example", "x", full_name="Bench Lead")
    Membership.objects.create(user=lead, organisation=school, role="school_lead")
    person = User.objects.create_user("person@bench.example", "x", full_name="Bench Person")
    Membership.objects.create(user=person, organisation=school, role="teacher")
    p = Partnership.objects.create(supplier=supplier, school=school)
    contact = Contact.objects.create(
        school=school, user=person, first_name="Bench", last_name="Person", email=person.email
    )
    p.contact_links.create(contact=contact)
    quarter = rows // 4
    now = timezone.now()
    tickets = Ticket.objects.bulk_create(
        [
            Ticket(
                partnership=p,
                supplier=supplier,
                school=school,
                raised_by=person,
                subject=f"Bench ticket {i}",
                description="Bench Person wrote this",
                first_response_target_seconds=3600,
                resolution_target_seconds=36000,
                first_response_due_at=now,
                created_at=now - timedelta(minutes=i),
            )
            for i in range(quarter)
        ],
        batch_size=1000,
    )
    TicketMessage.objects.bulk_create(
        [TicketMessage(ticket=t, author=person, body="Bench Person again") for t in tickets],
        batch_size=1000,
    )
    nudges = Nudge.objects.bulk_create(
        [
            Nudge(
                supplier=supplier,
                school=school,
                partnership=p,
                contact=contact,
                occurrence=f"manual:{i}",
                due_at=now,
                next_attempt_at=now,
                status="sent",
                sent_at=now - timedelta(minutes=i),
                rendered_text="Dear Bench Person",
            )
            for i in range(quarter)
        ],
        batch_size=1000,
    )
    NudgeEvent.objects.bulk_create(
        [
            NudgeEvent(
                nudge=n,
                sg_event_id=f"ev-{n.pk}",
                event="delivered",
                email=person.email,
                occurred_at=now,
            )
            for n in nudges
        ],
        batch_size=1000,
    )
    return lead, contact


def _measure(fn) -> dict[str, float | int]:  # type: ignore[no-untyped-def]
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        started = time.perf_counter()
        result = fn()
        seconds = time.perf_counter() - started
    rows = (
        sum(len(v) for v in result.values() if isinstance(v, list))
        if isinstance(result, dict)
        else None
    )
    return {"seconds": round(seconds, 3), "queries": len(queries), "rows": rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_DB))
    args = parser.parse_args()
    _recreate(args.database_url)
    _setup(args.database_url)

    from django.db import transaction

    from privacy.access import subject_access, subject_access_for_email
    from privacy.erasure import Operator, erase_contact

    lead, contact = _person(args.rows)
    figures: dict[str, object] = {"rows_made": args.rows}
    figures["school_lead_export"] = _measure(lambda: subject_access(by=lead, contact=contact))
    figures["operator_export"] = _measure(
        lambda: subject_access_for_email(by=Operator(), email=contact.email)
    )

    class Rollback(Exception):
        pass

    try:
        with transaction.atomic():
            erasure = _measure(lambda: erase_contact(by=lead, contact=contact))
            figures["erasure"] = erasure
            raise Rollback
    except Rollback:
        pass
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
