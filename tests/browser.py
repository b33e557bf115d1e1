"""Headless Chromium for the page tests (tests/maps, tests/ogc): one browser per test session,
shared by every module (Playwright's sync API cannot run two at once), and the locally served
map libraries. Registered for the whole suite by ``pytest_plugins`` in tests/conftest.py.
Without Chromium or Playwright the page tests are skipped locally; in CI that is a failure."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gis.errors import GisError
from gis.maps.assets import assets_dir_for, assets_ready, fetch_assets

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def _unavailable(reason: str) -> None:
    if IN_CI:
        pytest.fail(f"CI needs the browser test: {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def assets_dir() -> Path:
    """The fetched Leaflet files (fetched now from the npm registry if missing)."""
    directory = assets_dir_for(os.environ.get("GIS_MAP_ASSETS_DIR"))
    if not assets_ready(directory):
        try:
            fetch_assets(directory, log=lambda _: None)
        except GisError as error:
            _unavailable(f"map assets cannot be fetched: {error.detail}")
    return directory


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """Headless Debian Chromium driven over CDP by Playwright."""
    if CHROMIUM is None:
        _unavailable("chromium is not installed (scripts/test-deps.sh installs it)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("the playwright package is not installed (pip install -e .[dev])")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        yield chromium
        chromium.close()


def closed_network(page: Any, origin: str) -> list[str]:
    """Abort every request not to ``origin``; returns the list the page's script errors go to."""
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(f"page error: {error}"))

    def on_console(message: Any) -> None:
        # A tile the closed network refused is a failed load, not a script error.
        if message.type == "error" and not message.text.startswith("Failed to load resource"):
            errors.append(f"console: {message.text}")

    page.on("console", on_console)
    refuse_outside(page, origin)
    return errors


def refuse_outside(page: Any, origin: str) -> None:
    """Nothing leaves the machine: every request not to ``origin`` is refused."""
    page.route(
        "**/*",
        lambda route: (
            route.continue_()
            if route.request.url.startswith(origin)
            else route.abort("internetdisconnected")
        ),
    )
