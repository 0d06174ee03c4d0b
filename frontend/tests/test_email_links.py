"""Every link in the emails beyond tickets opens for its reader: a nudge's links (its
unsubscribe page, for a contact who may have no account), and the account manager's
email about a reply to a nudge."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from email import message_from_bytes, policy
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core import mail

from nudges.dispatch import dispatch_due
from nudges.models import Nudge
from nudges.outbox import OutboxBatchSender
from nudges.replies import record_reply

LINK = re.compile(r"https?://[^\s<>\"]+")
MONDAY_10 = datetime(2026, 11, 23, 10, tzinfo=ZoneInfo("Europe/London"))  # in term


def _paths(text: str) -> list[str]:
    urls = [u.rstrip(".,)") for u in LINK.findall(text)]
    ours = [u for u in urls if u.startswith(settings.SITE_URL)]
    assert ours == urls, f"a link that is not ours: {urls}"
    return [u.removeprefix(settings.SITE_URL) for u in ours]


def test_every_link_in_a_nudge_opens_for_the_contact(world, client, tmp_path):
    Nudge.objects.exclude(pk=world.n_b2.pk).update(next_attempt_at=MONDAY_10 + timedelta(days=9))
    Nudge.objects.filter(pk=world.n_b2.pk).update(next_attempt_at=MONDAY_10)
    dispatch_due(now=MONDAY_10, sender=OutboxBatchSender(tmp_path))
    (eml,) = tmp_path.glob("*.eml")
    message = message_from_bytes(eml.read_bytes(), policy=policy.default)
    text = message.get_body(preferencelist=("plain",)).get_content()
    html = message.get_body(preferencelist=("html",)).get_content()
    header = message["List-Unsubscribe"].strip("<>")
    paths = set(_paths(text) + _paths(html) + _paths(header))
    assert any(p.startswith("/unsubscribe/") for p in paths), paths
    for path in paths:  # signed out: the contact need not have an account
        assert client.get(path).status_code == 200, path


def test_every_link_in_the_nudge_reply_email_opens_for_the_account_manager(
    world, login, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        record_reply(nudge=world.n_b2, subject="Re: Hello", body="Call me.", is_auto=False)
    (told,) = mail.outbox
    assert told.to == [world.s2_am.email]
    paths = _paths(told.body)
    assert paths
    for path in paths:
        assert login("s2_am").get(path).status_code == 200, path
