"""Two answers with one survey link at the same moment, and two sends of one review's
survey at once, on two real PostgreSQL connections: exactly one answer is stored, and each
person is asked once."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.db import connection, connections, transaction

from conftest import build_world
from nudges.models import Nudge
from renewals.models import SurveyInvitation
from renewals.survey import survey_answer, survey_send, survey_token
from renewals.tests.test_survey import open_review, staff

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
                time.sleep(0.5)  # the second is now waiting on the row lock
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


def test_two_answers_with_one_link_at_once_store_exactly_one() -> None:
    world = build_world()
    [inv] = survey_send(by=world.users["a_lead"], review=open_review(world))
    token = survey_token(inv)
    first, second = _race(
        lambda: survey_answer(token=token, notice="a_lot", uses="First"),
        lambda: survey_answer(token=token, notice="not_at_all", uses="Second"),
    )
    assert isinstance(first, SurveyInvitation), first
    assert isinstance(second, ValidationError) and second.code == "already_answered", second
    inv.refresh_from_db()
    assert (inv.notice, inv.uses) == ("a_lot", "First")


def test_two_sends_at_once_ask_each_person_once() -> None:
    world = build_world()
    review = open_review(world)
    people = [staff(world, name).pk for name in ("Vic", "Wyn")]

    def send() -> Any:
        return survey_send(by=world.users["a_lead"], review=review, contact_ids=people)

    first, second = _race(send, send)
    assert isinstance(first, list) and len(first) == 2, first
    assert second == [], second
    assert SurveyInvitation.objects.filter(review=review).count() == 2
    assert Nudge.objects.filter(occurrence__startswith="survey:").count() == 2
