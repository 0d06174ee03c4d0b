"""/api/v1/agreements/ and /api/v1/value-reviews/ as each side uses them, and the admin."""

from __future__ import annotations

from datetime import date, timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.models import Stage
from accounts.tests import factories as f
from renewals.models import AgreementTerm, ValueReview
from renewals.services import review_open, term_save

from .conftest import TERM_END, TERM_START

pytestmark = pytest.mark.django_db

TERMS = "/api/v1/agreements/"
REVIEWS = "/api/v1/value-reviews/"


def _ids(response: Any) -> list[int]:
    assert response.status_code == 200, response.content
    return [row["id"] for row in response.json()["results"]]


# --- Terms ------------------------------------------------------------------------------


def test_a_term_shows_its_notice_date_commitments_status_and_review(cast: SimpleNamespace) -> None:
    review = review_open(by=cast.lead, term=cast.term)
    for who in ("lead", "am", "agent"):
        [row] = cast.client(who).get(TERMS).json()["results"]
        assert row["id"] == cast.term.pk
        assert (row["starts_on"], row["ends_on"], row["notice_on"]) == (
            "2026-09-01",
            "2027-08-31",
            "2027-06-02",
        )
        assert (row["notice_days"], row["annual_value"], row["status"]) == (
            90,
            "2400.00",
            "current",
        )
        assert row["commitments"] == {
            "onsite_hours_per_term": "12.0",
            "first_response_target_hours": 6,
            "resolution_target_hours": 30,
            "nudges_per_contact_per_week": cast.partnership.nudges_per_contact_per_week,
            "nudges_per_contact_per_term": cast.partnership.nudges_per_contact_per_term,
        }
        assert row["review"] == review.pk
        assert (row["school_name"], row["supplier_name"]) == ("Elm Primary", "Cedar Learning")
    for who in ("teacher", "other_am", "other_lead"):
        assert _ids(cast.client(who).get(TERMS)) == []
        assert cast.client(who).get(f"{TERMS}{cast.term.pk}/").status_code == 404


def _term(cast: SimpleNamespace, ends_on: date, notice_days: int = 30) -> AgreementTerm:
    p = f.PartnershipFactory(supplier=cast.supplier, school=f.SchoolFactory())
    return term_save(
        by=cast.am,
        partnership=p,
        starts_on=ends_on - timedelta(days=365),
        ends_on=ends_on,
        notice_days=notice_days,
    )


def test_terms_filter_by_notice_date_status_and_due_and_sort_by_notice(
    cast: SimpleNamespace, settings: Any
) -> None:
    today = timezone.localdate()
    settings.RENEWAL_DUE_WEEKS = 12
    AgreementTerm.objects.filter(pk=cast.term.pk).delete()
    soon = _term(cast, today + timedelta(days=30 + 7 * 5))  # notice in 5 weeks
    later = _term(cast, today + timedelta(days=30 + 7 * 20))  # notice in 20 weeks
    passed = _term(cast, today + timedelta(days=10))  # notice passed, term still running
    over = _term(cast, today - timedelta(days=1))  # the term is over
    client = cast.client("am")

    assert _ids(client.get(TERMS, {"due": "true", "ordering": "notice_on"})) == [
        passed.pk,
        soon.pk,
    ]
    assert set(_ids(client.get(TERMS, {"due": "false"}))) == {later.pk, over.pk}
    assert _ids(client.get(TERMS, {"ordering": "-notice_on"}))[0] == later.pk
    assert set(_ids(client.get(TERMS, {"notice_after": str(today)}))) == {soon.pk, later.pk}
    assert set(_ids(client.get(TERMS, {"notice_before": str(today)}))) == {passed.pk, over.pk}
    assert _ids(client.get(TERMS, {"partnership": soon.partnership_id})) == [soon.pk]
    assert _ids(client.get(TERMS, {"status": "renewed"})) == []
    assert client.get(TERMS, {"notice_before": "not a date"}).status_code == 400


