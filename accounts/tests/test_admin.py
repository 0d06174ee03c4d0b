"""The support admin: every page opens for the cast in conftest's ``world``, searches and
filters find the right rows, the forms keep the services' rules, and a changelist's
query count does not grow with its rows."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

import pytest
from django.db import connection
from django.forms import MultiWidget
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from accounts import services
from accounts.models import (
    Contact,
    Heartbeat,
    Membership,
    Partnership,
    Stage,
    StageChange,
    TrialPhase,
    User,
)
from accounts.tasks import heartbeat
from accounts.tests import factories as f
from conftest import World

pytestmark = pytest.mark.django_db


def _changelist(model: str) -> str:
    return reverse(f"admin:accounts_{model}_changelist")


def _change(obj: Any) -> str:
    return reverse(f"admin:accounts_{obj._meta.model_name}_change", args=[obj.pk])


@pytest.fixture
def history(world: World) -> World:
    """The world plus the system-written rows: one stage move (through the service, as
    in the product) and one heartbeat (through the task)."""
    services.partnership_transition(
        partnership=world.p_a1, to_stage=Stage.TECHNICAL_REVIEW, by=world.s1_am
    )
    heartbeat()
    return world


# --- Every page opens -------------------------------------------------------------------

# (model, query string, what the search and filter should find: a World attribute path
# or a callable of the world returning the expected objects)
CHANGELISTS: list[tuple[str, dict[str, str], Callable[[World], list[Any]]]] = [
    ("user", {"q": "s1_am", "is_staff__exact": "0"}, lambda w: [w.s1_am]),
    (
        "user",
        {"memberships__role__exact": "account_manager"},
        lambda w: [w.s1_am, w.s2_am],
    ),
    (
        "membership",
        {"q": "Acme", "role__exact": "account_manager"},
        lambda w: list(Membership.objects.filter(user=w.s1_am)),
    ),
    ("organisation", {"q": "100001", "kind__exact": "school"}, lambda w: [w.school_a]),
    (
        "organisation",
        {"phase__exact": "secondary", "local_authority": "Leeds"},
        lambda w: [w.school_b],
    ),
    ("contact", {"q": "Dina", "tag": "dsl"}, lambda w: [w.c_a_dsl]),
    ("contact", {"tag": "it_lead"}, lambda w: [w.c_a_it, w.c_b_it]),
    ("contact", {"has_login": "yes", "school__phase__exact": "primary"}, lambda w: [w.c_a_teacher]),
    ("product", {"q": "Maths", "is_active__exact": "1"}, lambda w: [w.prod1]),
    ("partnership", {"q": "Ashfield", "stage__exact": "enquiry"}, lambda w: [w.p_a2]),
    ("partnership", {"q": "100002"}, lambda w: [w.p_b2]),
    ("partnership", {"supplier__id__exact": "s2"}, lambda w: [w.p_a2, w.p_b2]),
    ("trialphase", {"q": "Beacon", "kind__exact": "pilot"}, lambda w: [w.ph_b2]),
    (
        "stagechange",
        {"q": "Ashfield", "to_stage__exact": "technical_review"},
        lambda w: list(StageChange.objects.all()),
    ),
    ("heartbeat", {"q": "beat"}, lambda w: list(Heartbeat.objects.all())),
]


@pytest.mark.parametrize(
    ("model", "query", "expected"),
    CHANGELISTS,
    ids=[f"{model}-{'&'.join(query)}" for model, query, _ in CHANGELISTS],
)
def test_each_changelist_opens_and_its_search_and_filters_find_the_right_rows(
    admin_client: Client,
    history: World,
    model: str,
    query: dict[str, str],
    expected: Callable[[World], list[Any]],
) -> None:
    # Filters by supplier take its id; the table above names it by its World key.
    query = {
        key: str(history.orgs[value].pk) if key.endswith("__id__exact") else value
        for key, value in query.items()
    }

    response = admin_client.get(_changelist(model), query)

    assert response.status_code == 200
    # An unknown filter makes the admin redirect with ?e=1 instead; 200 alone is not proof.
    assert "e" not in response.wsgi_request.GET
    found = list(response.context["cl"].result_list)
    assert sorted(o.pk for o in found) == sorted(o.pk for o in expected(history))


CHANGE_PAGES = [
    "s1_am",
    "s1",
    "trust",
    "school_a",
    "prod1",
    "p_a1",
    "c_a_dsl",
    "ph_a1",
]


@pytest.mark.parametrize("name", CHANGE_PAGES)
def test_each_change_page_opens_for_the_worlds_objects(
    admin_client: Client, history: World, name: str
) -> None:
    response = admin_client.get(_change(getattr(history, name)))

    assert response.status_code == 200


def test_the_change_pages_of_memberships_stage_changes_and_heartbeats_open(
    admin_client: Client, history: World
) -> None:
    objects = [
        Membership.objects.get(user=history.s1_am),
        StageChange.objects.get(partnership=history.p_a1),
        Heartbeat.objects.get(name="beat"),
    ]
    for obj in objects:
        response = admin_client.get(_change(obj))
        assert response.status_code == 200, obj


@pytest.mark.parametrize(
    "model",
    ["user", "membership", "organisation", "contact", "product", "partnership", "trialphase"],
)
def test_each_add_page_opens(admin_client: Client, db: None, model: str) -> None:
    response = admin_client.get(reverse(f"admin:accounts_{model}_add"))

    assert response.status_code == 200


@pytest.mark.parametrize("model", ["stagechange", "heartbeat"])
def test_system_written_rows_cannot_be_added_or_deleted_by_hand(
    admin_client: Client, history: World, model: str
) -> None:
    obj = StageChange.objects.first() if model == "stagechange" else Heartbeat.objects.first()
    assert obj is not None

    assert admin_client.get(reverse(f"admin:accounts_{model}_add")).status_code == 403
    delete = reverse(f"admin:accounts_{model}_delete", args=[obj.pk])
    assert admin_client.post(delete, {"post": "yes"}).status_code == 403
    assert type(obj).objects.filter(pk=obj.pk).exists()


def test_an_organisations_record_links_open_its_contacts_partnerships_and_members(
    admin_client: Client, world: World
) -> None:
    page = admin_client.get(_change(world.school_a)).content.decode()
    contacts = f"{_changelist('contact')}?school={world.school_a.pk}"
    partnerships = f"{_changelist('partnership')}?school={world.school_a.pk}"
    assert contacts in page
    assert partnerships in page

    response = admin_client.get(contacts)
    assert response.status_code == 200
    assert response.context["cl"].result_count == 4  # Ann, Ivan, Dina, Una
    response = admin_client.get(partnerships)
    assert response.status_code == 200
    assert response.context["cl"].result_count == 2


# --- Query counts -----------------------------------------------------------------------


def _grow(world: World, n: int) -> None:
    """n more of everything each changelist shows, with distinct related rows, so that
    a missing select_related shows up as n more queries."""
    for i in range(n):
        school = f.SchoolFactory(trust=world.trust if i % 2 else None)
        manager = f.UserFactory()
        f.MembershipFactory(user=manager, organisation=world.s1, role="account_manager")
        product = f.ProductFactory(supplier=world.s1)
        p = f.PartnershipFactory(supplier=world.s1, school=school, account_manager=manager)
        p.products.set([product])
        contact = f.ContactFactory(school=school, user=f.UserFactory(), tags=",teacher,")
        f.PartnershipContactFactory(partnership=p, contact=contact, added_by=manager)
        phase = f.TrialPhaseFactory(partnership=p, decided_by=manager)
        phase.cohort.set([contact])
        StageChange.objects.create(
            partnership=p, from_stage=Stage.ENQUIRY, to_stage=Stage.TECHNICAL_REVIEW, by=manager
        )
        Heartbeat.objects.create(name=f"beat-{i}", last_seen=p.created_at, count=i)


def _count_queries(client: Client, url: str) -> int:
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url)
    assert response.status_code == 200
    return len(ctx.captured_queries)


CHANGELIST_MODELS = [
    "user",
    "membership",
    "organisation",
    "contact",
    "product",
    "partnership",
    "trialphase",
    "stagechange",
    "heartbeat",
]


@pytest.mark.parametrize("model", CHANGELIST_MODELS)
def test_a_changelists_query_count_does_not_grow_with_its_rows(
    admin_client: Client, history: World, model: str
) -> None:
    url = _changelist(model)
    admin_client.get(url)  # warm up: session, one-off caches
    before = _count_queries(admin_client, url)

    _grow(history, 20)
    after = _count_queries(admin_client, url)

    assert after == before


def test_the_partnership_changelist_costs_the_same_for_one_row_as_for_twenty(
    admin_client: Client, db: None
) -> None:
    supplier = f.SupplierFactory()
    url = _changelist("partnership")

    def add(n: int) -> None:
        for _ in range(n):
            manager = f.UserFactory()
            f.MembershipFactory(user=manager, organisation=supplier, role="account_manager")
            f.PartnershipFactory(supplier=supplier, account_manager=manager)

    add(1)
    admin_client.get(url)
    one = _count_queries(admin_client, url)
    add(19)
    twenty = _count_queries(admin_client, url)

    assert Partnership.objects.count() == 20
    assert twenty == one


# --- Forms keep the services' rules -----------------------------------------------------


def _form_data(response: Any) -> dict[str, Any]:
    """What a browser would post back from an admin change page, changing nothing."""
    forms = [response.context["adminform"].form]
    data: dict[str, Any] = {}
    for inline in response.context["inline_admin_formsets"]:
        formset = inline.formset
        management = formset.management_form
        for name in management.fields:
            data[management.add_prefix(name)] = management[name].value()
        forms.extend(formset.forms)
    for form in forms:
        for name, field in form.fields.items():
            value = form[name].value()
            key = form.add_prefix(name)
            if isinstance(field.widget, MultiWidget):
                for i, part in enumerate(field.widget.decompress(value)):
                    data[f"{key}_{i}"] = "" if part is None else str(part)
            elif value is True:
                data[key] = "on"
            elif value is False:
                continue  # an unticked checkbox sends nothing
            elif isinstance(value, list | tuple):
                data[key] = [str(v) for v in value]
            else:
                data[key] = "" if value is None else str(value)
    return data


def test_support_adds_a_user_by_email_which_is_stored_lower_case(
    admin_client: Client, db: None
) -> None:
    url = reverse("admin:accounts_user_add")
    form = {
        "email": "New.Person@Example.org",
        "full_name": "New Person",
        "usable_password": "true",
        "password1": "a-long-unusual-passphrase",
        "password2": "a-long-unusual-passphrase",
    }

    response = admin_client.post(url, form)

    assert response.status_code == 302, response.context["adminform"].form.errors
    user = User.objects.get(email="new.person@example.org")
    assert user.check_password("a-long-unusual-passphrase")
    assert not user.is_staff

    again = admin_client.post(url, {**form, "email": "NEW.PERSON@example.org"})
    assert again.status_code == 200
    assert "email" in again.context["adminform"].form.errors
    assert User.objects.filter(email__iexact="new.person@example.org").count() == 1


def test_support_gives_a_user_a_role_on_their_page_and_a_role_that_does_not_fit_is_refused(
    admin_client: Client, world: World
) -> None:
    user = world.outsider
    url = _change(user)
    data = _form_data(admin_client.get(url))
    data.update(
        {
            "memberships-TOTAL_FORMS": "1",
            "memberships-0-organisation": str(world.school_b.pk),
            "memberships-0-role": "supplier_admin",
        }
    )

    refused = admin_client.post(url, data)

    assert refused.status_code == 200
    assert not Membership.objects.filter(user=user).exists()

    data["memberships-0-role"] = "teacher"
    assert admin_client.post(url, data).status_code == 302
    assert Membership.objects.get(user=user).role == "teacher"


def test_contact_tags_are_edited_as_checkboxes_and_stored_in_the_comma_wrapped_form(
    admin_client: Client, world: World
) -> None:
    contact = world.c_a_dsl
    url = _change(contact)
    data = _form_data(admin_client.get(url))
    assert sorted(data["tags"]) == ["dsl", "senior_leader"]

    data["tags"] = ["it_lead", "dsl"]
    data["email"] = "Dina.Head@Example.org"
    response = admin_client.post(url, data)

    assert response.status_code == 302, response.context["adminform"].form.errors
    contact.refresh_from_db()
    assert contact.tags == ",dsl,it_lead,"
    assert contact.email == "dina.head@example.org"
    assert list(Contact.objects.with_tag("it_lead").filter(pk=contact.pk)) == [contact]


def test_a_posted_stage_and_promised_hours_are_ignored_while_the_agreement_is_saved(
    admin_client: Client, world: World
) -> None:
    """The on-site hours promised change only through the product, which asks the reason
    for lowering them and shows it to the school."""
    partnership = world.p_a1
    promised = partnership.onsite_hours_per_term
    url = _change(partnership)
    data = _form_data(admin_client.get(url))
    data.update(stage=Stage.ENDED, onsite_hours_per_term="0.5", contract_start="2026-09-01")

    response = admin_client.post(url, data)

    assert response.status_code == 302, response.context["adminform"].form.errors
    partnership.refresh_from_db()
    assert partnership.stage == Stage.ENQUIRY
    assert partnership.onsite_hours_per_term == promised
    assert partnership.contract_start == date(2026, 9, 1)
    assert not StageChange.objects.filter(partnership=partnership).exists()


def test_a_partnership_refuses_another_suppliers_products_and_a_manager_from_elsewhere(
    admin_client: Client, world: World
) -> None:
    partnership = world.p_a1
    url = _change(partnership)
    data = _form_data(admin_client.get(url))
    data.update(products=[str(world.prod2.pk)], account_manager=str(world.s2_am.pk))

    response = admin_client.post(url, data)

    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert set(errors) == {"products", "account_manager"}
    partnership.refresh_from_db()
    assert partnership.account_manager == world.s1_am


def test_adding_a_partnership_records_its_first_stage_and_a_second_live_one_is_refused(
    admin_client: Client, world: World
) -> None:
    url = reverse("admin:accounts_partnership_add")
    form = {
        "supplier": str(world.s1.pk),
        "school": str(world.school_b.pk),
        "account_manager": str(world.s1_am.pk),
        "onsite_hours_per_term": "6",
        "first_response_target_hours": "8",
        "resolution_target_hours": "40",
        "nudges_per_contact_per_week": "1",
        "nudges_per_contact_per_term": "6",
        "contact_links-TOTAL_FORMS": "0",
        "contact_links-INITIAL_FORMS": "0",
        "trial_phases-TOTAL_FORMS": "0",
        "trial_phases-INITIAL_FORMS": "0",
        "stage_changes-TOTAL_FORMS": "0",
        "stage_changes-INITIAL_FORMS": "0",
    }

    response = admin_client.post(url, form)

    assert response.status_code == 302, response.context["adminform"].form.errors
    created = Partnership.objects.get(supplier=world.s1, school=world.school_b)
    first = StageChange.objects.get(partnership=created)
    assert (first.from_stage, first.to_stage) == ("", Stage.ENQUIRY)

    duplicate = admin_client.post(url, form)
    assert duplicate.status_code == 200
    assert "school" in duplicate.context["adminform"].form.errors


def test_a_trial_phase_cohort_must_be_the_schools_staff_and_joins_the_partnership(
    admin_client: Client, world: World
) -> None:
    phase: TrialPhase = world.ph_a1
    url = _change(phase)
    data = _form_data(admin_client.get(url))

    data["cohort"] = [str(world.c_b_it.pk)]  # staff of school B, not A
    refused = admin_client.post(url, data)
    assert refused.status_code == 200
    assert "cohort" in refused.context["adminform"].form.errors

    data["cohort"] = [str(world.c_a_teacher.pk), str(world.c_a_unlinked.pk)]
    data.update(
        {
            "criteria-TOTAL_FORMS": "1",
            "criteria-0-description": "Teachers set homework weekly",
            "criteria-0-target": "80%",
        }
    )
    assert admin_client.post(url, data).status_code == 302
    phase.refresh_from_db()
    assert {c.pk for c in phase.cohort.all()} == {world.c_a_teacher.pk, world.c_a_unlinked.pk}
    assert phase.partnership.contact_links.filter(contact=world.c_a_unlinked).exists()
    assert phase.criteria.get().target == "80%"


def test_support_reads_contact_proposals_but_cannot_decide_add_or_delete_them(
    admin_client: Client, world: World
) -> None:
    proposal = world.cp_a1
    listing = admin_client.get(_changelist("contactproposal"))
    assert listing.status_code == 200 and proposal.email in listing.content.decode()
    assert admin_client.get(_change(proposal)).status_code == 200  # view only
    response = admin_client.post(_change(proposal), {"status": "accepted"})
    assert response.status_code == 403
    proposal.refresh_from_db()
    assert proposal.status == "pending"
    assert admin_client.get(reverse("admin:accounts_contactproposal_add")).status_code == 403
