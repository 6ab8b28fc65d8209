"""End to end: ``runstack up`` as a subprocess, driven in headless Chromium through Playwright.

Clicks from the pipelines page to a run, opens a step panel from the run graph and from the
steps table, ticks two runs to compare, and checks what each page shows; no request leaves
the dashboard (no CDN) and none fails.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from browser_support import launch


@pytest.fixture
def browser_page(serve: Any) -> Iterator[tuple[Any, Any, list[str]]]:
    from playwright.sync_api import sync_playwright

    server = serve()
    problems: list[str] = []
    with sync_playwright() as p:
        browser = launch(p)
        page = browser.new_page()
        page.on(
            "request",
            lambda r: (
                None if r.url.startswith(server.base) else problems.append(f"external {r.url}")
            ),
        )
        page.on("requestfailed", lambda r: problems.append(f"failed {r.url}"))
        page.on("pageerror", lambda e: problems.append(f"script error {e}"))
        page.on(
            "response",
            lambda r: problems.append(f"{r.status} {r.url}") if r.status >= 400 else None,
        )
        try:
            yield page, server, problems
        finally:
            browser.close()
    assert server.stop()[0] == 0


def test_browse_from_pipelines_to_a_step_and_compare_two_runs(
    browser_page: tuple[Any, Any, list[str]],
) -> None:
    page, server, problems = browser_page
    page.goto(server.url)
    assert page.locator("#pipelines").inner_text().count("train_pipeline") == 1
    assert "4" in page.locator("#pipelines tbody tr").first.inner_text()

    # Pipelines -> runs of the pipeline: newest first, parameters and metrics as columns.
    page.click("a.pipeline-link")
    page.wait_for_selector("#runs")
    header = page.locator("#runs thead").inner_text()
    assert "train.lr" in header and "train.accuracy" in header
    rows = page.locator("#runs tbody tr")
    assert rows.count() == 4
    assert rows.nth(0).locator("a.run-link").inner_text() == "r-4"
    assert "failed" in rows.nth(1).inner_text()

    # A run: its graph and timeline are drawn, a node per step.
    page.click("text=r-2")
    page.wait_for_selector("#graph svg")
    assert page.locator("#graph g.step").count() == 2
    assert page.locator("#timeline svg").count() == 1
    assert (
        page.locator("#graph g.step[data-step='train']").get_attribute("data-status") == "completed"
    )

    # Clicking the graph node opens the step panel in place (no page load).
    page.evaluate("window.__same_page = true")
    page.click("#graph g.step[data-step='train']")
    page.wait_for_selector(".step-panel[data-step='train']")
    panel = page.locator("#panel").inner_text()
    assert page.evaluate("window.__same_page") is True
    assert "lr" in panel and "0.2" in panel
    assert "ran, not cached" in panel  # the cache explanation
    assert "training with lr=0.2" in panel  # its logs
    assert "accuracy" in panel and "pickle-based" in panel  # outputs; the model not loaded
    assert page.url.endswith("/runs/r-2/steps/train")

    # The load step's table preview comes with its statistics picture.
    page.click("a.step-link[data-step='load']")
    page.wait_for_selector(".step-panel[data-step='load']")
    assert page.locator(".step-panel .statistics svg").count() == 1
    assert "5 rows" in page.locator("#panel").inner_text()

    # Back to the runs, tick two and compare them.
    page.goto(server.base + "/pipelines/train_pipeline")
    assert page.locator("#compare-button").is_disabled()
    page.check("input[name=run][value='r-1']")
    page.check("input[name=run][value='r-2']")
    page.click("#compare-button")
    page.wait_for_selector("#compare")
    table = page.locator("#compare")
    assert "r-1" in table.inner_text() and "r-2" in table.inner_text()
    lr = page.locator("#compare tr.differs", has_text="train.lr")
    assert lr.count() == 1 and "0.1" in lr.inner_text() and "0.2" in lr.inner_text()
    # load.rows is a parameter and an output, the same in both runs
    assert page.locator("#compare tr.same", has_text="load.rows").count() == 2
    assert page.locator("#metric-charts svg").count() >= 1
    diff = page.locator("section.diff").inner_text()
    assert "train" in diff and "lr" in diff
    assert problems == []


def test_pages_show_their_content_without_javascript(serve: Any) -> None:
    from playwright.sync_api import sync_playwright

    server = serve()
    with sync_playwright() as p:
        browser = launch(p)
        page = browser.new_context(java_script_enabled=False).new_page()
        page.goto(server.base + "/runs/r-3/steps/train")
        text = page.locator("#panel").inner_text()
        assert "the loss diverged" in text and "ValueError" in text  # error and traceback
        page.goto(server.base + "/compare?run=r-1&run=r-3")
        assert page.locator("#compare tr.differs", has_text="train.lr").count() == 1
        browser.close()
    server.stop()


def test_a_running_run_updates_itself_until_it_ends(serve: Any, sqlite_repo: Any) -> None:
    import os
    from datetime import datetime, timezone

    from playwright.sync_api import sync_playwright

    from runstack.metadata_stores._liveness import this_host, this_namespace
    from runstack.models import ExecutionStatus

    server = serve()
    store = sqlite_repo.active_stack.metadata_store
    run = store.create_run(  # owned by this (live) test process
        "train_pipeline",
        "r-live",
        datetime.now(timezone.utc),
        owner_host=this_host(),
        owner_pid=os.getpid(),
        owner_ns=this_namespace(),
    )
    with sync_playwright() as p:
        browser = launch(p)
        page = browser.new_page()
        page.goto(server.base + "/runs/r-live")
        assert page.locator("#run").get_attribute("data-status") == "running"
        store.finish_run(run.id, ExecutionStatus.COMPLETED, datetime.now(timezone.utc))
        page.wait_for_selector("#run[data-status='completed']", timeout=15_000)
        browser.close()
    store.dispose()
    server.stop()