def test_the_supplier_sets_the_first_term_and_the_school_changes_it(
    cast: SimpleNamespace,
) -> None:
    p = cast.partnership
    AgreementTerm.objects.filter(partnership=p).delete()
    body = {"partnership": p.pk, "starts_on": "2026-09-01", "ends_on": "2027-08-31"}

    response = cast.client("am").post(TERMS, {**body, "annual_value": "950.50"}, format="json")

    assert response.status_code == 201, response.content
    created = response.json()
    assert (created["number"], created["notice_days"], created["notice_on"]) == (
        1,
        90,
        "2027-06-02",
    )
    assert (created["annual_value"], created["review"]) == ("950.50", None)
    p.refresh_from_db()
    assert (p.contract_start, p.contract_end) == (date(2026, 9, 1), date(2027, 8, 31))

    again = cast.client("am").post(TERMS, body, format="json")
    assert again.status_code == 400
    assert "partnership" in again.json()

    url = f"{TERMS}{created['id']}/"
    changed = cast.client("lead").patch(url, {"notice_days": 60}, format="json")
    assert changed.status_code == 200, changed.content
    assert (changed.json()["notice_on"], changed.json()["ends_on"]) == ("2027-07-02", "2027-08-31")
    assert changed.json()["annual_value"] == "950.50"
    cleared = cast.client("lead").patch(url, {"annual_value": None}, format="json")
    assert cleared.json()["annual_value"] is None


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"ends_on": "2026-08-01"}, "ends_on"),
        ({"notice_days": 400}, "notice_days"),
        ({"notice_days": -1}, "notice_days"),
        ({"annual_value": "-5"}, "annual_value"),
        ({"annual_value": "123456789012"}, "annual_value"),
        ({"starts_on": "yesterday"}, "starts_on"),
    ],
)
def test_a_bad_term_is_a_400_on_its_field(
    cast: SimpleNamespace, body: dict[str, Any], field: str
) -> None:
    response = cast.client("am").patch(f"{TERMS}{cast.term.pk}/", body, format="json")
    assert response.status_code == 400
    assert field in response.json()
    cast.term.refresh_from_db()
    assert (cast.term.starts_on, cast.term.ends_on, cast.term.notice_days) == (
        TERM_START,
        TERM_END,
        90,
    )


def test_who_may_not_set_a_term_is_told_so_or_sees_nothing(cast: SimpleNamespace) -> None:
    body = {"partnership": cast.partnership.pk, "starts_on": "2026-09-01", "ends_on": "2027-06-30"}
    # The teacher sees the partnership (they take part in it) but not its agreement, and
    # may not set one.
    partnership_url = f"/api/v1/partnerships/{cast.partnership.pk}/"
    assert cast.client("teacher").get(partnership_url).status_code == 200
    AgreementTerm.objects.filter(partnership=cast.partnership).delete()
    assert cast.client("teacher").post(TERMS, body, format="json").status_code == 403
    # A support agent sees the term but does not set it.
    cast.term = term_save(
        by=cast.am, partnership=cast.partnership, starts_on=TERM_START, ends_on=TERM_END
    )
    url = f"{TERMS}{cast.term.pk}/"
    assert cast.client("agent").get(url).status_code == 200
    assert cast.client("agent").patch(url, {"notice_days": 10}, format="json").status_code == 403
    # Another supplier: the term is not there at all, and the partnership does not exist.
    assert cast.client("other_am").patch(url, {"notice_days": 10}, format="json").status_code == 404
    refused = cast.client("other_am").post(TERMS, body, format="json")
    assert refused.status_code == 400
    assert "does not exist" in str(refused.json()["partnership"])
    cast.term.refresh_from_db()
    assert cast.term.notice_days == 90


def test_only_the_current_term_changes(cast: SimpleNamespace) -> None:
    review = review_open(by=cast.lead, term=cast.term)
    decided = cast.client("lead").post(
        f"{REVIEWS}{review.pk}/decide/", {"decision": "renew", "decision_reason": "Good"}
    )
    assert decided.status_code == 200, decided.content
    response = cast.client("am").patch(
        f"{TERMS}{cast.term.pk}/", {"notice_days": 30}, format="json"
    )
    assert response.status_code == 400
    assert AgreementTerm.objects.get(pk=cast.term.pk).notice_days == 90


# --- Reviews ----------------------------------------------------------------------------


def test_either_side_opens_a_review_once(cast: SimpleNamespace) -> None:
    response = cast.client("am").post(REVIEWS, {"term": cast.term.pk}, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["opened_how"], body["status"], body["decision"]) == ("supplier", "open", "")
    assert (body["term"], body["term_number"], body["notice_on"]) == (
        cast.term.pk,
        1,
        "2027-06-02",
    )
    assert body["figures"]["term"]["number"] == 1
    assert "survey" in body

    twice = cast.client("lead").post(REVIEWS, {"term": cast.term.pk}, format="json")
    assert twice.status_code == 400
    assert "term" in twice.json()
    assert ValueReview.objects.filter(term=cast.term).count() == 1


