"""The raw-SQL floor: a bare WSGI app (no Django) that answers the bench's three ticket
requests with the API's JSON shape, as cheaply as the database allows. It is what the
same data costs with no framework at all; the app's figures are compared with it.

Served by gunicorn like the app (2 sync workers); one persistent psycopg connection per
worker (autocommit, session time zone Europe/London like the app's TIME_ZONE,
statements prepared but planned for their values). Each
request is ONE index-backed query:

- list and filtered list: the page (51 rows, to know whether there is a next page) with
  supplier, school and raiser names joined, through the (supplier|school[, status],
  created_at DESC, id DESC) indexes;
- detail: the ticket, its messages (public only for a school-side user) and its events
  aggregated as JSON in sub-selects on message_ticket_time / event_ticket_time.

What it does NOT do that the app does:

- no authentication: the token is looked up in a dict read from FLOOR_SCOPES (the app:
  knox reads the token row and the user, and the user's other tokens to expire old
  ones, and hashes the token with SHA-512);
- no scope lookup: each token's supplier and school ids come from FLOOR_SCOPES (the app
  reads the user's memberships, one query per request) and are used as plain equality
  filters (the app builds visible_to's OR of supplier, school and raiser terms);
- no count: ``count`` is the number of rows on the page and ``count_capped`` whether
  there is a next page (the app counts up to 10,001 rows of the filtered scope whenever
  there is a second page);
- no working-time calendar: the detail's ``business_seconds_elapsed`` is counted in
  calendar seconds (the app reads the school's row, terms and closure days, 3 queries,
  and walks its working days);
- no framework: no middleware (security, sessions, CSRF, messages, clickjacking, htmx),
  URL resolver, content negotiation, permission/throttle checks, django-filter form
  validation, serializer fields, ORM model instances or browsable API;
- only the parameters the bench sends (status, school, page 1 with the default page
  size, default ordering); anything else is a 404.

Apart from ``count``/``count_capped``/``next``, its answers equal the app's value for
value (checked on the bench data: same tickets, messages, events and SLA figures).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs

import psycopg

PAGE_SIZE = 50
SCOPES: dict[str, dict[str, Any]] = json.loads(os.environ.get("FLOOR_SCOPES", "{}"))
DETAIL = re.compile(r"/api/v1/tickets/(\d+)/")

SUPPLIER_MOVES = {
    "new": ["acknowledged", "in_progress", "waiting_on_school", "resolved"],
    "acknowledged": ["in_progress", "waiting_on_school", "resolved"],
    "in_progress": ["waiting_on_school", "resolved"],
    "waiting_on_school": ["in_progress", "resolved"],
    "resolved": ["closed", "in_progress"],
    "closed": ["in_progress"],
}
SCHOOL_MOVES = {
    "waiting_on_school": ["in_progress"],
    "resolved": ["closed", "in_progress"],
    "closed": ["in_progress"],
}

COLUMNS = """t.id, t.partnership_id, t.supplier_id, s.name, t.school_id, sc.name,
  t.product_id, t.raised_by_id, coalesce(nullif(u.full_name, ''), u.email), t.assignee_id,
  t.subject, t.description, t.category, t.priority, t.status, t.outcome, t.outcome_reason,
  t.rating, t.rating_comment, t.reopen_count, t.created_at, t.updated_at,
  t.first_response_due_at, t.first_response_at, t.resolution_due_at, t.resolved_at,
  t.resolution_breached, t.clock_started_at"""
JOINS = """FROM tickets_ticket t
  JOIN accounts_organisation s ON s.id = t.supplier_id
  JOIN accounts_organisation sc ON sc.id = t.school_id
  JOIN accounts_user u ON u.id = t.raised_by_id"""
KEYS = [
    "id",
    "partnership",
    "supplier",
    "supplier_name",
    "school",
    "school_name",
    "product",
    "raised_by",
    "raised_by_name",
    "assignee",
    "subject",
    "description",
    "category",
    "priority",
    "status",
    "outcome",
    "outcome_reason",
    "rating",
    "rating_comment",
    "reopen_count",
    "created_at",
    "updated_at",
]

_conn: psycopg.Connection | None = None


def _db() -> psycopg.Connection:
    global _conn
    if _conn is None or _conn.closed:
        _conn = psycopg.connect(os.environ["FLOOR_DATABASE_URL"], autocommit=True)
        _conn.execute("SET TIME ZONE 'Europe/London'")
        # psycopg prepares a statement after 5 runs, and PostgreSQL may then switch to a
        # generic plan that cannot see the ids (for the filtered list: a BitmapAnd and a
        # sort of the whole scope, which grows with the table). Plan each run for its
        # values, as the app's client-side binding always does.
        _conn.execute("SET plan_cache_mode = force_custom_plan")
    return _conn


def _dt(value: datetime | None) -> str | None:
    if value is None:
        return None
    text = value.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def _scope(scope: dict[str, Any], params: list[Any]) -> str:
    """The user's scope as equality filters on the indexed columns."""
    terms = []
    for column, ids in (
        ("t.supplier_id", scope["supplier_ids"]),
        ("t.school_id", scope["school_ids"]),
    ):
        if ids:
            terms.append(f"{column} IN ({', '.join(['%s'] * len(ids))})")
            params.extend(ids)
    return " OR ".join(terms) if terms else "false"


