"""A small cast of its own for the renewals tests (the shared ``world`` already gives
every partnership a term and a review): one supplier and one school with a partnership
and its first agreement term, a second supplier at the same school, and a school the
supplier does not work with."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from types import SimpleNamespace

import pytest
from rest_framework.test import APIClient

from accounts.tests import factories as f
from renewals.services import term_save

TERM_START = date(2026, 9, 1)
TERM_END = date(2027, 8, 31)


def build_cast() -> SimpleNamespace:
    c = SimpleNamespace()
    c.supplier = f.SupplierFactory(name="Cedar Learning")
    c.other_supplier = f.SupplierFactory(name="Delta Tutors")
    c.school = f.SchoolFactory(name="Elm Primary", urn="990001")
    c.other_school = f.SchoolFactory(name="Fir Academy", urn="990002")
    roles = {
        "admin": (c.supplier, "supplier_admin"),
        "am": (c.supplier, "account_manager"),
        "agent": (c.supplier, "support_agent"),
        "other_am": (c.other_supplier, "account_manager"),
        "lead": (c.school, "school_lead"),
        "teacher": (c.school, "teacher"),
        "other_lead": (c.other_school, "school_lead"),
    }
    c.users = {}
    for name, (org, role) in roles.items():
        user = f.UserFactory(email=f"renewals-{name}@example.org")
        f.MembershipFactory(user=user, organisation=org, role=role)
        c.users[name] = user
        setattr(c, name, user)
    c.partnership = f.PartnershipFactory(
        supplier=c.supplier,
        school=c.school,
        account_manager=c.am,
        onsite_hours_per_term=Decimal("12.0"),
        first_response_target_hours=6,
        resolution_target_hours=30,
    )
    teacher_contact = f.ContactFactory(school=c.school, user=c.teacher, tags=",teacher,")
    f.PartnershipContactFactory(partnership=c.partnership, contact=teacher_contact)
    c.other_partnership = f.PartnershipFactory(supplier=c.other_supplier, school=c.school)
    c.term = term_save(
        by=c.am,
        partnership=c.partnership,
        starts_on=TERM_START,
        ends_on=TERM_END,
        notice_days=90,
        annual_value=Decimal("2400.00"),
    )

    def client(name: str) -> APIClient:
        api = APIClient()
        user = c.users[name]
        user.__dict__.pop("_crm_scope", None)  # as a fresh request would
        api.force_authenticate(user)
        return api

    c.client = client
    return c


@pytest.fixture
def cast(db: None) -> SimpleNamespace:
    return build_cast()
