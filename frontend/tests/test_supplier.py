"""The account manager's pages: answering and moving tickets in place (htmx partials),
visits, the stage and nudges; every refusal is a form error or a 403, never a 500."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from nudges.models import Nudge
from tickets.models import Ticket
from visits.models import TimeEntry, Visit

HTMX = {"HTTP_HX_REQUEST": "true", "HTTP_HX_TARGET": "ticket-panel"}


def test_the_queue_lists_open_tickets_and_filters(world, login):
    client = login("s1_am")
    html = client.get("/tickets/").content.decode()
    assert "Ticket t_a1" in html
    Ticket.objects.filter(pk=world.t_a1.pk).update(status="closed", outcome="fixed")
    assert "Ticket t_a1" not in client.get("/tickets/").content.decode()
    assert "Ticket t_a1" in client.get("/tickets/?status=closed").content.decode()
    assert "Ticket t_a1" not in client.get("/tickets/?status=&q=nothing-like-this").content.decode()
    partial = client.get("/tickets/?status=", HTTP_HX_REQUEST="true", HTTP_HX_TARGET="queue-list")
    assert b"<html" not in partial.content and b"Ticket t_a1" in partial.content


def test_a_ticket_opens_in_the_panel_or_as_a_page(world, login):
    client = login("s1_am")
    page = client.get(f"/tickets/{world.t_a1.pk}/")
    assert b"<html" in page.content and b'id="ticket-panel"' in page.content
    panel = client.get(f"/tickets/{world.t_a1.pk}/", **HTMX)
    assert b"<html" not in panel.content
    assert b"Message m_a1_internal" in panel.content  # the supplier's own notes
    restore = client.get(
        f"/tickets/{world.t_a1.pk}/", HTTP_HX_REQUEST="true", HTTP_HX_HISTORY_RESTORE_REQUEST="true"
    )
    assert b"<html" in restore.content


def test_answering_in_place_with_a_reply_and_an_internal_note(world, login):
    client = login("s1_am")
    url = f"/tickets/{world.t_a1.pk}/reply/"
    reply = client.post(url, {"body": "Try clearing the cache.", "visibility": "public"}, **HTMX)
    assert reply.status_code == 200
    html = reply.content.decode()
    assert "Reply sent to the school." in html and "Try clearing the cache." in html
    assert f'id="ticket-row-{world.t_a1.pk}" hx-swap-oob="true"' in html
    note = client.post(url, {"body": "Probably the proxy.", "visibility": "internal"}, **HTMX)
    assert "Internal note added." in note.content.decode()
    assert world.t_a1.messages.get(body="Probably the proxy.").is_internal
    empty = client.post(url, {"body": "", "visibility": "public"}, **HTMX)
    assert empty.status_code == 422 and b"This field is required." in empty.content


def test_without_javascript_a_reply_redirects_back_to_the_ticket(world, login):
    response = login("s1_am").post(
        f"/tickets/{world.t_a1.pk}/reply/?status=open", {"body": "Hello", "visibility": "public"}
    )
    assert response.status_code == 302
    assert response["Location"] == f"/tickets/{world.t_a1.pk}/?status=open"


def test_moving_a_ticket_along_and_resolving_it_with_an_outcome(world, login):
    client = login("s1_am")
    url = f"/tickets/{world.t_a1.pk}/move/"
    assert client.post(url, {"status": "in_progress"}, **HTMX).status_code == 200
    no_outcome = client.post(url, {"status": "resolved"}, **HTMX)
    assert no_outcome.status_code == 422
    assert "an outcome is required" in no_outcome.content.decode()
    no_reason = client.post(url, {"status": "resolved", "outcome": "wont_change"}, **HTMX)
    assert no_reason.status_code == 422
    assert "Explain why it won" in no_reason.content.decode()
    bad_move = client.post(url, {"status": "new"}, **HTMX)
    assert bad_move.status_code == 422
    done = client.post(
        url, {"status": "resolved", "outcome": "fixed", "outcome_reason": "Patched"}, **HTMX
    )
    assert done.status_code == 200 and "Outcome: Fixed" in done.content.decode()
    world.t_a1.refresh_from_db()
    assert (world.t_a1.status, world.t_a1.outcome) == ("resolved", "fixed")


def test_triaging_a_ticket_in_place_and_finding_it_in_the_queue(world, login):
    from tickets.models import TicketEvent

    client = login("s1_am")
    url = f"/tickets/{world.t_a1.pk}/triage/"
    panel = client.get(f"/tickets/{world.t_a1.pk}/", **HTMX).content.decode()
    assert "Save triage" in panel and str(world.s1_agent) in panel
    assert str(world.s2_am) not in panel  # another supplier's staff are not offered
    done = client.post(
        url,
        {"priority": "urgent", "category": "question", "assignee": world.s1_agent.pk},
        **HTMX,
    )
    assert done.status_code == 200 and "Ticket triaged." in done.content.decode()
    assert "Urgent priority" in done.content.decode()
    world.t_a1.refresh_from_db()
    assert (world.t_a1.priority, world.t_a1.category, world.t_a1.assignee) == (
        "urgent",
        "question",
        world.s1_agent,
    )
    kinds = set(TicketEvent.objects.filter(ticket=world.t_a1).values_list("kind", flat=True))
    assert {"assigned", "priority"} <= kinds
    mine = login("s1_agent").get("/tickets/", {"assignee": "me"}).content.decode()
    assert "Ticket t_a1" in mine
    unassigned = client.get("/tickets/", {"assignee": "none"}).content.decode()
    assert "Ticket t_a1" not in unassigned
    # Someone who is not the supplier's staff, or a made-up priority: a form error, nothing
    # stored changes.
    bad = client.post(
        url, {"priority": "sky-high", "category": "question", "assignee": world.s2_am.pk}, **HTMX
    )
    assert bad.status_code == 422
    assert "Select a valid choice" in bad.content.decode()
    world.t_a1.refresh_from_db()
    assert (world.t_a1.priority, world.t_a1.assignee) == ("urgent", world.s1_agent)
    # Unassigning, without JavaScript.
    plain = client.post(url, {"priority": "normal", "category": "problem", "assignee": ""})
    assert plain.status_code == 302
    world.t_a1.refresh_from_db()
    assert world.t_a1.assignee is None
    # Whoever has it keeps it after they leave, until someone reassigns it: saving a new
    # priority changes the priority only.
    client.post(url, {"priority": "normal", "category": "problem", "assignee": world.s1_agent.pk})
    world.s1_agent.is_active = False
    world.s1_agent.save(update_fields=["is_active"])
    panel = client.get(f"/tickets/{world.t_a1.pk}/", **HTMX).content.decode()
    assert f"{world.s1_agent} (no longer active)" in panel
    kept = client.post(
        url, {"priority": "high", "category": "problem", "assignee": world.s1_agent.pk}, **HTMX
    )
    assert kept.status_code == 200
    world.t_a1.refresh_from_db()
    assert (world.t_a1.priority, world.t_a1.assignee) == ("high", world.s1_agent)
    # Another supplier's ticket is not there; the school side may not triage.
    assert client.post(f"/tickets/{world.t_a2.pk}/triage/", {}).status_code == 404
    assert login("a_teacher").post(url, {"priority": "low"}).status_code == 403


def test_another_suppliers_ticket_cannot_be_written_to(world, login):
    client = login("s1_am")
    assert (
        client.post(
            f"/tickets/{world.t_a2.pk}/reply/", {"body": "x", "visibility": "public"}
        ).status_code
        == 404
    )
    assert client.post(f"/tickets/{world.t_a2.pk}/move/", {"status": "resolved"}).status_code == 404
    assert (
        login("a_teacher").post(f"/tickets/{world.t_a1.pk}/move/", {"status": "closed"}).status_code
        == 403
    )


def test_the_portfolio_shows_each_partnerships_figures(world, login):
    client = login("s1_am")
    html = client.get("/portfolio/").content.decode()
    assert "Ashfield Primary" in html and "Enquiry" in html
    assert "HEALTH SCORE" not in html  # the placeholder is a template comment
    assert "none planned" not in html  # v_a1 is next week
    # A support agent sees every partnership of the supplier (they manage none).
    assert "Ashfield Primary" in login("s1_agent").get("/portfolio/").content.decode()
    # An account manager starts on their own; another's partnerships are one click away.
    world.p_a1.account_manager = world.s1_admin
    world.p_a1.save()
    assert "No partnerships to show" in client.get("/portfolio/").content.decode()
    assert "Ashfield Primary" in client.get("/portfolio/?mine=0").content.decode()


def test_the_partnership_timeline(world, login):
    html = login("s1_am").get(f"/partnerships/{world.p_a1.pk}/").content.decode()
    for text in (
        "Coming up",
        "Technical survey visit",
        "Ticket #",
        "Pilot phase",
        "45 min remote",
        "Nudge to",
    ):
        assert text in html, text
    assert "Brightboard" not in html


def test_a_refused_stage_move_is_a_form_error_and_a_gate_override_needs_an_admin(world, login):
    world.p_a1.stage = "technical_review"
    world.p_a1.save()
    url = f"/partnerships/{world.p_a1.pk}/stage/"
    refused = login("s1_am").post(url, {"to_stage": "pilot"})
    assert refused.status_code == 422
    assert "technical survey" in refused.content.decode()
    override = login("s1_am").post(
        url, {"to_stage": "pilot", "override": "on", "reason": "Trust IT signed off"}
    )
    assert override.status_code == 403
    ok = login("s1_admin").post(
        url, {"to_stage": "pilot", "override": "on", "reason": "Trust IT signed off"}
    )
    assert ok.status_code == 302
    world.p_a1.refresh_from_db()
    assert world.p_a1.stage == "pilot"
    assert login("s1_agent").post(url, {"to_stage": "expansion"}).status_code in (403, 422)


def test_planning_completing_and_cancelling_visits(world, login):
    client = login("s1_am")
    day = timezone.localdate() + timedelta(days=14)
    bad = client.post(
        "/visits/plan/",
        {
            "partnership": world.p_a1.pk,
            "kind": "training",
            "day": day.isoformat(),
            "starts": "11:00",
            "ends": "10:00",
            "attend": "on",
        },
    )
    assert bad.status_code == 422 and "A visit ends after it starts." in bad.content.decode()
    ok = client.post(
        "/visits/plan/",
        {
            "partnership": world.p_a1.pk,
            "kind": "training",
            "day": day.isoformat(),
            "starts": "09:00",
            "ends": "10:30",
            "attend": "on",
            "agenda": "Y5 staff",
        },
    )
    assert ok.status_code == 302
    visit = Visit.objects.get(agenda="Y5 staff")
    assert list(visit.attendees.all()) == [world.s1_am]
    clash = client.post(
        "/visits/plan/",
        {
            "partnership": world.p_a1.pk,
            "kind": "review_meeting",
            "day": day.isoformat(),
            "starts": "10:00",
            "ends": "11:00",
            "attend": "on",
        },
    )
    assert clash.status_code == 422 and "Overlapping visit" in clash.content.decode()

    htmx = {"HTTP_HX_REQUEST": "true"}
    early = client.post(f"/visits/{visit.pk}/complete/", {"record_time": "on"}, **htmx)
    assert early.status_code == 422 and b"once it has started" in early.content
    Visit.objects.filter(pk=visit.pk).update(
        starts_at=timezone.now() - timedelta(hours=3), ends_at=timezone.now() - timedelta(hours=2)
    )
    done = client.post(
        f"/visits/{visit.pk}/complete/", {"record_time": "on", "notes": "Went well"}, **htmx
    )
    assert done.status_code == 200 and b"Completed" in done.content
    assert TimeEntry.objects.filter(visit=visit, mode="on_site", minutes=60).exists()

    other = world.v_a1
    assert client.post(f"/visits/{other.pk}/cancel/", {"reason": ""}, **htmx).status_code == 422
    cancelled = client.post(
        f"/visits/{other.pk}/cancel/", {"reason": "School closed for snow"}, **htmx
    )
    assert cancelled.status_code == 200 and b"School closed for snow" in cancelled.content
    assert client.post(f"/visits/{world.v_a2.pk}/cancel/", {"reason": "x"}).status_code == 404


def test_the_week_of_visits(world, login):
    week = timezone.localdate(world.v_a1.starts_at)
    html = login("s1_am").get(f"/visits/?week={week:%Y-%m-%d}").content.decode()
    assert "Technical survey" in html and "Ashfield Primary" in html
    assert "Training" not in html.split("Plan a visit")[0]  # v_a2 is Brightboard's
    assert login("s1_am").get("/visits/?week=garbage").status_code == 200


def test_nudge_schedule_preview_and_cancel(world, login):
    client = login("s1_am")
    html = client.get("/nudges/").content.decode()
    assert str(world.c_a_it) in html
    preview = client.get(
        f"/nudges/{world.n_a1.pk}/preview/", HTTP_HX_REQUEST="true"
    ).content.decode()
    assert f"Hello {world.c_a_it.first_name}" in preview
    assert "How is Acme Maths going at Ashfield Primary?" in preview
    assert "{{" not in preview
    response = client.post(f"/nudges/{world.n_a1.pk}/cancel/")
    assert response.status_code == 302
    assert Nudge.objects.get(pk=world.n_a1.pk).status == "cancelled"
    again = client.post(f"/nudges/{world.n_a1.pk}/cancel/", follow=True)
    assert b"Only a scheduled nudge can be cancelled." in again.content


def test_previewing_a_template_for_a_contact(world, login):
    client = login("s1_am")
    recipient = f"{world.p_a1.pk}:{world.c_a_teacher.pk}"
    response = client.get("/nudges/preview/", {"template": world.tpl_s1.pk, "recipient": recipient})
    assert response.status_code == 200
    assert f"Hello {world.c_a_teacher.first_name}" in response.content.decode()
    missing = client.get(
        "/nudges/preview/", {"template": "", "recipient": ""}, HTTP_HX_REQUEST="true"
    )
    assert missing.status_code == 422
    # Another supplier's template or contact is not a choice.
    foreign = client.get("/nudges/preview/", {"template": world.tpl_s2.pk, "recipient": recipient})
    assert foreign.status_code == 422
    foreign = client.get(
        "/nudges/preview/",
        {"template": world.tpl_s1.pk, "recipient": f"{world.p_a2.pk}:{world.c_a_dsl.pk}"},
    )
    assert foreign.status_code == 422
