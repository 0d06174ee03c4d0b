"""The folders the embedded default writes to, made by the processes that write there
(manage.py, the web server's WSGI/ASGI entry and Celery), never by importing settings:
importing settings (a test, a linter, `check --deploy`) must leave the disk as it was."""

from __future__ import annotations

from pathlib import Path


def ensure_dirs() -> None:
    from django.conf import settings

    folders = [Path(settings.VAR_DIR), Path(settings.STATIC_ROOT)]
    database = settings.DATABASES["default"]
    if database["ENGINE"] == "django.db.backends.sqlite3" and str(database["NAME"]) != ":memory:":
        folders.append(Path(database["NAME"]).parent)  # SQLite makes the file, not its folder
    # kombu's filesystem transport does not create its folders either.
    options = getattr(settings, "CELERY_BROKER_TRANSPORT_OPTIONS", {})
    if str(getattr(settings, "CELERY_BROKER_URL", "")).startswith("filesystem://"):
        folders += [
            Path(options[key])
            for key in ("data_folder_in", "data_folder_out", "control_folder", "processed_folder")
            if options.get(key)
        ]
    for folder in folders:
        folder.mkdir(parents=True, exist_ok=True)
