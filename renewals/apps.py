from django.apps import AppConfig


class RenewalsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "renewals"
    verbose_name = "Renewals"

    def ready(self) -> None:
        # A survey nudge's answer link is filled only in the email sent (nudges/context.py).
        from nudges.context import register_personal_link

        from .survey import OCCURRENCE_PREFIX, PLACEHOLDER, survey_links

        register_personal_link(OCCURRENCE_PREFIX, PLACEHOLDER, survey_links)
