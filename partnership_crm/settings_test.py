"""Test settings: the same settings module, with only what tests need on top."""

import os
import tempfile

os.environ.setdefault("SECRET_KEY", "tests-only-not-a-secret")
# One key space per test process (xdist workers share the Redis database). Always set, never
# defaulted: workers inherit the controlling process's environment, and with one shared
# prefix each worker's per-test cache cleanup deleted the other's keys mid-test.
os.environ["CACHE_KEY_PREFIX"] = f"crm-test-{os.getpid()}"

from .settings import *  # noqa: F403
from .settings import DATABASES, VAR_DIR

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
CELERY_TASK_ALWAYS_EAGER = True
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    # One folder per test process (xdist workers), removed when the session ends
    # (conftest.py), so a test can see exactly which files it left behind.
    "attachments": {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {
            "location": os.path.join(tempfile.gettempdir(), f"crm-test-attachments-{os.getpid()}")
        },
    },
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # A file, not :memory:, so that a real Celery worker started by a test sees it. (Only
    # the test settings make a folder on import: pytest starts no manage.py.)
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test-db.sqlite3")}
    VAR_DIR.mkdir(parents=True, exist_ok=True)
# Replies by email on, with a known webhook secret for the tests' Inbound Parse fake.
INBOUND_DOMAIN = "reply.test"
INBOUND_SECRET = "inbound-test-secret"
