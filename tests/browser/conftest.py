"""Browser tests: Playwright driving Debian's Chromium (never a downloaded browser) against
one live server.

Without /usr/bin/chromium these tests skip with a message, except under CI=true, where
they fail (.ci/run installs it). SAVE_SCREENSHOTS=1 writes each main page to
docs/screenshots/; a failing test leaves screenshots of its open pages in test-results/.
"""

from __future__ import annotations

import os

# Playwright's sync API runs an event loop in this thread; the ORM calls made by the tests
# themselves (fixtures, assertions) are still synchronous and safe.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = "/usr/bin/chromium"
ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "docs" / "screenshots"
FAILURES = ROOT / "test-results"
PHONE = {"width": 375, "height": 812}
DESKTOP = {"width": 1280, "height": 900}


def _require_chromium() -> None:
    if os.path.exists(CHROMIUM):
        return
    message = (
        f"Chromium is not installed at {CHROMIUM} (apt-get install -y chromium fonts-dejavu-core)"
    )
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI=true: {message}", pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict[str, Any]) -> dict[str, Any]:
    _require_chromium()
    return {**browser_type_launch_args, "executable_path": CHROMIUM}


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: Any) -> Any:
    report = yield
    if report.when == "call":
        item.failed_in_call = report.failed  # type: ignore[attr-defined]
    return report


@pytest.fixture
def shots(request: pytest.FixtureRequest) -> Iterator[list[Any]]:
    """Pages registered here are screenshotted into test-results/ if the test fails."""
    pages: list[Any] = []
    yield pages
    if getattr(request.node, "failed_in_call", False):
        FAILURES.mkdir(exist_ok=True)
        for i, page in enumerate(pages):
            with contextlib.suppress(Exception):  # a closed page has nothing to show
                page.screenshot(path=str(FAILURES / f"{request.node.name}-{i}.png"), full_page=True)


def save_screenshot(page: Any, name: str) -> None:
    if os.environ.get("SAVE_SCREENSHOTS") == "1":
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)
