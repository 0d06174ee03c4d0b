"""Demo data: three suppliers, forty schools, two trusts, users of every role, and
partnerships at every stage with their history, trial phases and success criteria.

The plan is drawn from a seeded ``random.Random``, so every run plans the same rows.
Each row is matched on its natural key (email, URN, name, supplier × school) and only
the missing ones are inserted, in bulk: a second run creates nothing and leaves any
demo edits alone. Children of a partnership (history, phases, links) are written only
when the partnership itself is new, so they never drift from its stage.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from itertools import pairwise
from typing import Any

from django.contrib.auth.hashers import make_password
from django.db import transaction
from django.utils import timezone

from .models import (
    Contact,
    Membership,
    Organisation,
    Partnership,
    PartnershipContact,
    Product,
    Role,
    Stage,
    StageChange,
    SuccessCriterion,
    TrialPhase,
    User,
)
from .stages import ACTIVE

# Demo-only: every demo user gets this password. It is printed by seed_demo and must
# never be used for a real account (it is not meant to pass the password validators).
DEMO_PASSWORD = "demo-partnership-2026"
SEED = 2026

STEPS = (
    "organisations",
    "products",
    "users",
    "contacts",
    "partnerships",
    "history and links",
    "trial phases",
)

# Every address is under the reserved .example TLD (RFC 2606), so no demo nudge can
# ever reach a real inbox.
SUPPLIERS: list[dict[str, Any]] = [
    {
        "name": "Lanternfish Learning",
        "domain": "lanternfish.example",
        "products": [
            (
                "Lanternfish Maths",
                "Adaptive maths practice and homework from Year 3 to GCSE.",
                {"primary", "secondary", "special"},
            ),
            (
                "Lanternfish Times Tables",
                "Ten-minute daily times-tables fluency for Years 3 to 6, ready for the MTC.",
                {"primary", "special"},
            ),
        ],
        "staff": [
            (Role.SUPPLIER_ADMIN, "Priya", "Shah"),
            (Role.ACCOUNT_MANAGER, "Tom", "Whitaker"),
            (Role.SUPPORT_AGENT, "Grace", "Okafor"),
        ],
        # (stage, the stage it was paused or ended from)
        "partnerships": [
            (Stage.ENQUIRY, ""),
            (Stage.TECHNICAL_REVIEW, ""),
            (Stage.PILOT, ""),
            (Stage.PILOT, ""),
            (Stage.EXPANSION, ""),
            (Stage.EXPANSION, ""),
            (Stage.WHOLE_SCHOOL, ""),
            (Stage.RENEWAL, ""),
            (Stage.PAUSED, Stage.PILOT),
            (Stage.ENDED, Stage.PILOT),
        ],
    },
    {
        "name": "Quillwise Education",
        "domain": "quillwise.example",
        "products": [
            (
                "Quillwise Reading",
                "Phonics-aligned reading practice with audio support and decodable books.",
                {"primary", "special"},
            ),
            (
                "Quillwise Writing Studio",
                "Modelled writing, peer review and teacher feedback in one place.",
                {"primary", "secondary"},
            ),
            (
                "Quillwise Spelling",
                "Spelling lists that follow the National Curriculum appendix, with games.",
                {"primary"},
            ),
        ],
        "staff": [
            (Role.SUPPLIER_ADMIN, "Helen", "Marsh"),
            (Role.ACCOUNT_MANAGER, "Daniel", "Hughes"),
            (Role.SUPPORT_AGENT, "Aisha", "Begum"),
        ],
        "partnerships": [
            (Stage.ENQUIRY, ""),
            (Stage.ENQUIRY, ""),
            (Stage.TECHNICAL_REVIEW, ""),
            (Stage.PILOT, ""),
            (Stage.EXPANSION, ""),
            (Stage.WHOLE_SCHOOL, ""),
            (Stage.WHOLE_SCHOOL, ""),
            (Stage.RENEWAL, ""),
            (Stage.PAUSED, Stage.TECHNICAL_REVIEW),
            (Stage.ENDED, Stage.ENQUIRY),
        ],
    },
    {
        "name": "Northlight EdTech",
        "domain": "northlight.example",
        "products": [
            (
                "Northlight Classroom",
                "Classroom device management: screen view, app locking and web filtering "
                "reports for teachers.",
                {"primary", "secondary", "special"},
            ),
        ],
        "staff": [
            (Role.SUPPLIER_ADMIN, "Owen", "Price"),
            (Role.ACCOUNT_MANAGER, "Rebecca", "Lloyd"),
            (Role.SUPPORT_AGENT, "Kwame", "Mensah"),
        ],
        "partnerships": [
            (Stage.ENQUIRY, ""),
            (Stage.TECHNICAL_REVIEW, ""),
            (Stage.PILOT, ""),
            (Stage.EXPANSION, ""),
            (Stage.WHOLE_SCHOOL, ""),
            (Stage.RENEWAL, ""),
            (Stage.PAUSED, Stage.EXPANSION),
            (Stage.ENDED, Stage.RENEWAL),
        ],
    },
]

# GIAS-style group codes: the import_schools command matches trusts on them.
TRUSTS: list[dict[str, Any]] = [
    {
        "name": "Pennine Crest Learning Trust",
        "code": "17421",
        "domain": "penninecrest.example",
        "lead": ("Sarah", "Fenwick"),
    },
    {
        "name": "Severn Vale Academy Trust",
        "code": "16858",
        "domain": "severnvale.example",
        "lead": ("Mark", "Davies"),
    },
]

P, S, X = "primary", "secondary", "special"
# (name, phase, local authority, postcode, index into TRUSTS or None)
SCHOOLS: list[tuple[str, str, str, str, int | None]] = [
    ("Meanwood Valley Primary School", P, "Leeds", "LS6 4QR", 0),
    ("Kirkstall Bridge Primary School", P, "Leeds", "LS5 3BT", 0),
    ("Headingley Park Academy", S, "Leeds", "LS6 3HJ", 0),
    ("Thornton Moor Primary Academy", P, "Bradford", "BD13 3NL", 0),
    ("Calder Heights Academy", S, "Calderdale", "HX3 9QE", 0),
    ("Brackenhill Park School", X, "Bradford", "BD9 6DP", 0),
    ("St Peter's Church of England Primary School", P, "Gloucestershire", "GL2 4NA", 1),
    ("Frampton Meadow Primary School", P, "Gloucestershire", "GL2 7EX", 1),
    ("Severnside Academy", S, "South Gloucestershire", "BS35 1JF", 1),
    ("Cotswold Edge School", X, "Gloucestershire", "GL5 4AL", 1),
    ("Horfield Common Primary School", P, "Bristol, City of", "BS7 0PT", 1),
    ("Whitworth Park Primary School", P, "Manchester", "M14 6LT", None),
    ("Levenshulme Grange High School", S, "Manchester", "M19 2QF", None),
    ("St Anne's RC Primary School", P, "Birmingham", "B12 9RP", None),
    ("Cotteridge Park Academy", S, "Birmingham", "B30 2LX", None),
    ("Harborne Hill School", X, "Birmingham", "B17 0QT", None),
    ("Ashford Oaks Primary School", P, "Kent", "TN23 4QR", None),
    ("Swale Marshes Academy", S, "Kent", "ME10 4NL", None),
    ("Canterbury Meadows School", X, "Kent", "CT2 7AZ", None),
    ("Wymondham Abbey Primary School", P, "Norfolk", "NR18 0QF", None),
    ("Bure Valley High School", S, "Norfolk", "NR11 6NG", None),
    ("Nether Edge Primary School", P, "Sheffield", "S7 1RB", None),
    ("Hillsborough Park Academy", S, "Sheffield", "S6 4JA", None),
    ("Itchen Ferry Primary School", P, "Southampton", "SO19 9JP", None),
    ("Andover Downs School", X, "Hampshire", "SP10 3ED", None),
    ("Cheriton Lane Primary School", P, "Hampshire", "SO24 0PZ", None),
    ("Truro Vean Primary School", P, "Cornwall", "TR1 1QQ", None),
    ("Penwith Coast Academy", S, "Cornwall", "TR18 3HE", None),
    ("Sherwood Rise Primary School", P, "Nottinghamshire", "NG21 0HQ", None),
    ("Beeston Fields Academy", S, "Nottinghamshire", "NG9 3DL", None),
    ("Dartmouth Park Primary School", P, "Camden", "NW5 1TL", None),
    ("Clapton Square Primary School", P, "Hackney", "E5 8HP", None),
    ("London Fields Academy", S, "Hackney", "E8 3QW", None),
    ("Heaton Dene Primary School", P, "Newcastle upon Tyne", "NE6 5RD", None),
    ("Walker Riverside Academy", S, "Newcastle upon Tyne", "NE6 3NX", None),
    ("Belgrave Meadows Primary School", P, "Leicester", "LE4 6NR", None),
    ("Exe Valley School", X, "Devon", "EX16 6SH", None),
    ("Ripon Dales Primary School", P, "North Yorkshire", "HG4 2PT", None),
    ("Blackwater Estuary Academy", S, "Essex", "CM9 6AU", None),
    ("Everton Brow Primary School", P, "Liverpool", "L5 3PA", None),
]

# fmt: off
FIRST_NAMES = [
    "Amelia", "Oliver", "Sophie", "Harry", "Chloe", "Jack", "Emily", "George", "Jessica",
    "Mohammed", "Fatima", "Aaron", "Zara", "Liam", "Hannah", "Ravi", "Megan", "Samuel",
    "Laura", "Niamh", "Callum", "Ayesha", "Joseph", "Rachel", "Adebayo", "Katie", "Ethan",
    "Lucy", "Imran", "Siobhan", "Tariq", "Bethany", "Lewis", "Ellie", "Marcus", "Nadia",
    "Rhys", "Hollie", "Connor", "Gemma",
]
LAST_NAMES = [
    "Smith", "Jones", "Taylor", "Brown", "Williams", "Wilson", "Johnson", "Davies", "Patel",
    "Robinson", "Wright", "Thompson", "Evans", "Walker", "White", "Roberts", "Green",
    "Hall", "Wood", "Jackson", "Clarke", "Khan", "Hussain", "Ali", "Murphy", "O'Brien",
    "Kaur", "Singh", "Campbell", "Ahmed", "Nowak", "Adeyemi", "Hughes", "Edwards", "Lewis",
    "Harris", "Turner", "Cooper", "Hill", "Ward",
]
# fmt: on

# (job title, stakeholder tags, is a classroom teacher who may join a trial cohort)
STAFF_BY_PHASE: dict[str, list[tuple[str, list[str], bool]]] = {
    P: [
        ("Headteacher", ["senior_leader"], False),
        ("Deputy Headteacher and DSL", ["senior_leader", "dsl"], False),
        ("Computing Lead", ["teacher", "it_lead", "digital_leader"], False),
        ("SENCo", ["senco", "teacher"], False),
        ("School Business Manager", ["finance"], False),
        ("Chair of Governors", ["governor"], False),
        ("Year 4 Teacher", ["teacher"], True),
        ("Year 6 Teacher", ["teacher"], True),
        ("Maths Lead", ["teacher"], True),
    ],
    S: [
        ("Headteacher", ["senior_leader"], False),
        ("Deputy Headteacher (Pastoral) and DSL", ["senior_leader", "dsl"], False),
        ("Network Manager", ["it_lead"], False),
        ("SENCo", ["senco"], False),
        ("Business Manager", ["finance"], False),
        ("Chair of Governors", ["governor"], False),
        ("Head of Maths", ["teacher"], True),
        ("English Teacher", ["teacher"], True),
        ("Science Teacher", ["teacher", "digital_leader"], True),
    ],
    X: [
        ("Headteacher", ["senior_leader"], False),
        ("Deputy Headteacher and DSL", ["senior_leader", "dsl"], False),
        ("IT Technician", ["it_lead"], False),
        ("SENCo", ["senco", "senior_leader"], False),
        ("School Business Manager", ["finance"], False),
        ("Class Teacher, Key Stage 2", ["teacher"], True),
        ("Class Teacher, Key Stage 3", ["teacher"], True),
        ("Communication and Assistive Technology Lead", ["teacher", "digital_leader"], True),
    ],
}

# Days a stage typically lasts (low, high); the timeline is drawn backwards from today.
STAGE_DAYS: dict[str, tuple[int, int]] = {
    Stage.ENQUIRY: (14, 35),
    Stage.TECHNICAL_REVIEW: (14, 40),
    Stage.PILOT: (42, 70),
    Stage.EXPANSION: (60, 110),
    Stage.WHOLE_SCHOOL: (150, 280),
    Stage.RENEWAL: (30, 60),
}
PHASE_KINDS = {
    Stage.PILOT: TrialPhase.Kind.PILOT,
    Stage.EXPANSION: TrialPhase.Kind.EXPANSION,
    Stage.WHOLE_SCHOOL: TrialPhase.Kind.WHOLE_SCHOOL,
}
# What was decided about a phase, by the stage the partnership moved to next.
DECISION_BY_NEXT = {
    Stage.EXPANSION: TrialPhase.Decision.EXPAND,
    Stage.WHOLE_SCHOOL: TrialPhase.Decision.EXPAND,
    Stage.RENEWAL: TrialPhase.Decision.CONTINUE,
    Stage.ENDED: TrialPhase.Decision.STOP,
}
CRITERIA: dict[str, list[tuple[str, str]]] = {
    TrialPhase.Kind.PILOT: [
        ("Pilot teachers use {product} in at least two lessons a week", "Every pilot teacher"),
        ("Pupils sign in unaided with the school's single sign-on", "95% first time"),
        ("Pilot teachers rate the training as useful", "4 out of 5 or better"),
        ("Problems raised get a first response within the agreed target", "90% on time"),
    ],
    TrialPhase.Kind.EXPANSION: [
        ("Year groups beyond the pilot use {product} every week", "Three more year groups"),
        ("Weekly active pupils in the expansion cohort", "70% or more"),
        ("Open technical problems at the end of the phase", "Fewer than three"),
    ],
    TrialPhase.Kind.WHOLE_SCHOOL: [
        ("Pupils across the school use {product} weekly", "75% or more"),
        ("Staff who say they are confident using {product}", "80% or more"),
        ("Pupils at the expected standard in termly assessments", "Up 5 percentage points"),
    ],
}


# --- The plan (pure: no database) -----------------------------------------------------


@dataclass
class PhaseSpec:
    kind: str
    start: date
    end: date
    cohort: list[str]  # contact emails
    intent: str
    implementation: str
    impact: str
    decision: str
    decision_notes: str
    decided_at: datetime | None
    criteria: list[tuple[str, str, str, str]]  # description, target, evaluation, evidence


@dataclass
class PartnershipSpec:
    supplier: str
    urn: str
    stage: str
    stage_before_pause: str
    products: list[str]
    manager: str  # email
    admin: str  # email
    agreement: dict[str, Any]
    # (from_stage, to_stage, at, by email, override reason)
    changes: list[tuple[str, str, datetime, str, str]]
    phases: list[PhaseSpec]
    contacts: list[str]  # contact emails linked to the partnership


@dataclass
class ContactSpec:
    urn: str
    first_name: str
    last_name: str
    email: str
    job_title: str
    tags: list[str]
    is_classroom: bool
    user: str = ""  # the login's email, when this member of staff signs in


@dataclass
class UserSpec:
    email: str
    full_name: str
    role: str
    org_kind: str
    org_key: str  # supplier or trust name, or school URN


@dataclass
class Plan:
    urns: list[str]
    users: list[UserSpec]
    contacts: list[ContactSpec]
    partnerships: list[PartnershipSpec]


def _slug(name: str) -> str:
    generic = {"school", "primary", "academy", "the", "of", "church", "england", "rc", "high"}
    words = [w for w in re.sub(r"[^a-z ]", "", name.lower()).split() if w not in generic]
    return "".join(words)


def _email(first: str, last: str, domain: str) -> str:
    return f"{first.lower()}.{re.sub(r'[^a-z]', '', last.lower())}@{domain}"


def build_plan(now: datetime) -> Plan:
    """The whole demo as plain data. Names, emails and URNs (the natural keys) are the
    same on every run; dates are laid out relative to ``now`` so trials are current."""
    rng = random.Random(SEED)
    today = timezone.localdate(now)
    # URNs from 9xxxxx, a range GIAS has not issued, so importing the real register onto
    # a demo database never renames a made-up school into a real one.
    urns = [str(u) for u in rng.sample(range(900_000, 1_000_000), len(SCHOOLS))]
    users: list[UserSpec] = []
    for supplier in SUPPLIERS:
        for role, first, last in supplier["staff"]:
            email = _email(first, last, supplier["domain"])
            users.append(UserSpec(email, f"{first} {last}", role, "supplier", supplier["name"]))
    for trust in TRUSTS:
        first, last = trust["lead"]
        email = _email(first, last, trust["domain"])
        users.append(UserSpec(email, f"{first} {last}", Role.TRUST_LEAD, "trust", trust["name"]))

    contacts = _plan_contacts(rng, urns)
    staff = {urn: [c for c in contacts if c.urn == urn] for urn in urns}
    phase_of = {urn: school[1] for urn, school in zip(urns, SCHOOLS, strict=True)}
    partnerships = _plan_partnerships(rng, now, today, urns, staff, phase_of)

    # Logins at school level: a teacher in a running trial at six schools, and a lead at
    # those and at the schools working with the most suppliers (to compare side by side).
    in_trial = [
        p.urn
        for p in sorted(partnerships, key=lambda p: _rank_in_supplier(partnerships, p))
        if p.stage in (Stage.PILOT, Stage.EXPANSION, Stage.WHOLE_SCHOOL, Stage.RENEWAL)
    ]
    teacher_urns = list(dict.fromkeys(in_trial))[:6]
    counts: dict[str, int] = {}
    for p in partnerships:
        if p.stage != Stage.ENDED:
            counts[p.urn] = counts.get(p.urn, 0) + 1
    busiest = sorted(counts, key=lambda urn: (-counts[urn], urns.index(urn)))[:3]
    lead_urns = list(dict.fromkeys([*busiest, *teacher_urns]))
    for urn in lead_urns:
        head = staff[urn][0]
        head.user = head.email
        users.append(
            UserSpec(
                head.email, f"{head.first_name} {head.last_name}", Role.SCHOOL_LEAD, "school", urn
            )
        )
    for urn in teacher_urns:
        teacher = next(c for c in staff[urn] if c.is_classroom)
        teacher.user = teacher.email
        users.append(
            UserSpec(
                teacher.email,
                f"{teacher.first_name} {teacher.last_name}",
                Role.TEACHER,
                "school",
                urn,
            )
        )
    return Plan(urns=urns, users=users, contacts=contacts, partnerships=partnerships)


def _rank_in_supplier(partnerships: list[PartnershipSpec], p: PartnershipSpec) -> tuple[int, int]:
    """Round-robin across suppliers, so the teacher logins are not all one supplier's."""
    same = [q for q in partnerships if q.supplier == p.supplier]
    supplier_index = [s["name"] for s in SUPPLIERS].index(p.supplier)
    return same.index(p), supplier_index


