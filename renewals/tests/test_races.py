"""Two at once, on two real PostgreSQL connections: the first holds its transaction open
until the second is blocked behind it, so the second always meets what the first wrote.
Opening a term's review twice leaves one review (the other is told, a 400); two runs of
the daily task open one; two decisions make one decision and one new term."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.db import connection, connections, transaction
from django.utils import timezone

from renewals import services
from renewals.models import AgreementTerm, ValueReview

from .conftest import build_cast

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
                time.sleep(0.5)  # the second is now waiting behind this transaction
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


def _term(pk: int) -> AgreementTerm:
    return AgreementTerm.objects.get(pk=pk)


def test_two_sides_opening_the_same_review_at_once_make_one() -> None:
    cast = build_cast()
    pk = cast.term.pk
    first, second = _race(
        lambda: services.review_open(by=cast.lead, term=_term(pk)),
        lambda: services.review_open(by=cast.am, term=_term(pk)),
    )
    assert isinstance(first, ValueReview), first
    assert isinstance(second, ValidationError), second
    assert "term" in second.message_dict
    assert list(ValueReview.objects.values_list("term_id", "opened_how")) == [(pk, "school")]


def test_two_runs_of_the_daily_task_at_once_open_one_review() -> None:
    cast = build_cast()
    today = timezone.localdate(timezone.now())
    weeks = (cast.term.notice_on - today).days // 7 + 1  # the cast's term is due
    first, second = _race(
        lambda: services.open_due_reviews(today, weeks),
        lambda: services.open_due_reviews(today, weeks),
    )
    assert (first, second) == (1, 0)
    assert ValueReview.objects.filter(term_id=cast.term.pk).count() == 1


def test_two_decisions_at_once_make_one_decision_and_one_new_term() -> None:
    cast = build_cast()
    review = services.review_open(by=cast.lead, term=cast.term)

    def decide(decision: str) -> Callable[[], Any]:
        return lambda: services.review_decide(
            by=cast.lead,
            review=ValueReview.objects.get(pk=review.pk),
            decision=decision,
            reason="Decided",
        )

    first, second = _race(decide("renew"), decide("end"))

    assert isinstance(first, ValueReview), first
    assert isinstance(second, ValidationError), second
    assert "decision" in second.message_dict
    review.refresh_from_db()
    assert (review.status, review.decision) == ("decided", "renew")
    terms = AgreementTerm.objects.filter(partnership=cast.partnership).order_by("number")
    assert [(t.number, t.status) for t in terms] == [(1, "renewed"), (2, "current")]
    cast.partnership.refresh_from_db()
    assert cast.partnership.stage != "ended"
