"""manage.py runs with the settings named on its command line, as `make lint` calls it
(`--settings=partnership_crm.settings_test`, no SECRET_KEY, DEBUG off), from a fresh clone."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_manage_py_honours_settings_on_the_command_line() -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("DEBUG", "SECRET_KEY")}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    for args in (
        ["--settings=partnership_crm.settings_test"],
        ["--settings", "partnership_crm.settings_test"],
    ):
        done = subprocess.run(
            [sys.executable, "manage.py", "check", *args],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
        )
        assert done.returncode == 0, done.stderr[-2000:]
        assert "no issues" in done.stdout
