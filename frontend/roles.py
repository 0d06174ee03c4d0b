"""Which pages a signed-in user works in, from the scope their memberships give them.

A page for a role the user does not hold answers 403 (the page exists, their role may not
use it); an object outside their scope answers 404 (see ``get_visible``).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse

from accounts.scoping import SUPPLIER_MANAGER_ROLES, Scope, scope_for

SUPPLIER = "supplier"
TEACHER = "teacher"
SCHOOL_LEAD = "school_lead"
TRUST_LEAD = "trust_lead"
SCHOOL_STAFF = "school_staff"  # teachers and school leads (anyone who files feedback)
LEADS = "leads"  # school and trust leads (scorecards, read-only roll-ups)


def holds(scope: Scope, role: str) -> bool:
    return {
        SUPPLIER: scope.is_supplier_staff,
        TEACHER: bool(scope.teacher_school_ids),
        SCHOOL_LEAD: bool(scope.lead_school_ids),
        TRUST_LEAD: bool(scope.trust_ids),
        SCHOOL_STAFF: bool(scope.school_ids),
        LEADS: bool(scope.lead_school_ids or scope.trust_ids),
    }[role]


def role_required(
    *roles: str,
) -> Callable[[Callable[..., HttpResponse]], Callable[..., HttpResponse]]:
    """Signed in (else to the sign-in page) and holding one of ``roles`` (else 403)."""

    def decorator(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @login_required
        @wraps(view)
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            scope = scope_for(request.user)
            if not any(holds(scope, role) for role in roles):
                raise PermissionDenied("This page is for another role.")
            return view(request, *args, **kwargs)

        return wrapped

    return decorator


def get_visible(queryset: QuerySet[Any], pk: Any) -> Any:
    """One row of an already scoped queryset, or 404 (missing and out of scope alike)."""
    try:
        return queryset.get(pk=int(pk))
    except (queryset.model.DoesNotExist, ValueError, TypeError):
        raise Http404 from None


def nav_for(scope: Scope) -> list[tuple[str, str]]:
    """(url name, label) for each page the user's roles work in, in a stable order."""
    items: list[tuple[str, str]] = []
    if holds(scope, SUPPLIER):
        items += [
            ("portfolio", "Portfolio"),
            ("queue", "Tickets"),
            ("visits", "Visits"),
            ("nudges", "Nudges"),
        ]
        if any(r in SUPPLIER_MANAGER_ROLES for r in scope.supplier_roles.values()):
            items += [("supplier-renewals", "Renewals")]
    if holds(scope, SCHOOL_LEAD):
        items += [
            ("scorecard", "Scorecard"),
            ("school-contacts", "Staff contacts"),
            ("data-held", "Data held"),
        ]
    if holds(scope, TRUST_LEAD):
        items += [("trust", "Trust")]
    if holds(scope, LEADS):
        items += [
            ("school-tickets", "School tickets"),
            ("school-phases", "Trial phases"),
            ("school-term-dates", "Term dates"),
            ("school-renewals", "Renewals"),
        ]
    if holds(scope, SCHOOL_STAFF):
        items += [("feedback", "Give feedback"), ("my-tickets", "My tickets")]
    if scope.all_school_ids or "supplier_admin" in scope.supplier_roles.values():
        items += [("audit-trail", "Audit trail")]  # privacy/trail.py: who reads what
    return items


def home_for(scope: Scope) -> str | None:
    """The page each role starts on."""
    if holds(scope, SUPPLIER):
        return "portfolio"
    if holds(scope, SCHOOL_LEAD):
        return "scorecard"
    if holds(scope, TRUST_LEAD):
        return "trust"
    if holds(scope, TEACHER):
        return "feedback"
    return None
