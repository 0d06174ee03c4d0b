"""Bench data: the cast through the ORM (a few thousand rows), then tickets, their
messages and events streamed into PostgreSQL with COPY.

The cast: 500 schools (5 trusts of 20, the rest standalone) with term dates, 20
suppliers of skewed size (the largest partners with ~40% of the schools), each school
with 1-4 suppliers, one account manager per supplier, a school lead and 2-5 teachers per
school (memberships, and contacts for the teachers). One school among the largest
supplier's partners is "busy" (a large school, several times the median volume), so the
school measured is the same at every table size.

Tickets are spread over the last two academic years (730 days, school hours, no
weekends), generated in created_at order (as a live table fills) and with a realistic
life: status by age (recent ones open, old ones resolved or closed), first response,
waiting on the school, outcome and rating, about two messages each (some internal) and
the events the app would write. The SLA fields follow the app's rules (sla.py) but in
calendar time, not school working time.

Loading N tickets: one transaction drops the tables' secondary indexes and foreign keys
(read from the catalogue, i.e. exactly what the migrations made), COPYs batches generated
by a producer thread (so Python and PostgreSQL work at the same time), recreates the
same indexes and constraints (the foreign keys are validated then), and checks that the
catalogue matches what it was. VACUUM ANALYZE follows, as autovacuum would.
"""

from __future__ import annotations

import json
import queue
import random
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date

import psycopg

SEED = 20261122
N_SCHOOLS, N_TRUSTS, SCHOOLS_PER_TRUST, N_SUPPLIERS = 500, 5, 20, 20
LARGEST_SHARE = 0.40
BUSY_SCHOOL_WEIGHT = 20.0  # the busy school's volume, against ~1.2 for the mean school
WINDOW_DAYS = 730
BATCH = 20_000
DAY = 86_400
TABLES = ["tickets_ticket", "tickets_ticketmessage", "tickets_ticketevent"]
N = "\\N"  # NULL in COPY's text format

Log = Callable[[str], None]

# English term dates (approximate) for the academic years the tickets span.
TERMS = [
    ("Autumn 2024", "2024-09-03", "2024-12-20"),
    ("Spring 2025", "2025-01-06", "2025-04-04"),
    ("Summer 2025", "2025-04-22", "2025-07-22"),
    ("Autumn 2025", "2025-09-03", "2025-12-19"),
    ("Spring 2026", "2026-01-05", "2026-03-27"),
    ("Summer 2026", "2026-04-13", "2026-07-21"),
    ("Autumn 2026", "2026-09-02", "2026-12-18"),
    ("Spring 2027", "2027-01-04", "2027-03-26"),
    ("Summer 2027", "2027-04-12", "2027-07-21"),
]
INSET_DAYS = ["2024-09-02", "2025-01-06", "2025-09-02", "2026-01-05", "2026-09-01"]


# --- The cast (ORM) -------------------------------------------------------------------


def reset() -> None:
    """Empty every table the bench fills (everything hangs off organisations and users)."""
    from django.db import connection

    with connection.cursor() as cur:
        _ensure_meta(cur)
        cur.execute(
            "TRUNCATE accounts_organisation, accounts_user, bench_meta RESTART IDENTITY CASCADE"
        )


