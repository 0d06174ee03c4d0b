"""What every historical (audit) row carries besides simple-history's own columns.

``audit`` is a leaf package: it imports no project app. The domain models opt in with
``history = HistoricalRecords(bases=[AuditFields], ...)``; the channel and the "via"
(task, command or URL name) are filled by the ``pre_create_historical_record`` handler
in ``audit/apps.py`` from ``audit.context``.
"""

from django.db import models


class Channel(models.TextChoices):
    PAGE = "page", "Page"
    API = "api", "API"
    ADMIN = "admin", "Admin"
    TASK = "task", "Background task"
    INBOUND = "inbound", "Inbound email"
    COMMAND = "command", "Management command"
    SYSTEM = "system", "System"


class AuditFields(models.Model):
    history_channel = models.CharField(
        max_length=10, choices=Channel.choices, default=Channel.SYSTEM
    )
    # The task name, command name or URL name the change came through.
    history_via = models.CharField(max_length=200, blank=True, default="")

    class Meta:
        abstract = True