def _plan_contacts(rng: random.Random, urns: list[str]) -> list[ContactSpec]:
    contacts: list[ContactSpec] = []
    for urn, (name, phase, *_rest) in zip(urns, SCHOOLS, strict=True):
        domain = f"{_slug(name)}.example"
        seen: set[str] = set()
        for job, tags, is_classroom in STAFF_BY_PHASE[phase]:
            first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
            email = _email(first[0], last, domain)
            n = 2
            while email in seen:
                email, n = _email(f"{first[0]}{n}", last, domain), n + 1
            seen.add(email)
            contacts.append(ContactSpec(urn, first, last, email, job, tags, is_classroom))
    return contacts


def _plan_partnerships(
    rng: random.Random,
    now: datetime,
    today: date,
    urns: list[str],
    staff: dict[str, list[ContactSpec]],
    phase_of: dict[str, str],
) -> list[PartnershipSpec]:
    # Trust schools first, so each trust lead has partnerships to roll up, then others.
    trust_urns = [urns[i] for i, s in enumerate(SCHOOLS) if s[4] is not None]
    other_urns = [urns[i] for i, s in enumerate(SCHOOLS) if s[4] is None]
    pool = trust_urns[:4] + trust_urns[6:10] + rng.sample(other_urns, 16)
    plans: list[PartnershipSpec] = []
    for supplier in SUPPLIERS:
        domain = supplier["domain"]
        admin, manager = (
            _email(first, last, domain)
            for role, first, last in supplier["staff"]
            if role in (Role.SUPPLIER_ADMIN, Role.ACCOUNT_MANAGER)
        )
        schools = rng.sample(pool, len(supplier["partnerships"]))
        for (stage, via), urn in zip(supplier["partnerships"], schools, strict=True):
            fitting = [name for name, _d, phases in supplier["products"] if phase_of[urn] in phases]
            fitting = fitting or [supplier["products"][0][0]]
            products = sorted(rng.sample(fitting, rng.randint(1, min(2, len(fitting)))))
            plans.append(
                _plan_partnership(
                    rng,
                    now,
                    today,
                    supplier["name"],
                    urn,
                    stage,
                    via,
                    products,
                    manager,
                    admin,
                    staff[urn],
                )
            )
    return plans


