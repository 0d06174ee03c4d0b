from django.apps import AppConfig


class VisitsConfig(AppConfig):
    name = "visits"

    def ready(self) -> None:
        from accounts.hooks import register_promise_change
        from accounts.stages import register_readiness_check

        from .corrections import promise_change_record
        from .services import is_ready_for_pilot

        register_readiness_check(is_ready_for_pilot)
        # Lowering the promised on-site hours needs a reason, recorded for the school.
        register_promise_change(promise_change_record)
