from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "audit"
    verbose_name = "Audit trail (recording)"

    def ready(self) -> None:
        from simple_history.signals import pre_create_historical_record

        from . import signals

        pre_create_historical_record.connect(
            signals.fill_channel, dispatch_uid="audit.fill_channel"
        )
        try:
            from celery.signals import task_postrun, task_prerun
        except ImportError:  # pragma: no cover - celery is a dependency
            return
        task_prerun.connect(signals.task_started, dispatch_uid="audit.task_started", weak=False)
        task_postrun.connect(signals.task_finished, dispatch_uid="audit.task_finished", weak=False)
