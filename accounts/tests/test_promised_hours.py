"""The on-site hours promised per term are what the school's "behind" is measured
against: lowering them needs a reason, recorded and shown to the school's leads."""

from __future__ import annotations

import threading
from decimal import Decimal

import pytest
from django.db import connection, connections
from django.test import Client

from accounts.models import Partnership
from accounts.services import partnership_update
from conftest import build_world
from visits.models import OnsiteCorrection


def _set_promise(world, hours: str) -> None:
    Partnership.objects.filter(pk=world.p_a1.pk).update(onsite_hours_per_term=Decimal(hours))


def _patch(world, user="s1_am", **data):
    return world.client(user).patch(f"/api/v1/partnerships/{world.p_a1.pk}/", data, format="json")


def test_lowering_the_promise_without_a_reason_is_refused_and_nothing_changes(world):
    _set_promise(world, "6")
    response = _patch(world, onsite_hours_per_term="2", contract_start="2026-09-01")
    assert response.status_code == 400
    assert "reason" in response.json() and "school" in response.json()["reason"][0]
    stored = Partnership.objects.get(pk=world.p_a1.pk)
    assert stored.onsite_hours_per_term == Decimal("6")
    assert stored.contract_start is None  # the whole update was refused
    assert not OnsiteCorrection.objects.exists()
    assert _patch(world, onsite_hours_per_term="2", reason="   ").status_code == 400


def test_lowering_with_a_reason_is_recorded_and_the_school_sees_it(world):
    _set_promise(world, "6")
    response = _patch(world, onsite_hours_per_term="2.5", reason="Exams: fewer visits this term")
    assert response.status_code == 200, response.json()
    assert response.json()["onsite_hours_per_term"] == "2.5"
    assert "reason" not in response.json()
    [record] = OnsiteCorrection.objects.all()
    assert (record.change, record.old_minutes, record.new_minutes, record.by) == (
        "promise_lowered",
        360,
        150,
        world.s1_am,
    )
    client = Client()
    client.force_login(world.a_lead)
    html = client.get(f"/school/scorecard/?school={world.school_a.pk}").content.decode()
    assert "6.0 h on site promised per term" in html
    assert "Exams: fewer visits this term" in html
    # Another supplier at the same school sees nothing of it.
    assert not OnsiteCorrection.objects.visible_to(world.s2_am).exists()


def test_raising_the_promise_or_leaving_it_needs_no_reason_and_records_nothing(world):
    _set_promise(world, "6")
    assert _patch(world, onsite_hours_per_term="8").status_code == 200
    assert _patch(world, onsite_hours_per_term="8.0", contract_start="2026-09-01").status_code == (
        200
    )
    assert _patch(world, first_response_target_hours=4).status_code == 200
    assert not OnsiteCorrection.objects.exists()
    assert Partnership.objects.get(pk=world.p_a1.pk).onsite_hours_per_term == Decimal("8")


def test_a_support_agent_cannot_change_the_promise(world):
    _set_promise(world, "6")
    response = _patch(world, "s1_agent", onsite_hours_per_term="1", reason="Because")
    assert response.status_code == 403
    assert Partnership.objects.get(pk=world.p_a1.pk).onsite_hours_per_term == Decimal("6")


def test_creating_a_partnership_ignores_a_stray_reason(world):
    response = world.client("s1_am").post(
        "/api/v1/partnerships/",
        {"school": world.school_b.pk, "onsite_hours_per_term": "4", "reason": "x"},
        format="json",
    )
    assert response.status_code == 201, response.json()


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_lowerings_each_record_what_they_changed_from() -> None:
    """The row is locked while updating: the second change reads the first's result."""
    if connection.vendor != "postgresql":
        pytest.skip("the race is only real with two PostgreSQL connections")
    world = build_world()
    _set_promise(world, "6")
    start = threading.Barrier(2)
    errors: list[BaseException] = []

    def lower(hours: str) -> None:
        try:
            start.wait(timeout=10)
            partnership_update(
                partnership=world.p_a1,
                by=world.users["s1_am"],
                onsite_hours_per_term=Decimal(hours),
                reason=f"Down to {hours}",
            )
        except BaseException as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=lower, args=(h,)) for h in ("4", "2")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert not errors, errors
    records = [(r.old_minutes, r.new_minutes) for r in OnsiteCorrection.objects.order_by("id")]
    final = Partnership.objects.get(pk=world.p_a1.pk).onsite_hours_per_term
    # 6 -> 4 -> 2 records both steps; 6 -> 2 then 2 -> 4 is a raise (nothing to explain).
    # Never two lowerings both "from 6", which would misstate what the school was promised.
    assert (final, records) in [
        (Decimal("2"), [(360, 240), (240, 120)]),
        (Decimal("4"), [(360, 120)]),
    ], (final, records)