def _plan_partnership(
    rng: random.Random,
    now: datetime,
    today: date,
    supplier: str,
    urn: str,
    stage: str,
    via: str,
    products: list[str],
    manager: str,
    admin: str,
    staff: list[ContactSpec],
) -> PartnershipSpec:
    last = via or stage
    path = [str(s) for s in ACTIVE[: ACTIVE.index(last) + 1]]
    if via:
        path.append(stage)
    # How long each stage lasted; the one the partnership is in now is part-way through.
    days = {s: rng.randint(*STAGE_DAYS[s]) for s in path if s in STAGE_DAYS}
    elapsed = rng.randint(5, 60) if via else rng.randint(3, max(4, days[stage] - 7))
    entered: dict[str, datetime] = {}
    at = now - timedelta(days=elapsed, hours=rng.randint(0, 6))
    for s in reversed(path):
        entered[s] = at
        previous = path[path.index(s) - 1] if path.index(s) else None
        if previous is not None:
            at -= timedelta(days=days[previous], hours=rng.randint(-3, 3))

    it_lead = next(c for c in staff if "it_lead" in c.tags)
    override = (
        "Technical readiness was checked on site before visits were recorded in the CRM: "
        f"{it_lead.first_name} {it_lead.last_name} ({it_lead.job_title}) confirmed wifi "
        "coverage, devices and single sign-on."
    )
    changes: list[tuple[str, str, datetime, str, str]] = [
        ("", path[0], entered[path[0]], manager, "")
    ]
    for before, after in pairwise(path):
        is_gate = after == Stage.PILOT and before == Stage.TECHNICAL_REVIEW
        changes.append(
            (
                before,
                after,
                entered[after],
                admin if is_gate else manager,
                override if is_gate else "",
            )
        )

    classroom = [c.email for c in staff if c.is_classroom]
    teaching = [c.email for c in staff if "teacher" in c.tags]
    digital = [c.email for c in staff if "digital_leader" in c.tags]
    cohorts = {
        Stage.PILOT: classroom[:2],
        Stage.EXPANSION: list(dict.fromkeys(classroom + digital)),
        Stage.WHOLE_SCHOOL: list(dict.fromkeys(classroom + teaching)),
    }
    product = products[0]
    phases: list[PhaseSpec] = []
    for i, s in enumerate(path):
        if s not in PHASE_KINDS:
            continue
        start = timezone.localdate(entered[s])
        planned_end = start + timedelta(days=days[s])
        after = path[i + 1] if i + 1 < len(path) else ""
        decision = DECISION_BY_NEXT.get(after, "") if after else ""
        end = timezone.localdate(entered[after]) if decision else planned_end
        phases.append(
            _plan_phase(
                rng,
                PHASE_KINDS[s],
                product,
                start,
                max(end, start),
                cohorts[s],
                decision,
                entered[after] if decision else None,
                paused=after == Stage.PAUSED,
            )
        )

    if Stage.PILOT in path:
        contract_start = timezone.localdate(entered[Stage.PILOT])
    else:  # the start proposed in the enquiry
        proposed_from = today if not via else timezone.localdate(entered[path[0]])
        contract_start = proposed_from + timedelta(days=rng.randint(21, 75))
    years = 2 if Stage.WHOLE_SCHOOL in path else 1
    contract_end = contract_start + timedelta(days=365 * years)
    if stage == Stage.RENEWAL:
        contract_end = today + timedelta(days=rng.randint(20, 75))
    elif stage == Stage.ENDED and Stage.PILOT in path:
        contract_end = timezone.localdate(entered[Stage.ENDED])
    first_response = rng.choice([4, 8, 8, 16])
    agreement = {
        "onsite_hours_per_term": Decimal(rng.choice([2, 3, 4, 6])) * (2 if years > 1 else 1),
        "first_response_target_hours": first_response,
        "resolution_target_hours": first_response * rng.choice([3, 5, 5, 8]),
        "nudges_per_contact_per_week": rng.choice([1, 1, 2]),
        "nudges_per_contact_per_term": rng.choice([4, 6, 6, 8]),
        "contract_start": contract_start,
        "contract_end": max(contract_end, contract_start),
    }

    linked = [staff[0].email, it_lead.email]  # the head and IT lead are in every partnership
    for c in staff:
        if "dsl" in c.tags and rng.random() < 0.5:
            linked.append(c.email)
        if "senco" in c.tags and rng.random() < 0.4:
            linked.append(c.email)
        if "finance" in c.tags and stage in (Stage.WHOLE_SCHOOL, Stage.RENEWAL):
            linked.append(c.email)
    for phase in phases:
        linked.extend(phase.cohort)
    return PartnershipSpec(
        supplier=supplier,
        urn=urn,
        stage=stage,
        stage_before_pause=via if stage == Stage.PAUSED else "",
        products=products,
        manager=manager,
        admin=admin,
        agreement=agreement,
        changes=changes,
        phases=phases,
        contacts=list(dict.fromkeys(linked)),
    )


