from django.apps import AppConfig


class VisitsConfig(AppConfig):
    name = "visits"

    def ready(self) -> None:
        from accounts.stages import register_readiness_check

        from .services import is_ready_for_pilot

        register_readiness_check(is_ready_for_pilot)
