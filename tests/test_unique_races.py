"""Two writes that each pass the uniqueness checks, on two real PostgreSQL connections: the
first holds its transaction open until the second is blocked on the unique index, so the
second always meets the constraint on write. It must answer 400 with a message (it was an
IntegrityError: 500), and the first write stands (issue 17, item 23)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.db import connection, connections, transaction

from conftest import build_world

pytestmark = pytest.mark.django_db(transaction=True)


def _race(first: Callable[[], Any], second: Callable[[], Any]) -> list[Any]:
    """``first`` runs in a transaction left open until ``second`` (on another connection)
    has had time to block behind it; returns each one's result or exception."""
    if connection.vendor != "postgresql":
        pytest.skip("the race is only real with two PostgreSQL connections")
    first_written, second_started = threading.Event(), threading.Event()
    outcome: list[Any] = [None, None]

    def run_first() -> None:
        try:
            with transaction.atomic():
                outcome[0] = first()
                first_written.set()
                second_started.wait(timeout=10)
                time.sleep(0.5)  # the second is now waiting on the unique index
        except BaseException as exc:
            outcome[0] = exc
        finally:
            first_written.set()
            connections.close_all()

    def run_second() -> None:
        try:
            first_written.wait(timeout=10)
            second_started.set()
            outcome[1] = second()
        except BaseException as exc:
            outcome[1] = exc
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run_first), threading.Thread(target=run_second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    return outcome


def _field_error(outcome: Any) -> dict[str, list[str]]:
    assert isinstance(outcome, ValidationError), outcome
    return outcome.message_dict


def test_two_templates_saved_with_one_name_at_once_keep_one() -> None:
    from nudges.models import NudgeTemplate
    from nudges.services import template_save

    world = build_world()

    def save() -> Any:
        return template_save(
            by=world.users["s1_am"],
            supplier=world.s1,
            name="Half-term check-in",
            subject="Hello {{ first_name }}",
            body_text="How is it going?",
        )

    first, second = _race(save, save)
    assert isinstance(first, NudgeTemplate)
    assert _field_error(second) == {"name": ["You already have a template with this name."]}
    assert NudgeTemplate.objects.filter(supplier=world.s1, name="Half-term check-in").count() == 1


def test_two_staff_records_given_one_address_at_once_keep_one() -> None:
    from accounts.models import Contact
    from accounts.services import contact_update

    world = build_world()
    lead = world.users["a_lead"]
    ivan, dina = world.c_a_it, world.c_a_dsl

    def update(contact: Contact) -> Callable[[], Any]:
        return lambda: contact_update(contact=contact, by=lead, email="office@ashfield.example")

    first, second = _race(update(ivan), update(dina))
    assert isinstance(first, Contact)
    assert _field_error(second) == {
        "email": ["The school already has a member of staff with this address."]
    }
    assert Contact.objects.get(pk=ivan.pk).email == "office@ashfield.example"
    assert Contact.objects.get(pk=dina.pk).email != "office@ashfield.example"


def test_two_entries_made_one_visits_on_site_time_at_once_keep_one() -> None:
    from visits.models import TimeEntry
    from visits.services import time_entry_create, time_entry_update

    world = build_world()
    am, visit = world.users["s1_am"], world.v_a1
    entries = [
        time_entry_create(
            by=am,
            partnership=world.p_a1,
            date=visit.starts_at.date(),
            minutes=30,
            mode="remote",
            activity="troubleshooting",
        )
        for _ in range(2)
    ]

    def move(entry: TimeEntry) -> Callable[[], Any]:
        return lambda: time_entry_update(entry=entry, by=am, visit=visit, mode="on_site")

    first, second = _race(move(entries[0]), move(entries[1]))
    assert isinstance(first, TimeEntry)
    assert _field_error(second) == {"visit": ["This visit already has its on-site time entry."]}
    assert TimeEntry.objects.filter(visit=visit, mode="on_site").count() == 1


def test_a_template_deleted_as_a_rule_starts_using_it_is_a_400() -> None:
    """The view checks that no rule uses the template, then deletes: a rule made in between
    (simulated: the check sees none) meets the database's PROTECT, which answered 500."""
    from unittest import mock

    from nudges.models import NudgeTemplate

    world = build_world()
    template = world.tpl_s1  # rule_s1 uses it
    with mock.patch("django.db.models.query.QuerySet.exists", return_value=False):
        response = world.client("s1_admin").delete(f"/api/v1/nudge-templates/{template.pk}/")
    assert response.status_code == 400
    assert "still use" in response.json()["detail"]
    assert NudgeTemplate.objects.filter(pk=template.pk).exists()