def _plan_phase(
    rng: random.Random,
    kind: str,
    product: str,
    start: date,
    end: date,
    cohort: list[str],
    decision: str,
    decided_at: datetime | None,
    *,
    paused: bool,
) -> PhaseSpec:
    label = TrialPhase.Kind(kind).label.lower()
    intent = {
        TrialPhase.Kind.PILOT: f"Find out whether {product} saves teachers time and engages "
        "pupils in a few classes before anyone else is asked to use it.",
        TrialPhase.Kind.EXPANSION: f"Take {product} to more year groups and check the network, "
        "devices and support hold up as use grows.",
        TrialPhase.Kind.WHOLE_SCHOOL: f"Make {product} part of normal teaching across the "
        "school, with every teacher trained and confident.",
    }[kind]
    implementation = (
        f"{len(cohort)} staff in the {label} cohort; an on-site training session at the start, "
        "a check-in call every fortnight, and feedback collected in the CRM."
    )
    pool = CRITERIA[kind]
    criteria = []
    for description, target in rng.sample(pool, min(3, len(pool))):
        evaluation, evidence = "", ""
        if decision == TrialPhase.Decision.STOP:
            evaluation = rng.choice(["not_met", "partly_met", "not_met"])
            evidence = "Usage fell away after the first weeks; see the end-of-phase review."
        elif decision:
            evaluation = rng.choice(["met", "met", "partly_met"])
            evidence = "From the usage report and the staff survey at the end of the phase."
        criteria.append((description.format(product=product), target, evaluation, evidence))
    impact, notes = "", ""
    if decision == TrialPhase.Decision.STOP:
        impact = "Teachers found it hard to fit into lessons; the school chose to stop."
        notes = "Stopped at the end of the phase by agreement with the headteacher."
    elif decision:
        impact = "Teachers report it saves planning time; pupils' weekly use is steady."
        notes = {
            TrialPhase.Decision.EXPAND: "Agreed with the senior leadership team to go wider.",
            TrialPhase.Decision.CONTINUE: "Continuing as it is; renewal to be discussed.",
        }.get(decision, "")
    elif paused:
        notes = "Paused at the school's request during a staffing change; decision pending."
    return PhaseSpec(
        kind=kind,
        start=start,
        end=end,
        cohort=cohort,
        intent=intent,
        implementation=implementation,
        impact=impact,
        decision=decision,
        decision_notes=notes,
        decided_at=decided_at,
        criteria=criteria,
    )


