"""Persistent database connections only where a process reuses its threads: under DEBUG
(make run: runserver, one thread per request) each request's connection is closed at its
end, so requests do not leave idle PostgreSQL connections behind."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _conn_max_age(**env: str) -> int:
    full = {k: v for k, v in os.environ.items() if k not in ("DEBUG", "CONN_MAX_AGE")}
    full.update(DJANGO_SETTINGS_MODULE="partnership_crm.settings", VAR_DIR="/tmp/crm-conn-test")
    full.update(env)
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            "from django.conf import settings as s; print(s.DATABASES['default']['CONN_MAX_AGE'])",
        ],
        cwd=ROOT,
        env=full,
        capture_output=True,
        text=True,
        check=True,
    )
    return int(out.stdout.strip().splitlines()[-1])


def test_make_run_keeps_no_connection_after_a_request_and_production_reuses_them() -> None:
    pg = "postgres://postgres@127.0.0.1:5432/any"
    assert _conn_max_age(DEBUG="true", DATABASE_URL=pg) == 0
    assert _conn_max_age(DEBUG="false", DATABASE_URL=pg, SECRET_KEY="x" * 50) == 60
    assert _conn_max_age(DEBUG="false", DATABASE_URL=pg, SECRET_KEY="x" * 50, CONN_MAX_AGE="0") == 0
