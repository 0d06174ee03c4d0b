from typing import Any

from django.core.management import call_command

from accounts.models import Partnership
from nudges.models import Nudge
from tickets.models import Ticket
from visits.models import TimeEntry, Visit


def test_the_demo_has_activity_everywhere_and_seeding_twice_adds_nothing(db: Any) -> None:
    call_command("seed_demo", "--public-password-ok", verbosity=0)
    call_command("seed_demo_activity", verbosity=0)
    counts = (
        Ticket.objects.count(),
        Visit.objects.count(),
        TimeEntry.objects.count(),
        Nudge.objects.count(),
    )
    assert counts[0] > 20 and counts[1] > 20 and counts[2] > 20
    assert Ticket.objects.filter(status="new").exists()
    assert Ticket.objects.filter(rating__isnull=False).exists()
    assert Visit.objects.filter(status="planned").exists()
    # the readiness evidence is real: a live pilot has a completed survey rated ready
    pilot = Partnership.objects.filter(stage="pilot").first()
    assert Visit.objects.filter(
        partnership=pilot,
        kind="technical_survey",
        status="completed",
        assessment__outcome="ready_with_conditions",
    ).exists()
    call_command("seed_demo_activity", verbosity=0)
    assert (
        Ticket.objects.count(),
        Visit.objects.count(),
        TimeEntry.objects.count(),
        Nudge.objects.count(),
    ) == counts
