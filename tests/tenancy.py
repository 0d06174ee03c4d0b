"""The tenancy oracle: who may see which object of the shared cast (conftest.World).

Written out by hand, independently of the ``visible_to`` functions it checks. A model
served under /api/v1/ that has no entry here makes the tenancy matrix fail, so an
endpoint added later must declare who sees its objects before it can land.
"""

from __future__ import annotations

from django.db.models import Model
from django.urls import URLPattern, URLResolver, get_resolver

from accounts.models import (
    Contact,
    ContactProposal,
    Organisation,
    Partnership,
    Product,
    SupplierContactNote,
    TrialPhase,
)
from nudges.models import Nudge, NudgeReply, NudgeRule, NudgeTemplate, OptOut
from renewals.models import AgreementTerm, SurveyInvitation, ValueReview
from tickets.models import Ticket, TicketAttachment, TicketMessage
from visits.models import FollowUpAction, TimeEntry, Visit

S1 = ("s1_admin", "s1_am", "s1_agent")
S2 = ("s2_admin", "s2_am", "s2_agent")
ALL_USERS = (*S1, *S2, "trust_lead", "a_lead", "a_teacher", "b_lead", "b_teacher", "outsider")


def _table(**rows: tuple[str, ...]) -> dict[str, set[str]]:
    table = {user: set() for user in ALL_USERS}
    for key, names in rows.items():
        users = {"s1": S1, "s2": S2}.get(key, (key,))
        for user in users:
            table[user] = set(names)
    return table


