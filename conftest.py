"""The cast every test shares: two unrelated suppliers, two schools (one in a trust),
users of every role, and what links them. See World for who is who."""

from __future__ import annotations

import os
import shutil
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

import pytest
from rest_framework.test import APIClient

from accounts.models import Contact, Organisation, Partnership, Product, TrialPhase, User
from accounts.tests import factories as f


def _reachable(url: str, default_port: int) -> bool:
    parsed = urlparse(url)
    try:
        with socket.create_connection(
            (parsed.hostname or "127.0.0.1", parsed.port or default_port), 2
        ):
            return True
    except OSError:
        return False


def pytest_configure(config: pytest.Config) -> None:
    """Under CI=true the suite runs on PostgreSQL and Redis or not at all."""
    if os.environ.get("CI", "").lower() != "true":
        return
    db, redis = os.environ.get("DATABASE_URL", ""), os.environ.get("REDIS_URL", "")
    problems = []
    if not db.startswith(("postgres://", "postgresql://")) or not _reachable(db, 5432):
        problems.append(f"PostgreSQL is not reachable (DATABASE_URL={db or 'unset'})")
    if not redis.startswith("redis://") or not _reachable(redis, 6379):
        problems.append(f"Redis is not reachable (REDIS_URL={redis or 'unset'})")
    if problems:
        pytest.exit("CI=true: " + "; ".join(problems), returncode=3)


@pytest.fixture(autouse=True)
def _eager_celery() -> None:
    """Tasks run in-process unless a test starts a real worker (those fixtures switch
    this off for their own duration): a test never inherits another's broker state."""
    import kombu.pools

    from partnership_crm.celery import app

    app.conf.task_always_eager = True
    # Even eager tasks acquire a producer from the app's pools; a worker test may have
    # closed them. Fresh ones are built on first use.
    kombu.pools.reset()
    app._pool = None
    app.amqp._producer_pool = None


@pytest.fixture(autouse=True, scope="session")
def _attachment_folder() -> Iterator[None]:
    """This test process's attachment storage (settings_test: a folder of its own) is
    removed when the session ends."""
    yield
    from django.conf import settings

    location = settings.STORAGES["attachments"].get("OPTIONS", {}).get("location", "")
    if "crm-test-attachments-" in location:
        shutil.rmtree(location, ignore_errors=True)


@pytest.fixture(autouse=True)
def _clear_cache() -> None:
    """Forget throttles and cached values between tests. On Redis, delete only this test
    process's keys: Django's RedisCache.clear() flushes the whole database, which other
    xdist workers (and a broker) share."""
    from django.conf import settings
    from django.core.cache import cache

    if "redis" not in settings.CACHES["default"]["BACKEND"].lower():
        cache.clear()
        return
    client = cache._cache.get_client(write=True)  # type: ignore[attr-defined]
    keys = list(client.scan_iter(match=f"{settings.CACHE_KEY_PREFIX}:*", count=1000))
    if keys:
        client.delete(*keys)


