from django.apps import AppConfig


class TermFeedsConfig(AppConfig):
    name = "termfeeds"
    verbose_name = "Term-date subscriptions"
