from typing import Any

from django.core.management.base import BaseCommand

from demo.activity import seed_activity
from demo.renewals import seed_renewals


class Command(BaseCommand):
    help = "Add demo activity (tickets, visits, readiness, time, nudges) to the seeded demo."

    def handle(self, *args: Any, **options: Any) -> None:
        counts = seed_activity()
        if not counts:
            self.stdout.write("Tickets already exist; demo activity left as it is.")
        else:
            self.stdout.write(
                "Demo activity: "
                + ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in counts.items())
            )
        renewals = seed_renewals()
        if not renewals:
            self.stdout.write("Agreement terms already exist; demo renewals left as they are.")
            return
        self.stdout.write(
            "Demo renewals: " + ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in renewals.items())
        )
