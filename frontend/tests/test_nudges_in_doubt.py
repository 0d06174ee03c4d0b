"""The supplier admin's nudge page shows the nudges held in doubt, with one click to send
each again or leave it, and says when SendGrid's event webhook is missing."""

from __future__ import annotations

from django.utils import timezone

from nudges.models import Nudge


def _held(world) -> Nudge:
    nudge = world.n_a1
    Nudge.objects.filter(pk=nudge.pk).update(
        status=Nudge.Status.HELD,
        send_attempted_at=timezone.now(),
        rendered_subject="How is it going, Ivan?",
        status_reason="no word from SendGrid",
    )
    nudge.refresh_from_db()
    return nudge


def test_the_supplier_admin_sends_a_held_nudge_again_from_the_page(world, login):
    nudge = _held(world)
    page = login("s1_admin").get("/nudges/").content.decode()
    assert "In doubt (1)" in page and "How is it going, Ivan?" in page
    url = f"/nudges/{nudge.pk}/decide/"
    assert url in page
    done = login("s1_admin").post(url, {"decision": "resend"}, follow=True)
    assert "will be sent again" in done.content.decode()
    nudge.refresh_from_db()
    assert nudge.status == "scheduled" and nudge.decided_by == world.users["s1_admin"]
    assert "In doubt (" not in done.content.decode()


def test_only_the_admin_sees_and_decides_and_another_supplier_gets_404(world, login):
    nudge = _held(world)
    assert "In doubt (" not in login("s1_am").get("/nudges/").content.decode()
    url = f"/nudges/{nudge.pk}/decide/"
    refused = login("s1_am").post(url, {"decision": "drop"}, follow=True)
    assert "admins decide" in refused.content.decode()
    assert login("s2_admin").post(url, {"decision": "drop"}).status_code == 404
    nudge.refresh_from_db()
    assert nudge.status == "held"


def test_the_page_says_when_the_event_webhook_is_missing(world, login, settings):
    settings.SENDGRID_API_KEY = "SG.test"
    settings.SENDGRID_WEBHOOK_PUBLIC_KEY = ""
    assert "event webhook is not set up" in login("s1_admin").get("/nudges/").content.decode()
    settings.SENDGRID_WEBHOOK_PUBLIC_KEY = "MFkw..."
    assert "event webhook is not set up" not in login("s1_admin").get("/nudges/").content.decode()