# --- Writing the plan -----------------------------------------------------------------


@dataclass
class Login:
    role: str
    email: str
    organisation: str


@dataclass
class SeedResult:
    created: dict[str, int] = field(default_factory=dict)
    logins: list[Login] = field(default_factory=list)

    @property
    def created_anything(self) -> bool:
        return any(self.created.values())


def _insert_missing(
    label: str,
    result: SeedResult,
    existing: dict[Any, Any],
    wanted: Iterable[tuple[Any, Callable[[], Any]]],
    model: type[Any],
) -> dict[Any, Any]:
    """Bulk-insert the wanted rows whose key is not in ``existing``; returns key -> row.

    Relies on the database returning primary keys from a bulk insert, which PostgreSQL
    and SQLite >= 3.35 (the two databases this project runs on) do.
    """
    new = {key: build() for key, build in wanted if key not in existing}
    model.objects.bulk_create(new.values())
    result.created[label] = result.created.get(label, 0) + len(new)
    return {**existing, **new}


def seed_demo(
    *, now: datetime | None = None, on_step: Callable[[str], None] | None = None
) -> SeedResult:
    """Create whatever part of the demo is missing; report what was created and the logins."""
    now = now or timezone.now()
    step = on_step or (lambda _label: None)
    plan = build_plan(now)
    result = SeedResult()
    with transaction.atomic():
        orgs = _seed_organisations(plan, result)
        step(STEPS[0])
        products = _seed_products(orgs, result)
        step(STEPS[1])
        users = _seed_users(plan, orgs, result)
        step(STEPS[2])
        contacts = _seed_contacts(plan, orgs, users, result)
        step(STEPS[3])
        new = _seed_partnerships(plan, orgs, products, users, result)
        step(STEPS[4])
        _seed_history_and_links(new, users, contacts, result)
        step(STEPS[5])
        _seed_phases(new, users, contacts, result)
        step(STEPS[6])
    result.logins = demo_logins(plan)
    return result


