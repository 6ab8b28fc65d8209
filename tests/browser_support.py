"""Debian's Chromium driven by Playwright for Python, for the report and dashboard tests.

Playwright's own browser download cannot work offline; .ci/run installs Debian's chromium.
The flags keep Chromium from reaching out to the network on its own (update checks, sync).
"""

from __future__ import annotations

from typing import Any

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]


def launch(playwright: Any) -> Any:
    """A headless Chromium browser (fails, never skips, when /usr/bin/chromium is missing)."""
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
