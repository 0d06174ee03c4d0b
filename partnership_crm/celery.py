import os
from typing import Any

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "partnership_crm.settings")

app = Celery("partnership_crm")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@app.on_after_configure.connect
def _make_folders(sender: Any, **kwargs: Any) -> None:
    """The filesystem broker's (and SQLite's) folders, once the app reads its settings."""
    from .var import ensure_dirs

    ensure_dirs()