def demo_logins(plan: Plan | None = None) -> list[Login]:
    """One demo login per role, in the order the roles are listed."""
    plan = plan or build_plan(timezone.now())
    names = {urn: school[0] for urn, school in zip(plan.urns, SCHOOLS, strict=True)}
    logins = []
    for role in Role:
        spec = next(u for u in plan.users if u.role == role)
        org = names[spec.org_key] if spec.org_kind == "school" else spec.org_key
        logins.append(Login(role=str(role), email=spec.email, organisation=org))
    return logins


def _seed_organisations(plan: Plan, result: SeedResult) -> dict[tuple[str, str], Organisation]:
    """Keyed ("supplier"|"trust", name) and ("school", URN)."""
    Kind = Organisation.Kind
    named = Organisation.objects.filter(
        kind__in=[Kind.SUPPLIER, Kind.TRUST],
        name__in=[s["name"] for s in SUPPLIERS] + [t["name"] for t in TRUSTS],
    )
    existing = {(o.kind, o.name): o for o in named}
    orgs = _insert_missing(
        "suppliers",
        result,
        existing,
        [
            (("supplier", s["name"]), lambda s=s: Organisation(kind=Kind.SUPPLIER, name=s["name"]))
            for s in SUPPLIERS
        ],
        Organisation,
    )
    orgs = _insert_missing(
        "trusts",
        result,
        orgs,
        [
            (
                ("trust", t["name"]),
                lambda t=t: Organisation(
                    kind=Kind.TRUST, name=t["name"], gias_group_code=t["code"]
                ),
            )
            for t in TRUSTS
        ],
        Organisation,
    )
    schools = Organisation.objects.filter(kind=Kind.SCHOOL, urn__in=plan.urns)
    orgs.update({("school", o.urn): o for o in schools})

    def school(urn: str, spec: tuple[str, str, str, str, int | None]) -> Organisation:
        name, phase, la, postcode, trust_index = spec
        trust = orgs[("trust", TRUSTS[trust_index]["name"])] if trust_index is not None else None
        return Organisation(
            kind=Kind.SCHOOL,
            name=name,
            urn=urn,
            phase=phase,
            local_authority=la,
            postcode=postcode,
            trust=trust,
        )

    return _insert_missing(
        "schools",
        result,
        orgs,
        [
            (("school", urn), lambda urn=urn, spec=spec: school(urn, spec))
            for urn, spec in zip(plan.urns, SCHOOLS, strict=True)
        ],
        Organisation,
    )


