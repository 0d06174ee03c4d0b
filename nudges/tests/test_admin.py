"""The nudge admin shows what the dispatcher did and changes nothing: a nudge edited by
hand could go twice or to another tenant."""

from __future__ import annotations

from typing import Any

from django.urls import reverse

from nudges.models import Nudge, SendAttempt


def test_support_reads_a_nudge_and_its_request_but_cannot_change_or_delete_them(
    admin_client: Any, world: Any
) -> None:
    nudge = world.n_a1
    attempt = SendAttempt.objects.create(started_at=nudge.due_at, emails=1, outcome="unknown")
    Nudge.objects.filter(pk=nudge.pk).update(attempt=attempt, status="held")
    listing = admin_client.get(reverse("admin:nudges_nudge_changelist"), {"status__exact": "held"})
    assert listing.status_code == 200 and f"{nudge.pk}" in listing.content.decode()
    change = reverse("admin:nudges_nudge_change", args=[nudge.pk])
    page = admin_client.get(change)
    assert page.status_code == 200 and 'name="_save"' not in page.content.decode()
    admin_client.post(change, {"status": "scheduled", "supplier": world.s2.pk})
    nudge.refresh_from_db()
    assert (nudge.status, nudge.supplier_id) == ("held", world.s1.pk)
    delete = reverse("admin:nudges_nudge_delete", args=[nudge.pk])
    assert admin_client.post(delete, {"post": "yes"}).status_code == 403
    assert Nudge.objects.filter(pk=nudge.pk).exists()
    assert admin_client.get(reverse("admin:nudges_nudge_add")).status_code == 403
    assert admin_client.get(reverse("admin:nudges_sendattempt_changelist")).status_code == 200