@dataclass
class World:
    """
    s1 (supplier, "Acme Learning"): s1_admin, s1_am, s1_agent
    s2 (supplier, "Brightboard"):   s2_admin, s2_am, s2_agent
    trust ("Oak Trust"):            trust_lead; school A belongs to it
    school A: a_lead, a_teacher     school B (no trust): b_lead, b_teacher
    partnerships: p_a1 = s1 × A, p_a2 = s2 × A, p_b2 = s2 × B
    contacts: A: c_a_teacher (a_teacher's own, pilot cohort of p_a1), c_a_it (linked to
    p_a1), c_a_dsl (cohort of p_a2), c_a_unlinked; B: c_b_teacher (cohort of p_b2), c_b_it
    tickets: t_a1 (a_teacher on p_a1: public reply m_a1_public, internal note
    m_a1_internal), t_a2 (a_lead on p_a2: m_a2_public, m_a2_internal), t_b2 (b_teacher on
    p_b2: m_b2_public)
    attachments: at_t_a1 (a PNG a_teacher attached to t_a1 itself), at_a1_public (a PDF on
    m_a1_public), at_a1_internal (on s1's internal note), at_a2_internal (on s2's note)
    visits (planned, next week): v_a1 technical survey of p_a1 (s1_am, with contact c_a_it;
    follow-up action fa_a1), v_a2 training on p_a2 (s2_agent), v_b2 support on p_b2 (s2_am)
    time entries: te_a1 (p_a1, s1_am), te_a2 (p_a2, s2_agent), te_b2 (p_b2, s2_am)
    nudging: templates tpl_s1, tpl_s2; rules rule_s1 (p_a1, IT leads), rule_s2 (p_b2);
    nudges n_a1 (s1 -> c_a_it), n_a2 (s2 -> c_a_dsl), n_b2 (s2 -> c_b_teacher), answered by
    nr_a1 (c_a_it) and nr_b2 (c_b_teacher, b_teacher's own contact); opt-outs
    oo_a1 (a_lead stopped s1 nudging c_a_it), oo_b (c_b_it opted out of everyone)
    contact proposals: cp_a1 (s1_am proposes, on p_a1, the address of c_a_dsl, which
    school A holds for s2: pending), cp_a2 (s2 on p_a2, a new address: declined by a_lead
    with a reason), cp_b2 (s2 on p_b2: pending)
    suppliers' notes: cn_s1_it (s1 on c_a_it), cn_s2_dsl (s2 on c_a_dsl)
    renewals: agreement terms ag_a1, ag_a2, ag_b2 (one current term per partnership, made
    directly: the partnerships' contract dates stay unset), their open value reviews rv_a1,
    rv_a2, rv_b2, and si_a1 (c_a_teacher asked about rv_a1, not yet answered)
    outsider: signed in, member of nothing
    """

    users: dict[str, User] = field(default_factory=dict)
    orgs: dict[str, Organisation] = field(default_factory=dict)
    partnerships: dict[str, Partnership] = field(default_factory=dict)
    products: dict[str, Product] = field(default_factory=dict)
    contacts: dict[str, Contact] = field(default_factory=dict)
    phases: dict[str, TrialPhase] = field(default_factory=dict)
    tickets: dict[str, Any] = field(default_factory=dict)
    messages: dict[str, Any] = field(default_factory=dict)
    attachments: dict[str, Any] = field(default_factory=dict)
    visits: dict[str, Any] = field(default_factory=dict)
    actions: dict[str, Any] = field(default_factory=dict)
    time_entries: dict[str, Any] = field(default_factory=dict)
    nudging: dict[str, Any] = field(default_factory=dict)
    proposals: dict[str, Any] = field(default_factory=dict)
    notes: dict[str, Any] = field(default_factory=dict)
    renewals: dict[str, Any] = field(default_factory=dict)

    BUCKETS = (
        "users",
        "orgs",
        "partnerships",
        "products",
        "contacts",
        "phases",
        "tickets",
        "messages",
        "attachments",
        "visits",
        "actions",
        "time_entries",
        "nudging",
        "proposals",
        "notes",
        "renewals",
    )

    def __getattr__(self, name: str) -> Any:
        for bucket in self.BUCKETS:
            values = self.__dict__.get(bucket, {})
            if name in values:
                return values[name]
        raise AttributeError(name)

    def client(self, user_name: str | None) -> APIClient:
        client = APIClient()
        if user_name is not None:
            client.force_authenticate(self.users[user_name])
        return client