def _seed_products(
    orgs: dict[tuple[str, str], Organisation], result: SeedResult
) -> dict[tuple[int, str], Product]:
    supplier_ids = [orgs[("supplier", s["name"])].pk for s in SUPPLIERS]
    existing = {
        (p.supplier_id, p.name): p for p in Product.objects.filter(supplier_id__in=supplier_ids)
    }
    wanted = []
    for s in SUPPLIERS:
        supplier = orgs[("supplier", s["name"])]
        for name, description, _phases in s["products"]:
            wanted.append(
                (
                    (supplier.pk, name),
                    lambda supplier=supplier, name=name, description=description: Product(
                        supplier=supplier, name=name, description=description
                    ),
                )
            )
    return _insert_missing("products", result, existing, wanted, Product)


def _org_for(spec: UserSpec, orgs: dict[tuple[str, str], Organisation]) -> Organisation:
    return orgs[(spec.org_kind, spec.org_key)]


def _seed_users(
    plan: Plan, orgs: dict[tuple[str, str], Organisation], result: SeedResult
) -> dict[str, User]:
    emails = [u.email for u in plan.users]
    existing = {u.email: u for u in User.objects.filter(email__in=emails)}
    password: list[str] = []

    def build(spec: UserSpec) -> User:
        # One hash shared by all demo users: hashing is deliberately slow (PBKDF2), and
        # thirty of them would take longer than the rest of the demo put together.
        if not password:
            password.append(make_password(DEMO_PASSWORD))
        return User(email=spec.email, full_name=spec.full_name, password=password[0])

    users = _insert_missing(
        "users",
        result,
        existing,
        [(u.email, lambda u=u: build(u)) for u in plan.users],
        User,
    )
    user_ids = [u.pk for u in users.values()]
    memberships = {
        (m.user_id, m.organisation_id): m for m in Membership.objects.filter(user_id__in=user_ids)
    }
    wanted = []
    for spec in plan.users:
        user, org = users[spec.email], _org_for(spec, orgs)
        wanted.append(
            (
                (user.pk, org.pk),
                lambda user=user, org=org, role=spec.role: Membership(
                    user=user, organisation=org, role=role
                ),
            )
        )
    _insert_missing("memberships", result, memberships, wanted, Membership)
    return users