def test_who_may_not_open_a_review(cast: SimpleNamespace) -> None:
    assert cast.client("agent").post(REVIEWS, {"term": cast.term.pk}).status_code == 403
    for who in ("teacher", "other_am", "other_lead"):
        response = cast.client(who).post(REVIEWS, {"term": cast.term.pk}, format="json")
        assert response.status_code == 400
        assert "does not exist" in str(response.json()["term"])
    assert not ValueReview.objects.exists()


def test_the_list_carries_no_figures_and_one_review_carries_them(cast: SimpleNamespace) -> None:
    review = review_open(by=cast.lead, term=cast.term)
    [row] = cast.client("am").get(REVIEWS).json()["results"]
    assert row["id"] == review.pk
    assert "figures" not in row and "survey" not in row
    detail = cast.client("am").get(f"{REVIEWS}{review.pk}/").json()
    assert detail["figures"]["period"]["start"] == "2026-09-01"
    assert detail["figures"]["tickets"]["tickets_raised"] == 0
    assert set(detail["figures"]) >= {"tickets", "visits", "nudges", "onsite_hours_by_term"}


def test_reviews_filter_by_status_decision_school_and_supplier(cast: SimpleNamespace) -> None:
    review = review_open(by=cast.lead, term=cast.term)
    client = cast.client("lead")
    assert _ids(client.get(REVIEWS, {"status": "open"})) == [review.pk]
    assert _ids(client.get(REVIEWS, {"status": "decided"})) == []
    assert _ids(client.get(REVIEWS, {"school": cast.school.pk})) == [review.pk]
    assert _ids(client.get(REVIEWS, {"supplier": cast.other_supplier.pk})) == []
    assert _ids(client.get(REVIEWS, {"partnership": cast.partnership.pk})) == [review.pk]
    client.post(f"{REVIEWS}{review.pk}/decide/", {"decision": "end", "decision_reason": "No"})
    assert _ids(client.get(REVIEWS, {"decision": "end"})) == [review.pk]
    assert _ids(client.get(REVIEWS, {"decision": "renew"})) == []
    assert client.get(REVIEWS, {"decision": "maybe"}).status_code == 400


def test_the_school_lead_renews_and_the_supplier_sees_it_at_once(cast: SimpleNamespace) -> None:
    review = review_open(by=cast.am, term=cast.term)
    url = f"{REVIEWS}{review.pk}/decide/"
    body = {"decision": "renew", "decision_reason": "Staff would notice"}

    refused = cast.client("am").post(url, body, format="json")
    assert refused.status_code == 403
    response = cast.client("lead").post(url, body, format="json")

    assert response.status_code == 200, response.content
    decided = response.json()
    assert (decided["status"], decided["decision"]) == ("decided", "renew")
    assert decided["decided_by"] == cast.lead.pk
    seen = cast.client("am").get(f"{REVIEWS}{review.pk}/").json()
    assert (seen["decision"], seen["decision_reason"]) == ("renew", "Staff would notice")
    assert seen["figures"] == decided["figures"]  # the snapshot, not figures made again
    new = cast.client("am").get(f"{TERMS}{seen['next_term']}/").json()
    assert (new["number"], new["starts_on"], new["ends_on"], new["status"]) == (
        2,
        "2027-09-01",
        "2028-08-31",
        "current",
    )
    old = cast.client("am").get(f"{TERMS}{cast.term.pk}/").json()
    assert (old["status"], old["review"]) == ("renewed", review.pk)

    twice = cast.client("lead").post(url, {"decision": "end", "decision_reason": "No"})
    assert twice.status_code == 400
    assert "decision" in twice.json()


