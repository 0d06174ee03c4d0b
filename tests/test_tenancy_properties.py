"""Random worlds: ``visible_to`` agrees with the tenancy table read as plain Python."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from accounts.models import Contact, Membership, Organisation, Partnership, PartnershipContact, User
from accounts.scoping import forget_scope

ROLES = {
    "supplier": ["supplier_admin", "account_manager", "support_agent"],
    "school": ["school_lead", "teacher"],
    "trust": ["trust_lead"],
}

worlds = st.fixed_dictionaries(
    {
        "suppliers": st.integers(1, 3),
        "trusts": st.integers(0, 2),
        # each school: index of its trust or None
        "schools": st.lists(st.one_of(st.none(), st.integers(0, 1)), min_size=1, max_size=4),
        # (supplier, school) pairs
        "partnerships": st.lists(st.tuples(st.integers(0, 2), st.integers(0, 3)), max_size=6),
        # each contact: (school, user index or None, [partnership indexes linked])
        "contacts": st.lists(
            st.tuples(
                st.integers(0, 3),
                st.one_of(st.none(), st.integers(0, 4)),
                st.lists(st.integers(0, 5), max_size=2),
            ),
            max_size=6,
        ),
        # each user: list of (kind, org index, role index)
        "users": st.lists(
            st.lists(
                st.tuples(
                    st.sampled_from(["supplier", "school", "trust"]),
                    st.integers(0, 3),
                    st.integers(0, 2),
                ),
                max_size=2,
            ),
            min_size=1,
            max_size=5,
        ),
    }
)


def _build(spec: dict[str, Any]) -> dict[str, Any]:
    suppliers = [
        Organisation.objects.create(kind="supplier", name=f"S{i}") for i in range(spec["suppliers"])
    ]
    trusts = [
        Organisation.objects.create(kind="trust", name=f"T{i}") for i in range(spec["trusts"])
    ]
    schools = []
    for i, trust in enumerate(spec["schools"]):
        t = trusts[trust] if trust is not None and trust < len(trusts) else None
        schools.append(
            Organisation.objects.create(kind="school", name=f"Sc{i}", urn=f"{300000 + i}", trust=t)
        )
    partnerships = []
    for sup, sch in spec["partnerships"]:
        if sup < len(suppliers) and sch < len(schools):
            s, c = suppliers[sup], schools[sch]
            if not Partnership.objects.filter(supplier=s, school=c).exists():
                partnerships.append(Partnership.objects.create(supplier=s, school=c))
    users = [User.objects.create(email=f"u{i}@x.org") for i in range(len(spec["users"]))]
    orgs_by_kind = {"supplier": suppliers, "school": schools, "trust": trusts}
    for user, memberships in zip(users, spec["users"], strict=True):
        for kind, idx, role_idx in memberships:
            orgs = orgs_by_kind[kind]
            if idx < len(orgs):
                roles = ROLES[kind]
                Membership.objects.get_or_create(
                    user=user,
                    organisation=orgs[idx],
                    defaults={"role": roles[role_idx % len(roles)]},
                )
    contacts = []
    for i, (sch, user_idx, links) in enumerate(spec["contacts"]):
        if sch >= len(schools):
            continue
        user = users[user_idx] if user_idx is not None and user_idx < len(users) else None
        contact = Contact.objects.create(
            school=schools[sch], user=user, first_name=f"C{i}", email=f"c{i}@x.org"
        )
        contacts.append(contact)
        for link in links:
            if link < len(partnerships) and partnerships[link].school_id == contact.school_id:
                PartnershipContact.objects.get_or_create(
                    partnership=partnerships[link], contact=contact
                )
    return {"users": users, "partnerships": partnerships, "contacts": contacts}


def _oracle(user: User, built: dict[str, Any]) -> tuple[set[int], set[int]]:
    """The tenancy table of DESIGN.md, read literally."""
    ms = list(Membership.objects.filter(user=user).select_related("organisation"))
    supplier_ids = {m.organisation_id for m in ms if m.organisation.kind == "supplier"}
    lead_schools = {m.organisation_id for m in ms if m.role == "school_lead"}
    teacher_schools = {m.organisation_id for m in ms if m.role == "teacher"}
    trust_ids = {m.organisation_id for m in ms if m.role == "trust_lead"}
    links = list(PartnershipContact.objects.select_related("contact", "partnership"))

    def readable_school(p: Partnership) -> bool:
        return p.school_id in lead_schools or p.school.trust_id in trust_ids

    seen_p = set()
    for p in built["partnerships"]:
        taking_part = any(
            link.partnership_id == p.pk and link.contact.user_id == user.pk for link in links
        )
        if (
            p.supplier_id in supplier_ids
            or readable_school(p)
            or (p.school_id in teacher_schools and taking_part)
        ):
            seen_p.add(p.pk)
    seen_c = set()
    for c in built["contacts"]:
        linked_to_mine = any(
            link.contact_id == c.pk and link.partnership.supplier_id in supplier_ids
            for link in links
        )
        if (
            c.school_id in lead_schools
            or c.school.trust_id in trust_ids
            or (c.school_id in teacher_schools and c.user_id == user.pk)
            or linked_to_mine
        ):
            seen_c.add(c.pk)
    return seen_p, seen_c


@pytest.mark.django_db
@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(spec=worlds)
def test_visible_to_matches_the_tenancy_table_on_random_worlds(spec: dict[str, Any]) -> None:
    from django.db import transaction

    sid = transaction.savepoint()
    try:
        built = _build(spec)
        for user in built["users"]:
            forget_scope(user)
            expected_p, expected_c = _oracle(user, built)
            got_p = set(Partnership.objects.visible_to(user).values_list("pk", flat=True))
            got_c = set(Contact.objects.visible_to(user).values_list("pk", flat=True))
            assert got_p == expected_p, (spec, user.email)
            assert got_c == expected_c, (spec, user.email)
    finally:
        transaction.savepoint_rollback(sid)
