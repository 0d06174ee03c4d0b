from django.apps import AppConfig


class NudgesConfig(AppConfig):
    name = "nudges"

    def ready(self) -> None:
        from . import checks  # noqa: F401  (registers the startup checks)