def test_ending_moves_the_partnership_to_ended(cast: SimpleNamespace) -> None:
    review = review_open(by=cast.lead, term=cast.term)
    response = cast.client("lead").post(
        f"{REVIEWS}{review.pk}/decide/",
        {"decision": "end", "decision_reason": "Nobody would notice"},
        format="json",
    )
    assert response.status_code == 200, response.content
    cast.partnership.refresh_from_db()
    assert cast.partnership.stage == Stage.ENDED
    seen = cast.client("admin").get(f"{REVIEWS}{review.pk}/").json()
    assert (seen["decision"], seen["next_term"]) == ("end", None)
    partnership = cast.client("am").get(f"/api/v1/partnerships/{cast.partnership.pk}/").json()
    assert partnership["stage"] == "ended"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"decision": "renew_with_changes", "decision_reason": "Useful"}, "changes_agreed"),
        ({"decision": "maybe", "decision_reason": "Useful"}, "decision"),
        ({"decision": "renew"}, "decision_reason"),
        ({"decision": "renew", "decision_reason": "x" * 2001}, "decision_reason"),
        (
            {"decision": "renew", "decision_reason": "Yes", "next_ends_on": "2027-09-01"},
            "next_ends_on",
        ),
        ({"decision": "renew", "decision_reason": "Yes", "annual_value": "-1"}, "annual_value"),
    ],
)
def test_a_bad_decision_is_a_400_on_its_field(
    cast: SimpleNamespace, body: dict[str, Any], field: str
) -> None:
    review = review_open(by=cast.lead, term=cast.term)
    response = cast.client("lead").post(f"{REVIEWS}{review.pk}/decide/", body, format="json")
    assert response.status_code == 400
    assert field in response.json(), response.json()
    review.refresh_from_db()
    assert review.status == "open"


def test_out_of_scope_reviews_are_not_found(cast: SimpleNamespace) -> None:
    review = review_open(by=cast.lead, term=cast.term)
    for who in ("teacher", "other_am", "other_lead"):
        client = cast.client(who)
        assert client.get(f"{REVIEWS}{review.pk}/").status_code == 404
        body = {"decision": "end", "decision_reason": "x"}
        assert client.post(f"{REVIEWS}{review.pk}/decide/", body).status_code == 404
        assert client.post(f"{REVIEWS}{review.pk}/survey/", {}).status_code == 404


def test_the_survey_is_sent_by_the_schools_lead_only(cast: SimpleNamespace) -> None:
    review = review_open(by=cast.lead, term=cast.term)
    url = f"{REVIEWS}{review.pk}/survey/"
    staff = f.ContactFactory(school=cast.school, tags=",teacher,")
    f.PartnershipContactFactory(partnership=cast.partnership, contact=staff)
    elsewhere = f.ContactFactory(school=cast.other_school)

    assert cast.client("am").post(url, {}, format="json").status_code == 403
    outside = cast.client("lead").post(url, {"contact_ids": [elsewhere.pk]}, format="json")
    assert outside.status_code == 400
    assert "does not exist" in str(outside.json()["contact_ids"])
    too_long = cast.client("lead").post(url, {"message": "x" * 2001}, format="json")
    assert too_long.status_code == 400

    sent = cast.client("lead").post(url, {"contact_ids": [staff.pk]}, format="json")
    assert sent.status_code == 200, sent.content
    assert sent.json()["invited"] == 1
    assert review.invitations.filter(contact=staff).exists()


# --- Admin ------------------------------------------------------------------------------


def test_the_admin_shows_terms_and_reviews_and_changes_neither(
    admin_client: Client, cast: SimpleNamespace
) -> None:
    review = review_open(by=cast.lead, term=cast.term)
    for obj in (cast.term, review):
        meta = obj._meta
        changelist = reverse(f"admin:{meta.app_label}_{meta.model_name}_changelist")
        page = admin_client.get(changelist, {"q": "Elm"})
        assert page.status_code == 200
        assert [o.pk for o in page.context["cl"].result_list] == [obj.pk]
        change = reverse(f"admin:{meta.app_label}_{meta.model_name}_change", args=[obj.pk])
        assert admin_client.get(change).status_code == 200
        assert (
            admin_client.post(change, {"status": "decided", "decision": "end"}).status_code == 403
        )
        add = reverse(f"admin:{meta.app_label}_{meta.model_name}_add")
        assert admin_client.get(add).status_code == 403
        delete = reverse(f"admin:{meta.app_label}_{meta.model_name}_delete", args=[obj.pk])
        assert admin_client.post(delete, {"post": "yes"}).status_code == 403
    review.refresh_from_db()
    assert (review.status, review.decision) == ("open", "")
    assert AgreementTerm.objects.filter(pk=cast.term.pk, status="current").exists()
