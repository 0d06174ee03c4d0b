"""Who may see what: the primitives every model's ``visible_to(user)`` is built from.

A user's scope is read once per request from their memberships (one query, plus one
for the schools of the trusts they lead) and cached on the user object. Each model's
queryset has exactly one ``visible_to(user)``; views, pages, exports and reports reach
rows only through it. See the tenancy table in docs/architecture.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

SUPPLIER_ROLES = frozenset({"supplier_admin", "account_manager", "support_agent"})
SUPPLIER_MANAGER_ROLES = frozenset({"supplier_admin", "account_manager"})


@dataclass(frozen=True)
class Scope:
    user_id: int | None
    # organisation id -> role
    supplier_roles: dict[int, str] = field(default_factory=dict)
    school_roles: dict[int, str] = field(default_factory=dict)
    trust_ids: frozenset[int] = frozenset()
    # schools of the trusts this user leads
    trust_school_ids: frozenset[int] = frozenset()
    # the trusts of the schools this user belongs to
    own_school_trust_ids: frozenset[int] = frozenset()

    @property
    def supplier_ids(self) -> frozenset[int]:
        return frozenset(self.supplier_roles)

    @property
    def lead_school_ids(self) -> frozenset[int]:
        return frozenset(s for s, r in self.school_roles.items() if r == "school_lead")

    @property
    def teacher_school_ids(self) -> frozenset[int]:
        return frozenset(s for s, r in self.school_roles.items() if r == "teacher")

    @property
    def school_ids(self) -> frozenset[int]:
        return frozenset(self.school_roles)

    @property
    def all_school_ids(self) -> frozenset[int]:
        """Schools whose records the user may read in full (school lead or trust lead)."""
        return self.lead_school_ids | self.trust_school_ids

    @property
    def is_supplier_staff(self) -> bool:
        return bool(self.supplier_roles)

    @property
    def is_school_side(self) -> bool:
        return bool(self.school_roles or self.trust_ids)

    def supplier_role(self, supplier_id: int) -> str | None:
        return self.supplier_roles.get(supplier_id)

    def manages_supplier(self, supplier_id: int) -> bool:
        return self.supplier_roles.get(supplier_id) in SUPPLIER_MANAGER_ROLES

    def is_supplier_admin(self, supplier_id: int) -> bool:
        return self.supplier_roles.get(supplier_id) == "supplier_admin"

    def leads_school(self, school_id: int) -> bool:
        return self.school_roles.get(school_id) == "school_lead"


EMPTY_SCOPE = Scope(user_id=None)


def scope_for(user: Any) -> Scope:
    """The user's scope, computed once per user object (i.e. once per request)."""
    if user is None or not getattr(user, "is_authenticated", False) or not user.is_active:
        return EMPTY_SCOPE
    cached: Scope | None = getattr(user, "_crm_scope", None)
    if cached is not None:
        return cached

    from .models import Membership, Organisation

    supplier_roles: dict[int, str] = {}
    school_roles: dict[int, str] = {}
    trust_ids: set[int] = set()
    own_school_trust_ids: set[int] = set()
    rows = Membership.objects.filter(user_id=user.pk).values_list(
        "organisation_id", "organisation__kind", "role", "organisation__trust_id"
    )
    for org_id, kind, role, trust_id in rows:
        if kind == "supplier":
            supplier_roles[org_id] = role
        elif kind == "school":
            school_roles[org_id] = role
            if trust_id:
                own_school_trust_ids.add(trust_id)
        elif kind == "trust":
            trust_ids.add(org_id)
    trust_school_ids: frozenset[int] = frozenset()
    if trust_ids:
        trust_school_ids = frozenset(
            Organisation.objects.filter(kind="school", trust_id__in=trust_ids).values_list(
                "id", flat=True
            )
        )
    scope = Scope(
        user_id=user.pk,
        supplier_roles=supplier_roles,
        school_roles=school_roles,
        trust_ids=frozenset(trust_ids),
        trust_school_ids=trust_school_ids,
        own_school_trust_ids=frozenset(own_school_trust_ids),
    )
    user._crm_scope = scope
    return scope


def forget_scope(user: Any) -> None:
    """Call after changing a user's memberships within the same request."""
    if hasattr(user, "_crm_scope"):
        del user._crm_scope
