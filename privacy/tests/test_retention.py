"""Retention (privacy/retention.py): exactly what is past its period is deleted or blanked,
in batches, files gone from storage, reports unchanged, nothing more on a second run."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO

import pytest
from django.conf import settings
from django.core.management import call_command
from django.utils import timezone

from audit.registry import tracked_models
from inbound.models import InboundEmail
from nudges.models import Nudge, NudgeEvent
from privacy import retention
from privacy.tasks import apply_retention as apply_retention_task
from reports.scorecards import nudge_figures, ticket_figures
from tickets.models import Ticket, TicketAttachment, TicketMessage

pytestmark = pytest.mark.django_db

MINUTE = timedelta(minutes=1)


def days(kind: str) -> timedelta:
    return timedelta(days=settings.RETENTION_DAYS[kind])


def close(ticket: Ticket, at) -> None:
    Ticket.objects.filter(pk=ticket.pk).update(status="closed", outcome="fixed", closed_at=at)


def test_ticket_messages_and_files_of_tickets_closed_past_the_limit_go(
    world, django_capture_on_commit_callbacks
):
    now = timezone.now()
    storage = TicketAttachment._meta.get_field("file").storage
    old, recent, open_ = world.t_a1, world.t_a2, world.t_b2
    close(old, now - days("ticket_messages") - MINUTE)  # one minute past: due
    close(recent, now - days("ticket_messages") + MINUTE)  # one minute short: kept
    files = list(TicketAttachment.objects.filter(ticket=old).values_list("file", flat=True))
    assert files and all(storage.exists(n) for n in files)
    kept_messages = set(TicketMessage.objects.exclude(ticket=old).values_list("pk", flat=True))
    kept_files = list(TicketAttachment.objects.exclude(ticket=old).values_list("file", flat=True))
    assert kept_messages and kept_files
    figures = ticket_figures(Ticket.objects.all(), ["supplier_id"], now)

    # Files are deleted once the rows' deletion commits.
    with django_capture_on_commit_callbacks(execute=True):
        counts = retention.apply_retention(now=now, batch=2)

    assert counts["ticket_messages"] == 2 + 3  # two messages, three attachments
    assert not TicketMessage.objects.filter(ticket=old).exists()
    assert not TicketAttachment.objects.filter(ticket=old).exists()
    assert not any(storage.exists(n) for n in files)
    assert set(TicketMessage.objects.values_list("pk", flat=True)) == kept_messages
    assert all(storage.exists(n) for n in kept_files)
    assert Ticket.objects.filter(pk__in=[old.pk, recent.pk, open_.pk]).count() == 3
    # The scorecard's figures come from the ticket rows, which stay.
    assert ticket_figures(Ticket.objects.all(), ["supplier_id"], now) == figures
    assert retention.apply_retention(now=now, batch=2)["ticket_messages"] == 0


def test_more_than_one_batch(world):
    now = timezone.now()
    close(world.t_b2, now - days("ticket_messages") - MINUTE)
    for i in range(4):  # with m_b2_public: 5 due
        TicketMessage.objects.create(ticket=world.t_b2, author=world.b_teacher, body=f"Message {i}")
    assert retention.due_counts(now=now)["ticket_messages"] == 5
    seen = []
    original = retention._in_batches

    def spy(queryset, act, batch):
        return original(queryset, lambda pks: seen.append(len(pks)) or act(pks), batch)

    retention._in_batches = spy
    try:
        assert retention.ticket_messages(now=now, batch=2) == 5
    finally:
        retention._in_batches = original
    assert seen == [2, 2, 1]
    assert not TicketMessage.objects.filter(ticket=world.t_b2).exists()


def test_nudge_bodies_blanked_a_year_after_sending(world):
    now = timezone.now()
    n_old, n_recent, n_unsent = world.n_a1, world.n_a2, world.n_b2
    body = dict(
        subject="Hi",
        body_text="Dear Ann",
        body_html="<p>Dear Ann</p>",
        rendered_subject="Hi Ann",
        rendered_text="Dear Ann, how is it going?",
        rendered_html="<p>Dear Ann, how is it going?</p>",
    )
    Nudge.objects.filter(pk=n_old.pk).update(
        status="sent", sent_at=now - days("nudge_bodies") - MINUTE, **body
    )
    Nudge.objects.filter(pk=n_recent.pk).update(
        status="sent", sent_at=now - days("nudge_bodies") + MINUTE, **body
    )
    Nudge.objects.filter(pk=n_unsent.pk).update(**body)  # scheduled: kept
    sent_before = nudge_figures(Nudge.objects.all(), world_opt_outs(), ["supplier_id"])

    assert retention.apply_retention(now=now)["nudge_bodies"] == 1

    old = Nudge.objects.get(pk=n_old.pk)
    assert [getattr(old, f) for f in body] == [""] * len(body)
    assert old.status == "sent" and old.sent_at is not None and old.contact_id
    for pk in (n_recent.pk, n_unsent.pk):
        assert Nudge.objects.get(pk=pk).rendered_html == body["rendered_html"]
    assert nudge_figures(Nudge.objects.all(), world_opt_outs(), ["supplier_id"]) == sent_before
    assert retention.apply_retention(now=now)["nudge_bodies"] == 0


def world_opt_outs():
    from nudges.models import OptOut

    return OptOut.objects.all()


def test_webhook_payloads_blanked_after_90_days_keeping_kind_and_time(world):
    now = timezone.now()
    limit = now - days("webhook_payloads")
    events = {
        name: NudgeEvent.objects.create(
            nudge=world.n_a1,
            sg_event_id=name,
            event="bounce",
            email="ann@school-a.example",
            reason="550 mailbox unavailable",
            occurred_at=at,
            received_at=at,
        )
        for name, at in [("old", limit - MINUTE), ("new", limit + MINUTE)]
    }
    assert retention.apply_retention(now=now)["webhook_payloads"] == 1
    old = NudgeEvent.objects.get(pk=events["old"].pk)
    assert (old.email, old.reason) == ("", "")
    assert (old.event, old.occurred_at) == ("bounce", events["old"].occurred_at)
    new = NudgeEvent.objects.get(pk=events["new"].pk)
    assert new.email == "ann@school-a.example" and new.reason
    assert NudgeEvent.objects.filter(event="bounce").count() == 2
    assert retention.apply_retention(now=now)["webhook_payloads"] == 0


def test_inbound_mail_blanked_after_30_days(db):
    now = timezone.now()
    limit = now - days("inbound_raw")
    for key, at in [("old", limit - MINUTE), ("new", limit + MINUTE)]:
        InboundEmail.objects.create(
            dedup_key=key,
            received_at=at,
            sender="ann@school-a.example",
            recipient="reply+tok@crm.example",
            subject="Re: your ticket",
            status="accepted",
        )
    out = StringIO()
    call_command("apply_retention", "--dry-run", stdout=out)
    assert "inbound_raw" in out.getvalue()
    assert InboundEmail.objects.filter(sender="").count() == 0  # dry run changed nothing
    assert retention.due_counts(now=now)["inbound_raw"] == 1

    assert retention.apply_retention(now=now)["inbound_raw"] == 1
    old = InboundEmail.objects.get(dedup_key="old")
    assert (old.sender, old.recipient, old.subject, old.status) == ("", "", "", "accepted")
    assert InboundEmail.objects.get(dedup_key="new").sender == "ann@school-a.example"
    assert retention.apply_retention(now=now)["inbound_raw"] == 0


def test_audit_trail_rows_older_than_six_years_go_in_every_history_table(world):
    now = timezone.now()
    limit = now - days("audit")
    historicals = [h for _, h in tracked_models()]
    assert len(historicals) >= 5  # the world creates rows in many of them
    old_pks, new_pks = {}, {}
    for h in historicals:
        rows = list(h._default_manager.order_by("pk").values_list("pk", flat=True)[:2])
        if len(rows) < 2:
            continue
        h._default_manager.filter(pk=rows[0]).update(history_date=limit - MINUTE)
        h._default_manager.filter(pk=rows[1]).update(history_date=limit + MINUTE)
        old_pks[h], new_pks[h] = rows
    assert len(old_pks) >= 3
    due = retention.due_counts(now=now)["audit"]
    assert due == len(old_pks)

    assert retention.apply_retention(now=now, batch=2)["audit"] == len(old_pks)

    for h, pk in old_pks.items():
        assert not h._default_manager.filter(pk=pk).exists(), h.__name__
        assert h._default_manager.filter(pk=new_pks[h]).exists(), h.__name__
    assert retention.apply_retention(now=now)["audit"] == 0


def test_m2m_snapshots_go_with_their_historical_row(world):
    from audit.registry import m2m_history_models

    now = timezone.now()
    pairs = [(h, m2m) for h, m2m in m2m_history_models() if m2m._default_manager.exists()]
    assert pairs, "the world records a cohort or products snapshot"
    historical, m2m = pairs[0]
    history_id = m2m._default_manager.values_list("history_id", flat=True).first()
    historical._default_manager.filter(pk=history_id).update(
        history_date=now - days("audit") - MINUTE
    )
    retention.audit(now=now)
    assert not historical._default_manager.filter(pk=history_id).exists()
    assert not m2m._default_manager.filter(history_id=history_id).exists()


def test_task_and_command_apply_it(world):
    now = timezone.now()
    NudgeEvent.objects.create(
        nudge=world.n_a1,
        sg_event_id="e1",
        event="delivered",
        email="ann@school-a.example",
        occurred_at=now - days("webhook_payloads") - timedelta(days=1),
        received_at=now - days("webhook_payloads") - timedelta(days=1),
    )
    counts = apply_retention_task.delay().get()
    assert counts["webhook_payloads"] == 1
    assert NudgeEvent.objects.get(sg_event_id="e1").email == ""
    out = StringIO()
    call_command("apply_retention", stdout=out)
    assert "webhook_payloads" in out.getvalue() and "0 rows done" in out.getvalue()
