"""``manage.py erase_person --email <addr> [--yes]``: the operator erases every contact
held under an address (at any school) and the user account (privacy/erasure.py)."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts.models import Contact
from privacy.erasure import Operator, erase_person


class Command(BaseCommand):
    help = "Erase a person (every contact with the address, and their sign-in)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--email", required=True)
        parser.add_argument("--yes", action="store_true", help="Do not ask to confirm.")

    def handle(self, *args: Any, **options: Any) -> None:
        email = options["email"].strip().lower()
        held = Contact.objects.filter(email__iexact=email, erased_at__isnull=True).count()
        if not options["yes"]:
            answer = input(
                f"Erase {email} ({held} contact record(s))? This cannot be undone [y/N] "
            )
            if answer.strip().lower() not in ("y", "yes"):
                raise CommandError("Not erased.")
        try:
            erasure = erase_person(by=Operator(), email=email)
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from exc
        self.stdout.write(f"Erased: erasure #{erasure.pk}, rows changed {erasure.counts}")