def build_world() -> World:
    w = World()
    s1 = f.SupplierFactory(name="Acme Learning")
    s2 = f.SupplierFactory(name="Brightboard")
    trust = f.TrustFactory(name="Oak Trust")
    a = f.SchoolFactory(name="Ashfield Primary", urn="100001", trust=trust)
    b = f.SchoolFactory(name="Beacon Academy", urn="100002", phase="secondary")
    w.orgs.update(s1=s1, s2=s2, trust=trust, school_a=a, school_b=b)

    roles = {
        "s1_admin": (s1, "supplier_admin"),
        "s1_am": (s1, "account_manager"),
        "s1_agent": (s1, "support_agent"),
        "s2_admin": (s2, "supplier_admin"),
        "s2_am": (s2, "account_manager"),
        "s2_agent": (s2, "support_agent"),
        "trust_lead": (trust, "trust_lead"),
        "a_lead": (a, "school_lead"),
        "a_teacher": (a, "teacher"),
        "b_lead": (b, "school_lead"),
        "b_teacher": (b, "teacher"),
    }
    for name, (org, role) in roles.items():
        user = f.UserFactory(email=f"{name}@example.org", full_name=name.replace("_", " ").title())
        f.MembershipFactory(user=user, organisation=org, role=role)
        w.users[name] = user
    w.users["outsider"] = f.UserFactory(email="outsider@example.org")

    w.products["prod1"] = f.ProductFactory(supplier=s1, name="Acme Maths")
    w.products["prod2"] = f.ProductFactory(supplier=s2, name="Brightboard Reading")
    p_a1 = f.PartnershipFactory(supplier=s1, school=a, account_manager=w.users["s1_am"])
    p_a2 = f.PartnershipFactory(supplier=s2, school=a, account_manager=w.users["s2_am"])
    p_b2 = f.PartnershipFactory(supplier=s2, school=b, account_manager=w.users["s2_am"])
    p_a1.products.set([w.products["prod1"]])
    p_a2.products.set([w.products["prod2"]])
    p_b2.products.set([w.products["prod2"]])
    w.partnerships.update(p_a1=p_a1, p_a2=p_a2, p_b2=p_b2)

    c = w.contacts
    c["c_a_teacher"] = f.ContactFactory(
        school=a, user=w.users["a_teacher"], first_name="Ann", tags=",teacher,"
    )
    c["c_a_it"] = f.ContactFactory(school=a, first_name="Ivan", tags=",it_lead,")
    c["c_a_dsl"] = f.ContactFactory(school=a, first_name="Dina", tags=",dsl,senior_leader,")
    c["c_a_unlinked"] = f.ContactFactory(school=a, first_name="Una")
    c["c_b_teacher"] = f.ContactFactory(
        school=b, user=w.users["b_teacher"], first_name="Ben", tags=",teacher,"
    )
    c["c_b_it"] = f.ContactFactory(school=b, first_name="Bob", tags=",it_lead,")
    for p, contact in [
        (p_a1, "c_a_teacher"),
        (p_a1, "c_a_it"),
        (p_a2, "c_a_dsl"),
        (p_b2, "c_b_teacher"),
        (p_b2, "c_b_it"),
    ]:
        f.PartnershipContactFactory(partnership=p, contact=c[contact])

    for name, p, cohort in [
        ("ph_a1", p_a1, "c_a_teacher"),
        ("ph_a2", p_a2, "c_a_dsl"),
        ("ph_b2", p_b2, "c_b_teacher"),
    ]:
        phase = f.TrialPhaseFactory(partnership=p)
        phase.cohort.set([c[cohort]])
        w.phases[name] = phase

    from tickets.services import ticket_create, ticket_post_message

    for name, raiser, p in [
        ("t_a1", "a_teacher", p_a1),
        ("t_a2", "a_lead", p_a2),
        ("t_b2", "b_teacher", p_b2),
    ]:
        w.tickets[name], _ = ticket_create(
            by=w.users[raiser], partnership=p, subject=f"Ticket {name}", description="Details"
        )
    for name, ticket, author, internal in [
        ("m_a1_public", "t_a1", "s1_am", False),
        ("m_a1_internal", "t_a1", "s1_agent", True),
        ("m_a2_public", "t_a2", "s2_am", False),
        ("m_a2_internal", "t_a2", "s2_am", True),
        ("m_b2_public", "t_b2", "s2_agent", False),
    ]:
        w.messages[name] = ticket_post_message(
            ticket=w.tickets[ticket],
            by=w.users[author],
            body=f"Message {name}",
            is_internal=internal,
        )

    from tickets.services import ticket_attach
    from tickets.tests.files import pdf_bytes, png_bytes

    for name, ticket, author, message in [
        ("at_t_a1", "t_a1", "a_teacher", None),
        ("at_a1_public", "t_a1", "s1_am", "m_a1_public"),
        ("at_a1_internal", "t_a1", "s1_agent", "m_a1_internal"),
        ("at_a2_internal", "t_a2", "s2_am", "m_a2_internal"),
    ]:
        upload = (f"{name}.png", png_bytes()) if message is None else (f"{name}.pdf", pdf_bytes())
        [w.attachments[name]] = ticket_attach(
            ticket=w.tickets[ticket],
            by=w.users[author],
            files=[upload],
            message=w.messages.get(message),
        )

    from datetime import timedelta

    from django.utils import timezone

    from visits.services import assessment_save, time_entry_create, visit_create

    base = (timezone.now() + timedelta(days=7)).replace(hour=10, minute=0, second=0, microsecond=0)
    for i, (name, p, kind, who, contacts) in enumerate(
        [
            ("v_a1", p_a1, "technical_survey", "s1_am", [c["c_a_it"]]),
            ("v_a2", p_a2, "training", "s2_agent", []),
            ("v_b2", p_b2, "onsite_support", "s2_am", []),
        ]
    ):
        w.visits[name] = visit_create(
            by=w.users[who],
            partnership=p,
            kind=kind,
            starts_at=base + timedelta(days=i),
            ends_at=base + timedelta(days=i, hours=2),
            attendees=[w.users[who]],
            contacts=contacts,
        )
    assessment = assessment_save(
        visit=w.visits["v_a1"],
        by=w.users["s1_am"],
        actions=[
            {"description": "Whitelist the app's domains", "owner": "school", "due_on": base.date()}
        ],
    )
    w.actions["fa_a1"] = assessment.actions.get()
    for name, p, who in [
        ("te_a1", p_a1, "s1_am"),
        ("te_a2", p_a2, "s2_agent"),
        ("te_b2", p_b2, "s2_am"),
    ]:
        w.time_entries[name] = time_entry_create(
            by=w.users[who],
            partnership=p,
            date=timezone.localdate(),
            minutes=45,
            mode="remote",
            activity="troubleshooting",
        )

    from nudges.models import Nudge, NudgeReply, NudgeRule, NudgeTemplate, OptOut

    g = w.nudging
    for name, supplier in [("tpl_s1", s1), ("tpl_s2", s2)]:
        g[name] = NudgeTemplate.objects.create(
            supplier=supplier,
            name="Check-in",
            subject="Hello {{ first_name }}",
            body_text="How is {{ product_name }} going at {{ school_name }}?",
        )
    g["rule_s1"] = NudgeRule.objects.create(
        supplier=s1,
        partnership=p_a1,
        template=g["tpl_s1"],
        name="IT check-in",
        trigger="cadence",
        every_n_school_weeks=3,
        audience_tags=",it_lead,",
    )
    g["rule_s2"] = NudgeRule.objects.create(
        supplier=s2,
        partnership=p_b2,
        template=g["tpl_s2"],
        name="Pilot ends",
        trigger="phase_ends",
        days=7,
        audience_cohort=True,
    )
    for name, p, contact, tpl in [
        ("n_a1", p_a1, "c_a_it", "tpl_s1"),
        ("n_a2", p_a2, "c_a_dsl", "tpl_s2"),
        ("n_b2", p_b2, "c_b_teacher", "tpl_s2"),
    ]:
        g[name] = Nudge.objects.create(
            supplier_id=p.supplier_id,
            school_id=p.school_id,
            partnership=p,
            contact=c[contact],
            template=g[tpl],
            occurrence=f"manual:{name}",
            due_at=base,
            next_attempt_at=base,
        )
    g["oo_a1"] = OptOut.objects.create(
        contact=c["c_a_it"], supplier=s1, source="school_lead", created_by=w.users["a_lead"]
    )
    g["oo_b"] = OptOut.objects.create(contact=c["c_b_it"], supplier=None, source="link")
    for name, nudge, p, contact in [
        ("nr_a1", "n_a1", p_a1, "c_a_it"),
        ("nr_b2", "n_b2", p_b2, "c_b_teacher"),
    ]:
        g[name] = NudgeReply.objects.create(
            nudge=g[nudge],
            supplier_id=p.supplier_id,
            partnership=p,
            contact=c[contact],
            subject="Re: Hello",
            body=f"Reply {name}",
        )

    from accounts.services import (
        contact_note_create,
        contact_proposal_create,
        contact_proposal_decline,
    )

    for name, who, p, first, email in [
        ("cp_a1", "s1_am", p_a1, "Dee", c["c_a_dsl"].email),
        ("cp_a2", "s2_am", p_a2, "Nora", "nora.new@ashfield.example"),
        ("cp_b2", "s2_admin", p_b2, "Pat", "pat.new@beacon.example"),
    ]:
        w.proposals[name] = contact_proposal_create(
            by=w.users[who], partnership=p, first_name=first, email=email, tags=["dsl"]
        )
    w.proposals["cp_a2"] = contact_proposal_decline(
        proposal=w.proposals["cp_a2"], by=w.users["a_lead"], reason="Nora has left the school."
    )
    for name, who, supplier, contact in [
        ("cn_s1_it", "s1_agent", s1, "c_a_it"),
        ("cn_s2_dsl", "s2_am", s2, "c_a_dsl"),
    ]:
        w.notes[name] = contact_note_create(
            by=w.users[who], supplier=supplier, contact=c[contact], body=f"Note {name}"
        )

    import uuid

    from renewals.models import AgreementTerm, SurveyInvitation, ValueReview

    today = timezone.localdate()
    for i, (suffix, p) in enumerate([("a1", p_a1), ("a2", p_a2), ("b2", p_b2)]):
        starts_on = today - timedelta(days=200 + i)
        term = AgreementTerm.objects.create(
            partnership=p,
            supplier_id=p.supplier_id,
            school_id=p.school_id,
            starts_on=starts_on,
            ends_on=starts_on + timedelta(days=364),
            notice_days=60,
            annual_value=1200 + 100 * i,
        )
        w.renewals[f"ag_{suffix}"] = term
        w.renewals[f"rv_{suffix}"] = ValueReview.objects.create(
            term=term,
            partnership=p,
            supplier_id=p.supplier_id,
            school_id=p.school_id,
            opened_how="school" if suffix == "a1" else "automatic",
            opened_by=w.users["a_lead"] if suffix == "a1" else None,
        )
    w.renewals["si_a1"] = SurveyInvitation.objects.create(
        review=w.renewals["rv_a1"], school=a, contact=c["c_a_teacher"], nonce=uuid.uuid4()
    )
    return w


@pytest.fixture
def world(db: Any) -> World:
    return build_world()