EXPECTED: dict[type[Model], dict[str, set[str]]] = {
    Organisation: _table(
        # Supplier staff see the public school/trust directory, never another supplier.
        s1=("s1", "school_a", "school_b", "trust"),
        s2=("s2", "school_a", "school_b", "trust"),
        trust_lead=("trust", "school_a", "s1", "s2"),
        a_lead=("school_a", "trust", "s1", "s2"),
        a_teacher=("school_a", "trust", "s1"),
        b_lead=("school_b", "s2"),
        b_teacher=("school_b", "s2"),
    ),
    Partnership: _table(
        s1=("p_a1",),
        s2=("p_a2", "p_b2"),
        trust_lead=("p_a1", "p_a2"),
        a_lead=("p_a1", "p_a2"),
        a_teacher=("p_a1",),
        b_lead=("p_b2",),
        b_teacher=("p_b2",),
    ),
    Contact: _table(
        s1=("c_a_teacher", "c_a_it"),
        s2=("c_a_dsl", "c_b_teacher", "c_b_it"),
        trust_lead=("c_a_teacher", "c_a_it", "c_a_dsl", "c_a_unlinked"),
        a_lead=("c_a_teacher", "c_a_it", "c_a_dsl", "c_a_unlinked"),
        a_teacher=("c_a_teacher",),
        b_lead=("c_b_teacher", "c_b_it"),
        b_teacher=("c_b_teacher",),
    ),
    # A proposal: the proposing supplier and the school's leads; not teachers, never the
    # other supplier at the same school.
    ContactProposal: _table(
        s1=("cp_a1",),
        s2=("cp_a2", "cp_b2"),
        trust_lead=("cp_a1", "cp_a2"),
        a_lead=("cp_a1", "cp_a2"),
        b_lead=("cp_b2",),
    ),
    # A supplier's own notes on contacts: its staff only, never the school.
    SupplierContactNote: _table(s1=("cn_s1_it",), s2=("cn_s2_dsl",)),
    Product: _table(
        s1=("prod1",),
        s2=("prod2",),
        trust_lead=("prod1", "prod2"),
        a_lead=("prod1", "prod2"),
        a_teacher=("prod1",),
        b_lead=("prod2",),
        b_teacher=("prod2",),
    ),
    TrialPhase: _table(
        s1=("ph_a1",),
        s2=("ph_a2", "ph_b2"),
        trust_lead=("ph_a1", "ph_a2"),
        a_lead=("ph_a1", "ph_a2"),
        a_teacher=("ph_a1",),
        b_lead=("ph_b2",),
        b_teacher=("ph_b2",),
    ),
    Ticket: _table(
        s1=("t_a1",),
        s2=("t_a2", "t_b2"),
        trust_lead=("t_a1", "t_a2"),
        a_lead=("t_a1", "t_a2"),
        a_teacher=("t_a1",),  # their own; not the lead's t_a2
        b_lead=("t_b2",),
        b_teacher=("t_b2",),
    ),
    TicketMessage: _table(
        # Internal notes: only the ticket's own supplier.
        s1=("m_a1_public", "m_a1_internal"),
        s2=("m_a2_public", "m_a2_internal", "m_b2_public"),
        trust_lead=("m_a1_public", "m_a2_public"),
        a_lead=("m_a1_public", "m_a2_public"),
        a_teacher=("m_a1_public",),
        b_lead=("m_b2_public",),
        b_teacher=("m_b2_public",),
    ),
    TicketAttachment: _table(
        # A file on an internal note is the supplier's, like the note; one given with a
        # ticket is seen by whoever sees the ticket.
        s1=("at_t_a1", "at_a1_public", "at_a1_internal"),
        s2=("at_a2_internal",),
        trust_lead=("at_t_a1", "at_a1_public"),
        a_lead=("at_t_a1", "at_a1_public"),
        a_teacher=("at_t_a1", "at_a1_public"),
    ),
    Visit: _table(
        s1=("v_a1",),
        s2=("v_a2", "v_b2"),
        trust_lead=("v_a1", "v_a2"),
        a_lead=("v_a1", "v_a2"),
        a_teacher=("v_a1",),  # visits of the partnerships they take part in
        b_lead=("v_b2",),
        b_teacher=("v_b2",),
    ),
    FollowUpAction: _table(
        s1=("fa_a1",),
        trust_lead=("fa_a1",),
        a_lead=("fa_a1",),
        a_teacher=("fa_a1",),
    ),
    TimeEntry: _table(
        # The supplier's record of its work, shown to the school's leads; not to teachers.
        s1=("te_a1",),
        s2=("te_a2", "te_b2"),
        trust_lead=("te_a1", "te_a2"),
        a_lead=("te_a1", "te_a2"),
        b_lead=("te_b2",),
    ),
    # A supplier's wording and rules: its own staff only.
    NudgeTemplate: _table(s1=("tpl_s1",), s2=("tpl_s2",)),
    NudgeRule: _table(s1=("rule_s1",), s2=("rule_s2",)),
    Nudge: _table(
        s1=("n_a1",),
        s2=("n_a2", "n_b2"),
        # School leads see every nudge to their staff, from every supplier.
        trust_lead=("n_a1", "n_a2"),
        a_lead=("n_a1", "n_a2"),
        b_lead=("n_b2",),
        b_teacher=("n_b2",),  # sent to them
    ),
    OptOut: _table(
        s1=("oo_a1",),  # binds s1, about a contact s1 sees
        s2=("oo_b",),  # a global opt-out of a contact s2 sees
        trust_lead=("oo_a1",),
        a_lead=("oo_a1",),
        b_lead=("oo_b",),
    ),
    # What a member of staff wrote back: the supplier written to, and the person.
    NudgeReply: _table(s1=("nr_a1",), s2=("nr_b2",), b_teacher=("nr_b2",)),
    # An agreement's terms (dates, notice, annual value) and its value reviews: the
    # supplier's staff and the school's leads; not teachers, never the other supplier.
    AgreementTerm: _table(
        s1=("ag_a1",),
        s2=("ag_a2", "ag_b2"),
        trust_lead=("ag_a1", "ag_a2"),
        a_lead=("ag_a1", "ag_a2"),
        b_lead=("ag_b2",),
    ),
    ValueReview: _table(
        s1=("rv_a1",),
        s2=("rv_a2", "rv_b2"),
        trust_lead=("rv_a1", "rv_a2"),
        a_lead=("rv_a1", "rv_a2"),
        b_lead=("rv_b2",),
    ),
    # Who was asked and what each answered: the school's leads only (the supplier sees the
    # answers aggregated, through the review).
    SurveyInvitation: _table(trust_lead=("si_a1",), a_lead=("si_a1",)),
}

# Routes under /api/v1/ that are not scoped viewsets, each with tests of its own.
UNSCOPED_ROUTES = {
    # Reports read only through each model's visible_to; who sees which is tested there.
    "scorecards": "reports/tests/test_scorecards.py",
    "portfolio": "reports/tests/test_portfolio.py",
    "auth-token": "accounts/tests/test_auth.py",
    "auth-logout": "accounts/tests/test_auth.py",
    "me": "accounts/tests/test_auth.py",
    # The signed-in user's own feed only; no object of another user is reachable.
    "calendar-feed": "visits/tests/test_calendar_feed.py",
    # The audit trail reads historical rows with its own per-kind scope (privacy/trail.py).
    "audit-trail-api": "privacy/tests/test_trail_read.py",
}


def api_v1_patterns() -> list[tuple[str, URLPattern]]:
    """Every URL pattern whose path starts with api/v1/, as (route string, pattern)."""
    found: list[tuple[str, URLPattern]] = []

    def walk(patterns: list[URLPattern | URLResolver], prefix: str) -> None:
        for p in patterns:
            route = prefix + str(p.pattern)
            if isinstance(p, URLResolver):
                walk(p.url_patterns, route)
            elif route.lstrip("^").startswith("api/v1/"):
                found.append((route, p))

    walk(get_resolver().url_patterns, "")
    return found
