from __future__ import annotations

from argparse import ArgumentParser
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, OutputWrapper
from tqdm import tqdm

from accounts.demo import DEMO_PASSWORD, STEPS, Login, demo_logins, seed_demo
from accounts.models import Organisation, User


class _RawStream:
    """tqdm redraws its bar with carriage returns; OutputWrapper would add a newline
    to every write, so hand tqdm the writes without one."""

    def __init__(self, wrapper: OutputWrapper) -> None:
        self._wrapper = wrapper

    def write(self, text: str) -> None:
        self._wrapper.write(text, ending="")

    def flush(self) -> None:
        self._wrapper.flush()


class Command(BaseCommand):
    help = (
        "Create the demo (3 suppliers, 40 schools, 2 trusts, users of every role, "
        "partnerships at every stage). Safe to run again: it only adds what is missing."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument(
            "--if-empty",
            action="store_true",
            help="Do nothing if the database already holds any organisation.",
        )
        parser.add_argument(
            "--public-password-ok",
            action="store_true",
            help="Seed even with DEBUG off (the demo users share a published password).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if not settings.DEBUG and not options["public_password_ok"]:
            raise CommandError(
                "seed_demo makes users whose password is printed in the README: it runs with "
                "DEBUG on (as `make run` does), or with --public-password-ok on a demo server."
            )
        if options["if_empty"] and Organisation.objects.exists():
            self.stdout.write("Organisations already exist; --if-empty leaves the database alone.")
            # Still show the logins when the demo is what is there, so `make run` can
            # always tell people how to sign in; never for someone's real data.
            logins = demo_logins()
            present = set(
                User.objects.filter(email__in=[x.email for x in logins]).values_list(
                    "email", flat=True
                )
            )
            if present == {x.email for x in logins}:
                self._print_logins(logins)
            return

        with tqdm(
            total=len(STEPS),
            desc="Seeding demo",
            unit="step",
            file=_RawStream(self.stderr),
            leave=False,
        ) as bar:

            def advance(label: str) -> None:
                bar.set_postfix_str(f"{label} done")
                bar.update()

            result = seed_demo(on_step=advance)

        if result.created_anything:
            made = ", ".join(f"{n} {label}" for label, n in result.created.items() if n)
            self.stdout.write(self.style.SUCCESS(f"Demo data created: {made}."))
        else:
            self.stdout.write("Demo data already present: nothing new created.")
        self._print_logins(result.logins)

    def _print_logins(self, logins: list[Login]) -> None:
        self.stdout.write(
            f'\nDemo logins (password for every demo user: "{DEMO_PASSWORD}"; '
            "demo data only, never use it for a real account):"
        )
        width = max(len(x.email) for x in logins)
        for login in logins:
            self.stdout.write(f"  {login.role:<16} {login.email:<{width}}  {login.organisation}")
