"""The support admin cannot move a ticket, visit or time entry to another tenant: the
``supplier`` and ``school`` columns every scope filter reads are read-only there and
always taken from the row's partnership when it is saved, and the partnership itself is
fixed once the row exists. Trial-phase decisions are read-only too."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from accounts.models import TrialPhase
from accounts.tests import factories as f
from accounts.tests.test_admin import _form_data
from conftest import World
from tickets.models import Ticket
from visits.models import TimeEntry, Visit

pytestmark = pytest.mark.django_db


def _change(obj: Any) -> str:
    meta = obj._meta
    return reverse(f"admin:{meta.app_label}_{meta.model_name}_change", args=[obj.pk])


def _changelist(model: Any) -> str:
    meta = model._meta
    return reverse(f"admin:{meta.app_label}_{meta.model_name}_changelist")


ROWS = [
    # (world name, a field support may edit, its new value, how to read it back)
    ("t_a1", "subject", "Edited by support", lambda o: o.subject),
    ("v_a1", "agenda", "Edited by support", lambda o: o.agenda),
    ("te_a1", "notes", "Edited by support", lambda o: o.notes),
]


@pytest.mark.parametrize(("name", "field", "value", "read"), ROWS)
def test_posting_another_tenant_to_the_change_form_moves_nothing(
    admin_client: Client, world: World, name: str, field: str, value: str, read: Any
) -> None:
    """Acme's row at Ashfield (p_a1), posted with Brightboard, Beacon Academy and
    Brightboard's partnership at Beacon: the edit is saved, the row stays where it was,
    Acme still sees it and Brightboard does not."""
    obj = getattr(world, name)
    url = _change(obj)
    page = admin_client.get(url)
    assert page.status_code == 200
    form = page.context["adminform"].form
    assert not {"supplier", "school", "partnership"} & set(form.fields)
    data = _form_data(page)
    data.update(
        {
            field: value,
            "supplier": str(world.s2.pk),
            "school": str(world.school_b.pk),
            "partnership": str(world.p_b2.pk),
        }
    )

    response = admin_client.post(url, data)

    assert response.status_code == 302, response.context["adminform"].form.errors
    obj.refresh_from_db()
    assert read(obj) == value
    assert (obj.partnership_id, obj.supplier_id, obj.school_id) == (
        world.p_a1.pk,
        world.s1.pk,
        world.school_a.pk,
    )
    model = type(obj)
    assert model.objects.visible_to(world.s1_am).filter(pk=obj.pk).exists()
    assert not model.objects.visible_to(world.s2_am).filter(pk=obj.pk).exists()


@pytest.mark.parametrize("model", [Ticket, Visit, TimeEntry])
def test_saving_takes_supplier_and_school_from_the_partnership(world: World, model: Any) -> None:
    """However a script sets the copied columns, ``save()`` files the row under its
    partnership's supplier and school (with or without ``update_fields``)."""
    obj = model.objects.filter(partnership=world.p_a1).first()
    fresh = model.objects.get(pk=obj.pk)  # the partnership not loaded
    fresh.supplier_id, fresh.school_id = world.s2.pk, world.school_b.pk
    fresh.save(update_fields=["supplier", "school"])
    fresh = model.objects.get(pk=obj.pk)
    assert (fresh.supplier_id, fresh.school_id) == (world.s1.pk, world.school_a.pk)

    fresh.supplier_id = world.s2.pk
    fresh.save()
    assert model.objects.filter(pk=obj.pk, supplier=world.s1, school=world.school_a).exists()


def test_a_time_entry_added_in_the_admin_is_filed_under_its_partnership(
    admin_client: Client, world: World
) -> None:
    url = reverse("admin:visits_timeentry_add")
    page = admin_client.get(url)
    assert page.status_code == 200
    assert not {"supplier", "school"} & set(page.context["adminform"].form.fields)
    response = admin_client.post(
        url,
        {
            "partnership": str(world.p_b2.pk),
            "user": str(world.s2_am.pk),
            "date": "2026-11-02",
            "minutes": "30",
            "mode": "remote",
            "activity": "planning",
            "created_at_0": "2026-11-02",
            "created_at_1": "10:00:00",
            "supplier": str(world.s1.pk),  # ignored
            "school": str(world.school_a.pk),  # ignored
        },
    )
    assert response.status_code == 302, response.context["adminform"].form.errors
    entry = TimeEntry.objects.get(date="2026-11-02", minutes=30)
    assert (entry.supplier_id, entry.school_id) == (world.s2.pk, world.school_b.pk)


def test_tickets_are_not_made_up_in_the_admin(admin_client: Client, world: World) -> None:
    assert admin_client.get(reverse("admin:tickets_ticket_add")).status_code == 403


@pytest.mark.parametrize("model", [Ticket, Visit, TimeEntry])
def test_the_supplier_filter_offers_only_suppliers_with_rows(
    admin_client: Client, world: World, model: Any
) -> None:
    f.SupplierFactory(name="Zephyr Learning")  # no tickets, visits or time
    response = admin_client.get(_changelist(model))
    assert response.status_code == 200
    [supplier_filter] = [
        spec for spec in response.context["cl"].filter_specs if spec.field_path == "supplier"
    ]
    offered = {label for _pk, label in supplier_filter.lookup_choices}
    assert offered == {"Acme Learning", "Brightboard"}
    filtered = admin_client.get(_changelist(model), {"supplier__id__exact": world.s1.pk})
    assert {o.supplier_id for o in filtered.context["cl"].result_list} == {world.s1.pk}


def test_a_trial_phases_decision_cannot_be_edited_in_the_admin(
    admin_client: Client, world: World
) -> None:
    phase: TrialPhase = world.ph_a1
    url = _change(phase)
    page = admin_client.get(url)
    assert page.status_code == 200
    assert not {"decision", "decision_notes", "decided_at", "decided_by"} & set(
        page.context["adminform"].form.fields
    )
    data = _form_data(page)
    data.update(decision="stop", decision_notes="Made up", intent="Edited by support")

    assert admin_client.post(url, data).status_code == 302
    phase.refresh_from_db()
    assert phase.intent == "Edited by support"
    assert (phase.decision, phase.decision_notes, phase.decided_by_id) == ("", "", None)


def test_a_completed_visits_on_site_time_is_read_only_in_the_admin(
    admin_client: Client, world: World
) -> None:
    """It changes only through the API, with a reason the school sees."""
    from datetime import timedelta

    from django.utils import timezone

    from visits.services import visit_complete, visit_create

    start = timezone.now() - timedelta(hours=3)
    visit = visit_create(
        by=world.s1_am,
        partnership=world.p_a1,
        kind="training",
        starts_at=start,
        ends_at=start + timedelta(hours=2),
        attendees=[world.s1_am],
    )
    visit_complete(visit=visit, by=world.s1_am)
    entry = TimeEntry.objects.get(visit=visit)
    url = _change(entry)
    page = admin_client.get(url)
    assert not {"minutes", "date", "mode", "visit"} & set(page.context["adminform"].form.fields)
    data = _form_data(page)
    data.update(minutes="600", notes="Checked")
    assert admin_client.post(url, data).status_code == 302
    entry.refresh_from_db()
    assert (entry.minutes, entry.notes) == (120, "Checked")
    delete = reverse("admin:visits_timeentry_delete", args=[entry.pk])
    assert admin_client.post(delete, {"post": "yes"}).status_code == 403
    assert TimeEntry.objects.filter(pk=entry.pk).exists()
    # Remote time on no visit stays editable.
    page = admin_client.get(_change(world.te_a1))
    assert "minutes" in page.context["adminform"].form.fields
