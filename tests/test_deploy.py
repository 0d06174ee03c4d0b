"""What a production deploy runs and the tests otherwise never do (issue 17, item 23): its
static files storage (hashed names from a manifest, which fails a page that names a
missing file), `manage.py check --deploy` with the environment a deploy sets, and
importing settings without writing to the disk."""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.core.management import call_command
from django.test import Client, override_settings

import partnership_crm.settings as production_settings

BASE_DIR = Path(settings.BASE_DIR)


def _env(var_dir: Path, **extra: str | None) -> dict[str, str]:
    """The environment a production deploy sets (README's configuration table); an extra
    of None unsets that variable."""
    # Not DJANGO_ALLOW_ASYNC_UNSAFE either: the browser tests (pytest-playwright) set it in
    # this process, and a deploy never has it.
    skip = ("DJANGO_SETTINGS_MODULE", "DEBUG", "DJANGO_ALLOW_ASYNC_UNSAFE")
    env = {k: v for k, v in os.environ.items() if k not in skip}
    env.update(
        DJANGO_SETTINGS_MODULE="partnership_crm.settings",
        DEBUG="false",
        SECRET_KEY=secrets.token_urlsafe(50),
        ALLOWED_HOSTS="crm.example.org",
        CSRF_TRUSTED_ORIGINS="https://crm.example.org",
        SECURE_SSL_REDIRECT="true",
        SECURE_HSTS_SECONDS="31536000",
        SECURE_HSTS_INCLUDE_SUBDOMAINS="true",
        SECURE_HSTS_PRELOAD="true",
        VAR_DIR=str(var_dir),
    )
    for name, value in extra.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env


def test_check_deploy_is_clean_with_the_production_environment(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=BASE_DIR,
        env=_env(tmp_path / "var"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_importing_settings_writes_nothing(tmp_path: Path) -> None:
    """A test, a linter or a check imports settings; only processes that write to var/
    (manage.py, the WSGI entry, Celery) make its folders."""
    var_dir = tmp_path / "var"
    for debug in ("false", "true"):
        env = _env(var_dir, DEBUG=debug, DATABASE_URL=None, REDIS_URL=None, CELERY_BROKER_URL=None)
        code = "import partnership_crm.settings as s; print(s.STATIC_ROOT)"
        result = subprocess.run(
            [sys.executable, "-c", code],
            cwd=BASE_DIR,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr
        assert not var_dir.exists(), f"DEBUG={debug}: {sorted(var_dir.rglob('*'))}"
    made = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=BASE_DIR,
        env=_env(var_dir, DEBUG="true", DATABASE_URL=None, REDIS_URL=None, CELERY_BROKER_URL=None),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert made.returncode == 0, made.stderr
    assert (var_dir / "static").is_dir()
    assert (var_dir / "celery" / "queue").is_dir()  # the embedded broker's folders


@pytest.fixture
def collected(tmp_path: Path) -> Any:
    """Static files collected as a deploy does, with production's storage."""
    storage = production_settings.STORAGES["staticfiles"]
    assert "Manifest" in storage["BACKEND"], storage  # DEBUG off: hashed names
    storages = {**settings.STORAGES, "staticfiles": storage}
    with override_settings(STATIC_ROOT=str(tmp_path), STORAGES=storages, DEBUG=False):
        call_command("collectstatic", "--noinput", verbosity=0)
        yield tmp_path


def test_pages_render_with_the_manifest_storage_of_a_deploy(world: Any, collected: Path) -> None:
    pages = [
        (None, "/accounts/sign-in/"),
        ("s1_am", "/portfolio/"),
        ("s1_am", "/tickets/"),
        ("s1_am", "/nudges/"),
        ("a_lead", "/school/scorecard/"),
        ("a_teacher", "/feedback/"),
        ("s1_am", "/api/docs/"),
    ]
    assert (collected / "staticfiles.json").exists()
    for user, url in pages:
        client = Client()
        if user:
            client.force_login(world.users[user])
        response = client.get(url)
        assert response.status_code == 200, (url, response.status_code)
        html = response.content.decode()
        hashed = re.findall(r"/static/([\w./-]+\.[0-9a-f]{12}\.(?:css|js))", html)
        assert hashed, f"{url} names no hashed static file"
        for name in hashed:
            assert (collected / name).is_file(), (url, name)
