"""A contact's reply to a nudge on the partnership's timeline, and resuming the rule it
stopped, from the account manager's page."""

from __future__ import annotations

from nudges.models import NudgeReply


def _stopping(world) -> NudgeReply:
    reply = world.nr_b2
    reply.stopped_rule = world.rule_s2
    reply.save(update_fields=["stopped_rule"])
    return reply


def test_the_account_manager_reads_the_reply_and_resumes_the_rule(world, login):
    reply = _stopping(world)
    page = login("s2_am").get(f"/partnerships/{world.p_b2.pk}/")
    html = page.content.decode()
    assert "replied to a nudge" in html and "Reply nr_b2" in html
    assert "stopped: Pilot ends" in html
    url = f"/partnerships/{world.p_b2.pk}/replies/{reply.pk}/resume/"
    assert url in html
    done = login("s2_am").post(url, follow=True)
    assert done.status_code == 200 and "will get" in done.content.decode()
    reply.refresh_from_db()
    assert not reply.is_stopping
    assert url not in done.content.decode()  # nothing left to resume


def test_only_managers_resume_and_other_suppliers_get_404(world, login):
    reply = _stopping(world)
    url = f"/partnerships/{world.p_b2.pk}/replies/{reply.pk}/resume/"
    agent_page = login("s2_agent").get(f"/partnerships/{world.p_b2.pk}/").content.decode()
    assert "Reply nr_b2" in agent_page and url not in agent_page
    assert login("s2_agent").post(url).status_code == 403
    assert login("s1_am").post(url).status_code == 404
    # The reply's id under another partnership's address is not found either.
    assert (
        login("s2_am").post(f"/partnerships/{world.p_a2.pk}/replies/{reply.pk}/resume/").status_code
        == 404
    )
    reply.refresh_from_db()
    assert reply.is_stopping