def _ticket(row: tuple, now: datetime) -> dict[str, Any]:
    data = dict(zip(KEYS, row[:22], strict=True))
    data["created_at"], data["updated_at"] = _dt(row[20]), _dt(row[21])
    due_first, first_at, due, resolved_at, breached, clock = row[22:28]
    running = clock is not None
    data["sla"] = {
        "first_response_due_at": _dt(due_first),
        "first_response_at": _dt(first_at),
        "first_response_breached": (first_at or now) > due_first,
        "resolution_due_at": _dt(due),
        "resolved_at": _dt(resolved_at),
        "resolution_breached": breached or (running and due is not None and now > due),
        "is_paused": data["status"] not in ("resolved", "closed") and not running,
    }
    return data


def _dumps(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


def _list(environ: dict[str, Any], scope: dict[str, Any]) -> bytes | None:
    query = parse_qs(environ.get("QUERY_STRING", ""))
    if set(query) - {"status", "school"}:
        return None
    params: list[Any] = []
    where = [f"({_scope(scope, params)})"]
    if "status" in query:
        where.append(f"t.status IN ({', '.join(['%s'] * len(query['status']))})")
        params.extend(query["status"])
    if "school" in query:
        where.append("t.school_id = %s")
        params.append(int(query["school"][0]))
    rows = (
        _db()
        .execute(
            f"SELECT {COLUMNS} {JOINS} WHERE {' AND '.join(where)} "
            f"ORDER BY t.created_at DESC, t.id DESC LIMIT {PAGE_SIZE + 1}",
            params,
        )
        .fetchall()
    )
    now = datetime.now(UTC)
    results = [_ticket(r, now) for r in rows[:PAGE_SIZE]]
    more = len(rows) > PAGE_SIZE
    qs = environ.get("QUERY_STRING", "")
    url = f"http://{environ['HTTP_HOST']}{environ['PATH_INFO']}?{qs + '&' if qs else ''}page=2"
    return _dumps(
        {
            "count": len(results),
            "count_capped": more,
            "next": url if more else None,
            "previous": None,
            "results": results,
        }
    )


def _detail(ticket_id: int, scope: dict[str, Any]) -> bytes | None:
    params: list[Any] = []
    # Internal notes only for the ticket's own supplier staff.
    internal = "false"
    if scope["supplier_ids"]:
        internal = f"t.supplier_id IN ({', '.join(['%s'] * len(scope['supplier_ids']))})"
        params.extend(scope["supplier_ids"])
    where = _scope(scope, params)
    params.append(ticket_id)
    row = (
        _db()
        .execute(
            f"""SELECT {COLUMNS}, t.rated_at, t.sla_used_seconds,
          (SELECT coalesce(json_agg(json_build_object(
                'id', m.id, 'author', m.author_id,
                'author_name', coalesce(nullif(a.full_name, ''), a.email),
                'body', m.body, 'is_internal', m.is_internal, 'created_at', m.created_at)
              ORDER BY m.created_at, m.id), '[]')::text
           FROM tickets_ticketmessage m JOIN accounts_user a ON a.id = m.author_id
           WHERE m.ticket_id = t.id AND (NOT m.is_internal OR {internal})),
          (SELECT coalesce(json_agg(json_build_object(
                'kind', e.kind, 'from_value', e.from_value, 'to_value', e.to_value,
                'by', coalesce(nullif(b.full_name, ''), b.email), 'at', e.at)
              ORDER BY e.at, e.id), '[]')::text
           FROM tickets_ticketevent e LEFT JOIN accounts_user b ON b.id = e.by_id
           WHERE e.ticket_id = t.id)
        {JOINS} WHERE ({where}) AND t.id = %s""",
            params,
        )
        .fetchone()
    )
    if row is None:
        return None
    now = datetime.now(UTC)
    data = _ticket(row, now)
    clock = row[27]
    data["sla"]["business_seconds_elapsed"] = row[29] + (
        int((now - clock).total_seconds()) if clock is not None else 0
    )
    data["rated_at"] = _dt(row[28])
    supplier_side = row[2] in scope["supplier_ids"]
    moves = SUPPLIER_MOVES if supplier_side else SCHOOL_MOVES
    data["allowed_statuses"] = moves.get(data["status"], [])
    head = _dumps(data)[:-1]
    # PostgreSQL writes UTC times as +00:00; DRF (like _dt) as Z.
    messages, history = (x.replace('+00:00"', 'Z"').encode() for x in row[30:32])
    return b"".join([head, b',"messages":', messages, b',"history":', history, b"}"])


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    path = environ.get("PATH_INFO", "")
    status, body = "404 Not Found", b'{"detail":"Not found."}'
    if path == "/healthz":
        status, body = "200 OK", b'{"status":"ok"}'
    else:
        auth = environ.get("HTTP_AUTHORIZATION", "")
        scope = SCOPES.get(auth[6:]) if auth.startswith("Token ") else None
        if scope is None:
            status, body = "401 Unauthorized", b'{"detail":"Invalid token."}'
        else:
            match = DETAIL.fullmatch(path)
            out = (
                _list(environ, scope)
                if path == "/api/v1/tickets/"
                else _detail(int(match.group(1)), scope)
                if match
                else None
            )
            if out is not None:
                status, body = "200 OK", out
    start_response(
        status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
    )
    return [body]