def build_cast() -> dict[str, int]:
    from django.db import transaction

    from accounts.models import (
        ClosureDay,
        Contact,
        Membership,
        Organisation,
        Partnership,
        Product,
        Term,
        User,
    )

    rng = random.Random(SEED)
    with transaction.atomic():
        trusts = Organisation.objects.bulk_create(
            Organisation(kind="trust", name=f"Bench Trust {i + 1}", gias_group_code=f"T{i + 1}")
            for i in range(N_TRUSTS)
        )
        schools = Organisation.objects.bulk_create(
            Organisation(
                kind="school",
                name=f"Bench School {i + 1:03d}",
                urn=f"{900001 + i}",
                phase=rng.choice(["primary", "primary", "primary", "secondary"]),
                local_authority=f"Authority {i % 40 + 1}",
                trust=trusts[i // SCHOOLS_PER_TRUST] if i < N_TRUSTS * SCHOOLS_PER_TRUST else None,
            )
            for i in range(N_SCHOOLS)
        )
        suppliers = Organisation.objects.bulk_create(
            Organisation(kind="supplier", name=f"Bench Supplier {i + 1:02d}")
            for i in range(N_SUPPLIERS)
        )
        products = Product.objects.bulk_create(
            Product(supplier=s, name=f"{s.name} product {k + 1}")
            for s in suppliers
            for k in range(rng.randint(1, 3))
        )
        first_product = {}
        for p in products:
            first_product.setdefault(p.supplier_id, p)

        ams = [
            User(email=f"am{i + 1:02d}@bench.invalid", full_name=f"Account Manager {i + 1:02d}")
            for i in range(N_SUPPLIERS)
        ]
        school_users: list[tuple[Organisation, User, str]] = []
        for i, school in enumerate(schools):
            school_users.append(
                (
                    school,
                    User(email=f"lead{i + 1}@bench.invalid", full_name=f"Lead {i + 1}"),
                    "school_lead",
                )
            )
            for k in range(rng.randint(2, 5)):
                user = User(
                    email=f"t{i + 1}.{k + 1}@bench.invalid", full_name=f"Teacher {i + 1}.{k + 1}"
                )
                school_users.append((school, user, "teacher"))
        for user in [*ams, *(u for _, u, _ in school_users)]:
            user.set_unusable_password()
        User.objects.bulk_create([*ams, *(u for _, u, _ in school_users)])
        Membership.objects.bulk_create(
            [
                *(
                    Membership(user=u, organisation=s, role="account_manager")
                    for s, u in zip(suppliers, ams, strict=True)
                ),
                *(Membership(user=u, organisation=s, role=r) for s, u, r in school_users),
            ]
        )
        Contact.objects.bulk_create(
            Contact(
                school=s,
                user=u,
                first_name=u.full_name.split()[0],
                last_name=u.full_name.split()[1],
                email=u.email,
                job_title="Teacher",
                tags=",teacher,",
            )
            for s, u, r in school_users
            if r == "teacher"
        )
        Term.objects.bulk_create(
            Term(
                school=s, name=name, starts_on=date.fromisoformat(a), ends_on=date.fromisoformat(b)
            )
            for s in schools
            for name, a, b in TERMS
        )
        ClosureDay.objects.bulk_create(
            ClosureDay(school=s, date=date.fromisoformat(d)) for s in schools for d in INSET_DAYS
        )

        # Partnerships: the largest supplier with ~40% of schools, then 1-4 suppliers in all.
        others = suppliers[1:]
        other_weights = [1 / (k + 1) ** 0.6 for k in range(len(others))]
        partnerships = []
        for school in schools:
            chosen = [suppliers[0]] if rng.random() < LARGEST_SHARE else []
            want = rng.choices([1, 2, 3, 4], weights=[30, 35, 22, 13])[0]
            while len(chosen) < want:
                s = rng.choices(others, weights=other_weights)[0]
                if s not in chosen:
                    chosen.append(s)
            for s in chosen:
                fr = rng.choice([4, 8, 8, 16])
                partnerships.append(
                    Partnership(
                        supplier=s,
                        school=school,
                        account_manager=ams[suppliers.index(s)],
                        stage=rng.choice(["pilot", "expansion", "whole_school", "renewal"]),
                        first_response_target_hours=fr,
                        resolution_target_hours=max(fr, rng.choice([24, 40, 40, 80])),
                    )
                )
        Partnership.objects.bulk_create(partnerships)
        Partnership.products.through.objects.bulk_create(
            Partnership.products.through(partnership=p, product=first_product[p.supplier_id])
            for p in partnerships
        )

        # Ticket volume per partnership: school size (log-normal) x supplier (larger
        # suppliers' products are used more), with one busy school at the largest supplier.
        school_weight = {s.pk: rng.lognormvariate(0, 0.6) for s in schools}
        busy = next(p.school_id for p in partnerships if p.supplier_id == suppliers[0].pk)
        school_weight[busy] = BUSY_SCHOOL_WEIGHT
        weights = {
            p.pk: round(school_weight[p.school_id] / (1 + suppliers.index(p.supplier) * 0.05), 4)
            for p in partnerships
        }
        from django.db import connection

        with connection.cursor() as cur:
            _put_meta(cur, "weights", weights)
    return {
        "trusts": len(trusts),
        "schools": len(schools),
        "suppliers": len(suppliers),
        "partnerships": len(partnerships),
        "users": len(ams) + len(school_users),
        "largest_supplier_schools": sum(p.supplier_id == suppliers[0].pk for p in partnerships),
    }


def _ensure_meta(cur: object) -> None:
    cur.execute(  # type: ignore[attr-defined]
        "CREATE TABLE IF NOT EXISTS bench_meta (key text PRIMARY KEY, value jsonb NOT NULL)"
    )


def _put_meta(cur: object, key: str, value: object) -> None:
    _ensure_meta(cur)
    cur.execute(  # type: ignore[attr-defined]
        "INSERT INTO bench_meta VALUES (%s, %s) ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
        [key, json.dumps(value)],
    )


def get_meta(key: str) -> object:
    from django.db import connection

    with connection.cursor() as cur:
        _ensure_meta(cur)
        cur.execute("SELECT value FROM bench_meta WHERE key = %s", [key])
        row = cur.fetchone()
    if row is None:
        raise LookupError(f"bench_meta has no {key!r}: run without --skip-load first")
    return row[0] if not isinstance(row[0], str) else json.loads(row[0])


def pick_subjects() -> dict[str, int]:
    """Who and what the bench measures, fixed after the first load (kept in bench_meta):
    the largest supplier's account manager, the school with most of its tickets and that
    school's lead, and a recent ticket of theirs with public and internal messages."""
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute(
            "SELECT supplier_id FROM accounts_partnership GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1"
        )
        supplier = cur.fetchone()[0]
        cur.execute(
            "SELECT school_id FROM tickets_ticket WHERE supplier_id = %s GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1",
            [supplier],
        )
        school = cur.fetchone()[0]
        cur.execute(
            "SELECT user_id FROM accounts_membership WHERE organisation_id = %s AND role = %s",
            [supplier, "account_manager"],
        )
        am = cur.fetchone()[0]
        cur.execute(
            "SELECT user_id FROM accounts_membership WHERE organisation_id = %s AND role = %s",
            [school, "school_lead"],
        )
        lead = cur.fetchone()[0]
        cur.execute(
            """SELECT t.id FROM tickets_ticket t
               WHERE t.supplier_id = %s AND t.school_id = %s
                 AND EXISTS (SELECT 1 FROM tickets_ticketmessage m
                             WHERE m.ticket_id = t.id AND m.is_internal)
                 AND (SELECT count(*) FROM tickets_ticketmessage m
                      WHERE m.ticket_id = t.id AND NOT m.is_internal) >= 2
               ORDER BY t.created_at DESC LIMIT 1""",
            [supplier, school],
        )
        ticket = cur.fetchone()[0]
        subjects = {
            "supplier_id": supplier,
            "am_user_id": am,
            "school_id": school,
            "lead_user_id": lead,
            "detail_ticket_id": ticket,
        }
        _put_meta(cur, "subjects", subjects)
    return subjects


# --- Tickets (COPY) -------------------------------------------------------------------


@dataclass(frozen=True)
class Partner:
    id: int
    supplier_id: int
    school_id: int
    product_id: int | None
    am_id: int
    fr_s: int
    res_s: int


TICKET_COLUMNS = (
    "id, partnership_id, supplier_id, school_id, product_id, raised_by_id, assignee_id, "
    "subject, description, category, priority, status, outcome, outcome_reason, created_at, "
    "updated_at, first_response_target_seconds, resolution_target_seconds, "
    "first_response_due_at, first_response_at, sla_used_seconds, clock_started_at, "
    "resolution_due_at, resolved_at, closed_at, resolution_breached, reopen_count, rating, "
    "rating_comment, rated_at, search_document, notified_first_response_at, "
    "notified_resolved_at"
)
# COPY takes no model defaults: every NOT NULL column is written (channel "page", not the
# message that reopened the ticket).
MESSAGE_COLUMNS = "id, ticket_id, author_id, body, is_internal, created_at, channel, reopened"
EVENT_COLUMNS = "id, ticket_id, kind, from_value, to_value, by_id, at"

AREAS = [
    "Login",
    "Homework",
    "Reports",
    "Timetable sync",
    "Parent app",
    "Quizzes",
    "Class lists",
    "Printing",
    "Reading log",
    "Assessments",
    "Rewards",
    "Video",
]
ISSUES = [
    "not loading",
    "slow in the morning",
    "shows the wrong class",
    "missing pupils",
    "error after update",
    "idea for a new view",
    "how do I export?",
    "needs training",
    "works brilliantly",
    "SSO loop",
    "duplicate entries",
    "times out on wifi",
]
SENTENCES = [
    "It started after half term.",
    "Several teachers in Year 4 see the same thing.",
    "We have tried logging out and in again.",
    "The IT technician checked the network.",
    "It only happens on the older laptops.",
    "Pupils lose their work when it happens.",
    "Could this be shown on the dashboard instead?",
    "The cover staff do not know how to use it.",
    "It is fine at home but not in school.",
    "We need this before parents' evening.",
    "The sync from the MIS seems to run twice.",
    "Please can someone call the office?",
    "Screenshots are attached to the email we sent.",
    "The class teacher is happy to pilot it.",
    "It has happened three times this week.",
    "Our SENCo asked whether it works with readers.",
]
REPLIES = [
    "Thanks, we are looking into this now.",
    "Could you tell us which browser you use?",
    "We have pushed a fix; please try again.",
    "I have booked a training session for Tuesday.",
    "That is on our roadmap for next term.",
    "We reproduced it on our side.",
    "It works now, thank you!",
    "Still happening for some staff, sorry.",
    "Customer has older devices, check the kiosk mode.",
    "Escalated to the platform team.",
    "Known issue with the MIS connector, workaround sent.",
    "Spoke to the IT lead on the phone.",
]
REASONS = [
    "The feature conflicts with data protection rules.",
    "Out of scope for this product.",
    "Superseded by the new reporting module.",
    "Not possible with the school's MIS.",
]
STATUS_BY_AGE = [  # (max age in days, statuses, weights)
    (
        2,
        ["new", "acknowledged", "in_progress", "waiting_on_school", "resolved"],
        [35, 20, 30, 10, 5],
    ),
    (
        30,
        ["new", "acknowledged", "in_progress", "waiting_on_school", "resolved", "closed"],
        [3, 7, 30, 20, 30, 10],
    ),
    (10**6, ["in_progress", "waiting_on_school", "resolved", "closed"], [2.5, 1.5, 10, 86]),
]
CATEGORIES = (["problem", "question", "idea", "training_need", "praise"], [45, 25, 10, 12, 8])
PRIORITIES = (["low", "normal", "high", "urgent"], [20, 60, 15, 5])
OUTCOMES = (
    ["fixed", "changed_product", "training_given", "workaround", "wont_change"],
    [40, 10, 20, 15, 15],
)


class _Stamp:
    """Epoch seconds -> timestamptz text, fast (a cache of day strings)."""

    def __init__(self) -> None:
        self.days: dict[int, str] = {}

    def __call__(self, t: int | None) -> str:
        if t is None:
            return N
        d, s = divmod(t, DAY)
        day = self.days.get(d)
        if day is None:
            day = self.days[d] = time.strftime("%Y-%m-%d ", time.gmtime(d * DAY))
        h, s = divmod(s, 3600)
        m, s = divmod(s, 60)
        return f"{day}{h:02d}:{m:02d}:{s:02d}+00"


class _Writer:
    """Appends one ticket's rows (COPY text lines) to three lists."""

    def __init__(
        self, rng: random.Random, now: int, raisers: dict[int, list[int]], ids: tuple[int, int, int]
    ) -> None:
        self.rng, self.now, self.raisers = rng, now, raisers
        self.tid, self.mid, self.eid = ids
        self.ts = _Stamp()
        self.subjects = [f"{a}: {i}" for a in AREAS for i in ISSUES]
        self.descriptions = [" ".join(rng.sample(SENTENCES, rng.randint(2, 4))) for _ in range(500)]
        self.t: list[str] = []
        self.m: list[str] = []
        self.e: list[str] = []

    def _status(self, age: int) -> str:
        for max_days, statuses, weights in STATUS_BY_AGE:
            if age <= max_days * DAY:
                return self.rng.choices(statuses, weights)[0]
        raise AssertionError

    def ticket(self, created: int, p: Partner) -> None:
        rng, ts, expo = self.rng, self.ts, self.rng.expovariate
        tid = self.tid
        self.tid += 1
        raiser = rng.choice(self.raisers[p.school_id])
        status = self._status(self.now - created)

        # The natural timeline (offsets from created), squeezed to fit before now.
        path: list[tuple[str, float]] = []
        t = 60 + expo(1 / (0.4 * p.fr_s))
        if status == "acknowledged":
            path.append(("acknowledged", t))
        elif status != "new":
            if rng.random() < 0.4:
                path.append(("acknowledged", t))
                t += 600 + expo(1 / 7200)
            path.append(("in_progress", t))
            if status == "waiting_on_school" or (status != "in_progress" and rng.random() < 0.25):
                t += 60 + expo(1 / (0.3 * p.res_s))
                path.append(("waiting_on_school", t))
                if status != "waiting_on_school":
                    t += 600 + expo(1 / DAY)
                    path.append(("in_progress", t))
            if status in ("resolved", "closed"):
                t += 600 + expo(1 / (0.5 * p.res_s))
                path.append(("resolved", t))
            if status == "closed":
                t += 600 + expo(1 / (3 * DAY))
                path.append(("closed", t))
        room = max(0, self.now - created - 120)
        scale = min(1.0, room / path[-1][1]) if path else 1.0

        events = [("created", "", "new", raiser, created)]
        prev, clock, used, breached = "new", created, 0, False
        due: int | None = created + p.res_s
        first_at = resolved_at = closed_at = None
        outcome = reason = ""
        for st, off in path:
            at = created + int(off * scale)
            by = p.am_id
            if st == "waiting_on_school":
                used += at - clock
                clock, due = None, None
                breached = breached or used > p.res_s
            elif st == "in_progress" and prev == "waiting_on_school":
                by = raiser  # the school answered
                clock = at
                remaining = p.res_s - used
                if remaining > 0:
                    due = at + remaining
                else:
                    breached, due = breached or remaining < 0, due or at
            elif st == "resolved":
                used += at - clock
                clock, resolved_at = None, at
                breached = breached or used > p.res_s
                outcome = rng.choices(*OUTCOMES)[0]
                if outcome == "wont_change" or rng.random() < 0.2:
                    reason = rng.choice(REASONS)
                events.append(("outcome", "", outcome, by, at))
            elif st == "closed":
                closed_at = at
                by = raiser if rng.random() < 0.5 else p.am_id
            events.append(("status", prev, st, by, at))
            if first_at is None:
                first_at = at
                events.append(("first_response", "", "", p.am_id, at))
            prev = st
        last = events[-1][4]

        rating = rated_at = None
        comment = ""
        if resolved_at is not None and rng.random() < 0.3:
            rating = rng.choices([1, 2, 3, 4, 5], [5, 7, 15, 33, 40])[0]
            rated_at = resolved_at + int(min(expo(1 / DAY), (self.now - resolved_at) / 2))
            comment = rng.choice(REPLIES) if rng.random() < 0.3 else ""
            events.append(("rated", "", str(rating), raiser, rated_at))
            last = max(last, rated_at)

        # Messages: the supplier's first reply, then a few more (some internal notes).
        msgs: list[tuple[int, int, bool]] = []
        if first_at is not None:
            msgs.append((first_at, p.am_id, False))
            for _ in range(rng.choice((0, 0, 1, 1, 2, 3))):
                internal = rng.random() < 0.3
                author = p.am_id if internal or rng.random() < 0.4 else raiser
                msgs.append((rng.randint(first_at, max(first_at, last)), author, internal))
        elif rng.random() < 0.2:
            msgs.append((created + int(room * 0.1), raiser, False))
        msgs.sort()
        public = []
        for at, author, internal in msgs:
            body = rng.choice(REPLIES)
            if not internal:
                public.append(body)
            self.m.append(
                f"{self.mid}\t{tid}\t{author}\t{body}\t{'t' if internal else 'f'}\t{ts(at)}"
                "\tpage\tf\n"
            )
            self.mid += 1
        for kind, frm, to, by, at in events:
            self.e.append(f"{self.eid}\t{tid}\t{kind}\t{frm}\t{to}\t{by}\t{ts(at)}\n")
            self.eid += 1
        if msgs:
            last = max(last, msgs[-1][0])

        subject, description = rng.choice(self.subjects), rng.choice(self.descriptions)
        search = "\\n".join([subject, description, *public])
        assignee = p.am_id if status != "new" and rng.random() < 0.7 else N
        category = rng.choices(*CATEGORIES)[0]
        priority = rng.choices(*PRIORITIES)[0]
        notified_first = first_at + 30 if first_at is not None else None
        notified_resolved = resolved_at + 30 if resolved_at is not None else None
        self.t.append(
            f"{tid}\t{p.id}\t{p.supplier_id}\t{p.school_id}\t{p.product_id or N}\t{raiser}\t"
            f"{assignee}\t{subject}\t{description}\t{category}\t{priority}\t{status}\t"
            f"{outcome}\t{reason}\t{ts(created)}\t{ts(last)}\t{p.fr_s}\t{p.res_s}\t"
            f"{ts(created + p.fr_s)}\t{ts(first_at)}\t{used}\t{ts(clock)}\t{ts(due)}\t"
            f"{ts(resolved_at)}\t{ts(closed_at)}\t{'t' if breached else 'f'}\t0\t"
            f"{rating if rating is not None else N}\t{comment}\t{ts(rated_at)}\t{search}\t"
            f"{ts(notified_first)}\t{ts(notified_resolved)}\n"
        )

    def take(self) -> tuple[str, str, str, int, int]:
        out = ("".join(self.t), "".join(self.m), "".join(self.e), len(self.m), len(self.e))
        self.t, self.m, self.e = [], [], []
        return out


def _school_time(t: int, rng: random.Random, now: int) -> int:
    """A moment in school hours (07:00-16:00 UTC) on a weekday, not after now."""
    day = t // DAY
    weekday = (day + 3) % 7  # 1970-01-01 was a Thursday
    if weekday >= 5:
        day -= weekday - 4
    return min(day * DAY + 7 * 3600 + rng.randrange(9 * 3600), now - 60)


def _generate(
    partners: list[Partner],
    cum: list[float],
    raisers: dict[int, list[int]],
    n: int,
    ids: tuple[int, int, int],
    seed: int,
    now: int,
) -> Iterator[tuple[str, str, str, int, int]]:
    rng = random.Random(seed)
    writer = _Writer(rng, now, raisers, ids)
    start, span = now - WINDOW_DAYS * DAY, WINDOW_DAYS * DAY
    batches = max(1, -(-n // BATCH))
    for b in range(batches):
        size = min(BATCH, n - b * BATCH)
        lo, hi = start + span * b // batches, start + span * (b + 1) // batches
        times = sorted(_school_time(rng.randrange(lo, hi), rng, now) for _ in range(size))
        for created, p in zip(times, rng.choices(partners, cum_weights=cum, k=size), strict=True):
            writer.ticket(created, p)
        yield writer.take()


def _catalogue(cur: psycopg.Cursor) -> tuple[list[tuple], list[tuple]]:
    """The tables' secondary indexes and foreign keys, as the migrations made them."""
    cur.execute(
        """SELECT c.relname, pg_get_indexdef(i.indexrelid) FROM pg_index i
           JOIN pg_class c ON c.oid = i.indexrelid
           WHERE i.indrelid = ANY(%s::regclass[])
             AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid
                             AND k.conrelid = i.indrelid AND k.contype IN ('p', 'u', 'x'))
           ORDER BY 1""",
        [TABLES],
    )
    indexes = cur.fetchall()
    cur.execute(
        """SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid)
           FROM pg_constraint WHERE contype = 'f' AND conrelid = ANY(%s::regclass[])
           ORDER BY 1, 2""",
        [TABLES],
    )
    return indexes, cur.fetchall()


def _normalised(sql: str | None) -> str:
    """An index expression or predicate without casts, parentheses and spacing: PostgreSQL
    reads a recreated definition back with its casts placed differently (migration 0006's
    ``status IN (...)`` came back as ``ARRAY[('new'::varchar)::text, ...]`` where the
    migration's read ``(ARRAY['new'::varchar, ...])::text[]``), which means the same."""
    if not sql:
        return ""
    sql = re.sub(r"::\s*\w+(\s+(varying|precision|with(out)?\s+time\s+zone))?(\[\])?", "", sql)
    return re.sub(r"[\s()]", "", sql).lower()


def index_shapes(cur: psycopg.Cursor) -> list[tuple]:
    """Each secondary index of the tables as what it means: name, table, method,
    uniqueness, key and included columns (or expressions) and predicate, normalised."""
    cur.execute(
        """SELECT c.relname, t.relname, am.amname, i.indisunique, i.indnkeyatts,
                  array(SELECT pg_get_indexdef(i.indexrelid, k, true)
                        FROM generate_series(1, i.indnatts) k ORDER BY k),
                  pg_get_expr(i.indpred, i.indrelid, true)
           FROM pg_index i
           JOIN pg_class c ON c.oid = i.indexrelid
           JOIN pg_class t ON t.oid = i.indrelid
           JOIN pg_am am ON am.oid = c.relam
           WHERE i.indrelid = ANY(%s::regclass[])
             AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid
                             AND k.conrelid = i.indrelid AND k.contype IN ('p', 'u', 'x'))
           ORDER BY 1""",
        [TABLES],
    )
    return [
        (
            name,
            table,
            method,
            unique,
            tuple(_normalised(c) for c in columns[:keys]),
            tuple(_normalised(c) for c in columns[keys:]),
            _normalised(predicate),
        )
        for name, table, method, unique, keys, columns, predicate in cur.fetchall()
    ]


def load_tickets(dsn: str, target: int, log: Log) -> dict[str, float | int]:
    """Grow tickets_ticket to ``target`` rows (with messages and events)."""
    timings: dict[str, float | int] = {}
    t0 = time.monotonic()
    with psycopg.connect(dsn) as conn:
        cur = conn.cursor()
        cur.execute("SET synchronous_commit = off")
        cur.execute("SET maintenance_work_mem = '512MB'")
        cur.execute(
            """SELECT p.id, p.supplier_id, p.school_id,
                      (SELECT min(product_id) FROM accounts_partnership_products x
                       WHERE x.partnership_id = p.id),
                      p.account_manager_id, p.first_response_target_hours * 3600,
                      p.resolution_target_hours * 3600
               FROM accounts_partnership p ORDER BY p.id"""
        )
        partners = [Partner(*row) for row in cur.fetchall()]
        cur.execute("SELECT value FROM bench_meta WHERE key = 'weights'")
        weights = cur.fetchone()[0]
        cum, acc = [], 0.0
        for p in partners:
            acc += weights[str(p.id)]
            cum.append(acc)
        cur.execute(
            """SELECT m.organisation_id, m.user_id FROM accounts_membership m
               JOIN accounts_organisation o ON o.id = m.organisation_id
               WHERE o.kind = 'school' ORDER BY 1, 2"""
        )
        raisers: dict[int, list[int]] = {}
        for school, user in cur.fetchall():
            raisers.setdefault(school, []).append(user)
        ids = []
        for table in TABLES:
            cur.execute(f"SELECT coalesce(max(id), 0) + 1 FROM {table}")
            ids.append(cur.fetchone()[0])
        cur.execute("SELECT count(*) FROM tickets_ticket")
        have = cur.fetchone()[0]
        n = target - have
        if n <= 0:
            log(f"  tickets already at {have:,}; nothing to load")
            return {"tickets_added": 0}

        indexes, fkeys = _catalogue(cur)
        shapes = index_shapes(cur)
        for name, _ in indexes:
            cur.execute(f'DROP INDEX "{name}"')
        for table, name, _ in fkeys:
            cur.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
        log(
            f"  dropped {len(indexes)} secondary indexes and {len(fkeys)} foreign keys "
            f"(recreated after the load); adding {n:,} tickets to {have:,}"
        )

        # A producer thread generates batches while this one COPYs the previous one.
        q: queue.Queue = queue.Queue(maxsize=2)
        failed: list[BaseException] = []
        stop = threading.Event()

        def produce() -> None:
            try:
                for batch in _generate(
                    partners, cum, raisers, n, tuple(ids), SEED + have, int(time.time())
                ):
                    while not stop.is_set():
                        try:
                            q.put(batch, timeout=0.5)
                            break
                        except queue.Full:
                            continue
                    if stop.is_set():
                        return
            except BaseException as exc:  # surfaced in the main thread
                failed.append(exc)
            finally:
                q.put(None)

        producer = threading.Thread(target=produce, daemon=True)
        producer.start()
        done = messages = events = 0
        next_report = 0.0
        try:
            while (batch := q.get()) is not None:
                tickets_txt, messages_txt, events_txt, n_m, n_e = batch
                for table, columns, text in [
                    ("tickets_ticket", TICKET_COLUMNS, tickets_txt),
                    ("tickets_ticketmessage", MESSAGE_COLUMNS, messages_txt),
                    ("tickets_ticketevent", EVENT_COLUMNS, events_txt),
                ]:
                    with cur.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                        copy.write(text)
                done += tickets_txt.count("\n")
                messages += n_m
                events += n_e
                elapsed = time.monotonic() - t0
                if done == n or elapsed >= next_report:
                    next_report = elapsed + 15
                    log(
                        f"  {done:>9,} / {n:,} tickets  {messages:,} messages  {events:,} events"
                        f"  ({done / elapsed:,.0f} tickets/s)"
                    )
        finally:
            stop.set()
            producer.join(timeout=5)
        if failed:
            raise failed[0]
        timings.update(tickets_added=n, messages_added=messages, events_added=events)
        timings["copy_s"] = round(time.monotonic() - t0, 1)

        t1 = time.monotonic()
        for _, definition in indexes:
            cur.execute(definition)
        for table, name, definition in fkeys:
            cur.execute(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}')
        # Compared by meaning: the definitions' text differs in where casts go.
        if index_shapes(cur) != shapes or _catalogue(cur)[1] != fkeys:
            raise RuntimeError("recreated indexes/foreign keys differ from the migrations'")
        for table in TABLES:
            cur.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))"
            )
        conn.commit()
        timings["indexes_s"] = round(time.monotonic() - t1, 1)
        log(f"  recreated indexes and validated foreign keys in {timings['indexes_s']}s")

    t2 = time.monotonic()
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"VACUUM (ANALYZE) {', '.join(TABLES)}")
        conn.execute("ANALYZE")
    timings["vacuum_analyze_s"] = round(time.monotonic() - t2, 1)
    timings["total_s"] = round(time.monotonic() - t0, 1)
    log(f"  VACUUM ANALYZE in {timings['vacuum_analyze_s']}s; load total {timings['total_s']}s")
    return timings