def _seed_contacts(
    plan: Plan,
    orgs: dict[tuple[str, str], Organisation],
    users: dict[str, User],
    result: SeedResult,
) -> dict[tuple[int, str], Contact]:
    school_ids = [orgs[("school", urn)].pk for urn in plan.urns]
    existing = {(c.school_id, c.email): c for c in Contact.objects.filter(school_id__in=school_ids)}
    wanted = []
    for spec in plan.contacts:
        school = orgs[("school", spec.urn)]
        wanted.append(
            (
                (school.pk, spec.email),
                lambda spec=spec, school=school: Contact(
                    school=school,
                    user=users[spec.user] if spec.user else None,
                    first_name=spec.first_name,
                    last_name=spec.last_name,
                    email=spec.email,
                    job_title=spec.job_title,
                    tags=Contact.encode_tags(spec.tags),
                ),
            )
        )
    return _insert_missing("contacts", result, existing, wanted, Contact)


def _seed_partnerships(
    plan: Plan,
    orgs: dict[tuple[str, str], Organisation],
    products: dict[tuple[int, str], Product],
    users: dict[str, User],
    result: SeedResult,
) -> list[tuple[Partnership, PartnershipSpec]]:
    """Create the missing partnerships; return only the new ones (with their plan)."""
    supplier_ids = [orgs[("supplier", s["name"])].pk for s in SUPPLIERS]
    # Any partnership of the pair counts, ended or not: the demo is not re-created on top.
    existing = {
        (p.supplier_id, p.school_id): p
        for p in Partnership.objects.filter(supplier_id__in=supplier_ids).only(
            "id", "supplier_id", "school_id"
        )
    }
    specs = {}
    wanted = []
    for spec in plan.partnerships:
        supplier, school = orgs[("supplier", spec.supplier)], orgs[("school", spec.urn)]
        key = (supplier.pk, school.pk)
        specs[key] = spec
        wanted.append(
            (
                key,
                lambda spec=spec, supplier=supplier, school=school: Partnership(
                    supplier=supplier,
                    school=school,
                    account_manager=users[spec.manager],
                    stage=spec.stage,
                    stage_before_pause=spec.stage_before_pause,
                    stage_changed_at=spec.changes[-1][2],
                    **spec.agreement,
                ),
            )
        )
    everything = _insert_missing("partnerships", result, existing, wanted, Partnership)
    new = [(everything[key], specs[key]) for key in everything if key not in existing]
    through = Partnership.products.through
    through.objects.bulk_create(
        through(partnership_id=p.pk, product_id=products[(p.supplier_id, name)].pk)
        for p, spec in new
        for name in spec.products
    )
    return new


def _seed_history_and_links(
    new: list[tuple[Partnership, PartnershipSpec]],
    users: dict[str, User],
    contacts: dict[tuple[int, str], Contact],
    result: SeedResult,
) -> None:
    changes = [
        StageChange(
            partnership=p,
            from_stage=before,
            to_stage=after,
            at=at,
            by=users[by],
            is_override=bool(reason),
            reason=reason,
        )
        for p, spec in new
        for before, after, at, by, reason in spec.changes
    ]
    StageChange.objects.bulk_create(changes)
    links = [
        PartnershipContact(
            partnership=p, contact=contacts[(p.school_id, email)], added_by=users[spec.manager]
        )
        for p, spec in new
        for email in spec.contacts
    ]
    PartnershipContact.objects.bulk_create(links)
    result.created["stage changes"] = len(changes)
    result.created["contact links"] = len(links)


def _seed_phases(
    new: list[tuple[Partnership, PartnershipSpec]],
    users: dict[str, User],
    contacts: dict[tuple[int, str], Contact],
    result: SeedResult,
) -> None:
    planned = [(p, spec, phase) for p, spec in new for phase in spec.phases]
    phases = [
        TrialPhase(
            partnership=p,
            kind=phase.kind,
            start_date=phase.start,
            end_date=phase.end,
            intent=phase.intent,
            implementation=phase.implementation,
            impact=phase.impact,
            decision=phase.decision,
            decision_notes=phase.decision_notes,
            decided_at=phase.decided_at,
            decided_by=users[spec.manager] if phase.decision else None,
        )
        for p, spec, phase in planned
    ]
    TrialPhase.objects.bulk_create(phases)
    cohort = TrialPhase.cohort.through
    cohort.objects.bulk_create(
        cohort(trialphase_id=row.pk, contact_id=contacts[(p.school_id, email)].pk)
        for row, (p, _spec, phase) in zip(phases, planned, strict=True)
        for email in phase.cohort
    )
    criteria = [
        SuccessCriterion(
            phase=row, description=desc, target=target, evaluation=evaluation, evidence=evidence
        )
        for row, (_p, _spec, phase) in zip(phases, planned, strict=True)
        for desc, target, evaluation, evidence in phase.criteria
    ]
    SuccessCriterion.objects.bulk_create(criteria)
    result.created["trial phases"] = len(phases)
    result.created["success criteria"] = len(criteria)
