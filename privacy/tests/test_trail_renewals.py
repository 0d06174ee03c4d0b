"""Agreement terms and value reviews are on the audit trail, for their own school and
supplier only."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from renewals.services import term_save

pytestmark = pytest.mark.django_db


def _keys(world: Any, who: str, **params: Any) -> set[tuple[str, int]]:
    world.users[who].__dict__.pop("_crm_scope", None)
    response = world.client(who).get("/api/v1/audit-trail/", {"page_size": 200, **params})
    assert response.status_code == 200, response.content
    return {(e["kind"], e["object_id"]) for e in response.json()["results"]}


def test_terms_and_reviews_are_on_the_trail_of_their_own_sides_only(world: Any) -> None:
    review = world.renewals["rv_a1"]
    term = term_save(
        by=world.users["s1_am"],
        partnership=world.p_a1,
        starts_on=date(2026, 9, 1),
        ends_on=date(2027, 8, 31),
        notice_days=60,
    )
    assert term.pk == review.term_id

    expected = {("agreement_term", term.pk), ("value_review", review.pk)}

    assert expected <= _keys(world, "a_lead")
    assert expected <= _keys(world, "s1_admin")
    assert expected <= _keys(world, "a_lead", partnership=world.p_a1.pk)
    assert not expected & _keys(world, "b_lead")
    assert not expected & _keys(world, "s2_admin")
