"""The benchmark's data: a few suppliers with a few account managers each, many schools
(send window 00:00-23:59, no terms or closures), partnerships between them, a contact per
nudge, and N nudges due now. Written with PostgreSQL's COPY (contacts, nudges) and
bulk_create (the rest): 100,000 nudges take a few seconds."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, time
from typing import Any

from django.db import connection, transaction
from django.db.models import Model
from django.utils import timezone

SUPPLIERS = 5
MANAGERS_PER_SUPPLIER = 4
SCHOOLS = 500

# Everything the benchmark writes, emptied before it loads (the database is its own).
TABLES = (
    "nudges_nudgeevent",
    "nudges_nudge",
    "nudges_nudgerule_audience_contacts",
    "nudges_nudgerule",
    "nudges_nudgetemplate",
    "nudges_optout",
    "nudges_suppression",
    "accounts_partnershipcontact",
    "accounts_partnership_products",
    "accounts_partnership",
    "accounts_contact",
    "accounts_membership",
    "accounts_organisation",
    "accounts_user",
)


@dataclass
class World:
    partnerships_by_school: dict[int, list[Any]]
    templates: dict[int, Any]  # by supplier id
    contacts: list[tuple[int, int]]  # (contact id, school id), in school order


def copy_objects(model: type[Model], objects: Iterable[Model]) -> int:
    """COPY unsaved instances into the model's table (every concrete column but the id),
    with the values Django would have saved (defaults, auto_now)."""
    fields = [f for f in model._meta.concrete_fields if not f.primary_key]
    qn = connection.ops.quote_name
    columns = ", ".join(qn(f.column) for f in fields)
    sql = f"COPY {qn(model._meta.db_table)} ({columns}) FROM STDIN"
    count = 0
    with connection.cursor() as cursor, cursor.cursor.copy(sql) as copy:
        for obj in objects:
            copy.write_row([f.get_db_prep_save(f.pre_save(obj, True), connection) for f in fields])
            count += 1
    return count


def reset() -> None:
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE")


@transaction.atomic
def load_world(contacts: int) -> World:
    """The organisations, people and templates, and ``contacts`` contacts spread evenly
    over the schools (one nudge each, so no frequency limit holds any back)."""
    from accounts.models import Contact, Organisation, Partnership, User
    from nudges.models import NudgeTemplate

    reset()
    suppliers = Organisation.objects.bulk_create(
        Organisation(kind="supplier", name=f"Bench Supplier {i + 1}") for i in range(SUPPLIERS)
    )
    schools = Organisation.objects.bulk_create(
        Organisation(
            kind="school",
            name=f"Bench School {i + 1}",
            urn=f"{700000 + i:06d}",
            phase="primary",
            local_authority="Leeds",
            send_window_starts=time(0, 0),
            send_window_ends=time(23, 59),
        )
        for i in range(SCHOOLS)
    )
    managers = User.objects.bulk_create(
        User(email=f"am{s}-{m}@supplier{s}.example.org", full_name=f"Manager {s}-{m}")
        for s in range(SUPPLIERS)
        for m in range(MANAGERS_PER_SUPPLIER)
    )
    pairs = []
    for j, school in enumerate(schools):
        # Every school works with one supplier, every other school with two.
        chosen = [j % SUPPLIERS] + ([(j + 1) % SUPPLIERS] if j % 2 == 0 else [])
        for s in chosen:
            am = managers[s * MANAGERS_PER_SUPPLIER + j % MANAGERS_PER_SUPPLIER]
            pairs.append(
                Partnership(supplier=suppliers[s], school=school, account_manager=am, stage="pilot")
            )
    partnerships = Partnership.objects.bulk_create(pairs)
    by_school: dict[int, list[Partnership]] = {}
    for p in partnerships:
        by_school.setdefault(p.school_id, []).append(p)
    templates = {
        t.supplier_id: t
        for t in NudgeTemplate.objects.bulk_create(
            NudgeTemplate(
                supplier=s,
                name="Weekly check-in",
                subject="How is the pilot going, {{ first_name }}?",
                body_text=(
                    "Hello {{ first_name }},\n\nHow is {{ product_name }} going at "
                    "{{ school_name }} this week? Reply to this email with anything that "
                    "would help.\n\n{{ account_manager_signature }}"
                ),
            )
            for s in suppliers
        )
    }
    now = timezone.now()
    copy_objects(
        Contact,
        (
            Contact(
                school_id=schools[i % SCHOOLS].pk,
                first_name=f"Teacher{i}",
                last_name="Bench",
                email=f"teacher{i}@school{i % SCHOOLS}.example.org",
                tags=",teacher,",
                created_at=now,
                updated_at=now,
            )
            for i in range(contacts)
        ),
    )
    ids = list(Contact.objects.order_by("school_id", "id").values_list("id", "school_id"))
    return World(partnerships_by_school=by_school, templates=templates, contacts=ids)


def load_nudges(world: World, count: int, due: datetime) -> list[int]:
    """``count`` nudges due at ``due`` to distinct contacts. Ids run supplier by supplier
    and partnership by partnership, as the planner writes a supplier-wide rule's nudges, so
    a claimed batch holds the nudges of a few account managers (one SendGrid request
    each)."""
    from nudges.models import Nudge

    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE nudges_nudgeevent, nudges_nudge RESTART IDENTITY CASCADE")
    if count > len(world.contacts):
        raise ValueError(f"only {len(world.contacts)} contacts for {count} nudges")
    rows: list[tuple[Any, int]] = []
    per_school: dict[int, int] = {}
    for contact_id, school_id in world.contacts[:count]:
        options: Sequence[Any] = world.partnerships_by_school[school_id]
        n = per_school.get(school_id, 0)
        per_school[school_id] = n + 1
        rows.append((options[n % len(options)], contact_id))
    rows.sort(key=lambda r: (r[0].supplier_id, r[0].pk))
    now = timezone.now()
    copy_objects(
        Nudge,
        (
            Nudge(
                supplier_id=p.supplier_id,
                school_id=p.school_id,
                partnership_id=p.pk,
                contact_id=contact_id,
                template=world.templates[p.supplier_id],
                occurrence=f"manual:bench-{contact_id}",
                due_at=due,
                next_attempt_at=due,
                created_at=now,
                updated_at=now,
            )
            for p, contact_id in rows
        ),
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE nudges_nudge")
    return list(Nudge.objects.values_list("id", flat=True))
