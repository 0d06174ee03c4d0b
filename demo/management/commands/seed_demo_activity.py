from typing import Any

from django.core.management.base import BaseCommand

from demo.activity import seed_activity


class Command(BaseCommand):
    help = "Add demo activity (tickets, visits, readiness, time, nudges) to the seeded demo."

    def handle(self, *args: Any, **options: Any) -> None:
        counts = seed_activity()
        if not counts:
            self.stdout.write("Tickets already exist; demo activity left as it is.")
            return
        self.stdout.write(
            "Demo activity: " + ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in counts.items())
        )
