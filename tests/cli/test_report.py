"""``runstack run report``: a self-contained HTML file, checked in a real headless Chromium."""

from __future__ import annotations

import re
import struct
import sys
import zlib
from pathlib import Path
from typing import Any

import pytest

from browser_support import launch


def png_colours(png: bytes, every: int = 3) -> set[tuple[int, ...]]:
    """Distinct colours of (every ``every``-th pixel of) an 8-bit RGB/RGBA PNG, decoded here:
    the test needs no imaging library."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, header = 8, b"", None
    while pos < len(png):
        length, kind = struct.unpack(">I4s", png[pos : pos + 8])
        data = png[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", data)
        elif kind == b"IDAT":
            idat += data
        pos += 12 + length
    assert header is not None
    width, height, depth, colour_type, _, _, interlace = header
    assert depth == 8 and colour_type in (2, 6) and interlace == 0, header
    bpp = 3 if colour_type == 2 else 4
    raw, stride = zlib.decompress(idat), width * bpp
    previous, colours, i = bytearray(stride), set(), 0
    for _ in range(height):
        kind, line = raw[i], bytearray(raw[i + 1 : i + 1 + stride])
        i += 1 + stride
        for x in range(stride):
            left = line[x - bpp] if x >= bpp else 0
            up, up_left = previous[x], previous[x - bpp] if x >= bpp else 0
            if kind == 1:
                line[x] = (line[x] + left) & 255
            elif kind == 2:
                line[x] = (line[x] + up) & 255
            elif kind == 3:
                line[x] = (line[x] + (left + up) // 2) & 255
            elif kind == 4:
                p = left + up - up_left
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - up_left)
                pred = left if pa <= pb and pa <= pc else up if pb <= pc else up_left
                line[x] = (line[x] + pred) & 255
        colours.update(tuple(line[x : x + 3]) for x in range(0, stride, bpp * every))
        previous = line
    return colours


def open_in_chromium(report: Path) -> dict[str, Any]:
    """Load the report as a file; every request the page makes, failed ones, its text and a
    screenshot."""
    from playwright.sync_api import sync_playwright

    requests: list[str] = []
    failed: list[str] = []
    with sync_playwright() as p:
        browser = launch(p)
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            page.on("request", lambda r: requests.append(r.url))
            page.on("requestfailed", lambda r: failed.append(f"{r.url}: {r.failure}"))
            page.goto(report.resolve().as_uri(), wait_until="networkidle")
            shown = {
                "text": page.inner_text("body"),
                "svgs": page.eval_on_selector_all("svg", "els => els.length"),
                "graph_steps": page.eval_on_selector_all(
                    "svg.runstack-graph g.step", "els => els.map(e => e.dataset.step)"
                ),
                "screenshot": page.screenshot(full_page=False),
            }
        finally:
            browser.close()
    return {**shown, "requests": requests, "failed": failed}


def test_report_of_two_runs_opens_offline_in_chromium(
    cli: Any, two_runs: list[str], isolated: Path
) -> None:
    out = cli("run", "report", *two_runs, "-o", "report.html")
    report = isolated / "report.html"
    assert f"Wrote {report.name}" in out.stdout and "2 run(s)" in out.stdout
    markup = report.read_text()
    assert "http://" not in markup.replace("http://www.w3.org/2000/svg", "")
    assert "https://" not in markup and "<script" not in markup and "<link" not in markup
    page = open_in_chromium(report)
    assert page["failed"] == []
    assert page["requests"] == [report.resolve().as_uri()]  # the file itself, nothing else
    for name in ("first", "second", "load", "train", "weights", "loss"):
        assert name in page["text"]
    assert sorted(page["graph_steps"]) == ["load", "load", "train", "train"]  # two graphs
    assert page["svgs"] >= 4  # graph and timeline per run, plus statistics of the tables
    assert "Timeline" in page["text"] and "Parameters" in page["text"]
    assert "rows" in page["text"] and "scale" in page["text"]  # the two steps' parameters
    diff = page["text"][page["text"].index("Run diff: first → second") :]
    assert re.search(r"load\tparameter rows\n[^\t]*\t4\t6", diff)  # the two runs' diff, first
    assert diff.index("Run diff") < diff.index("Run first")
    colours = png_colours(page["screenshot"])
    assert len(colours) > 20, colours  # text, status colours, graph: not a blank page


def test_report_of_a_failed_run_shows_the_failure(
    cli: Any, repo: Any, pipeline_file: Path, isolated: Path
) -> None:
    config = isolated / "fail.yaml"
    config.write_text("steps:\n  train:\n    parameters:\n      fail: true\n")
    cli("pipeline", "run", str(pipeline_file), "-c", str(config), "--run-name", "bad", code=1)
    cli("run", "report", "bad", "-o", "bad.html")
    markup = (isolated / "bad.html").read_text()
    assert "data-step='train' data-status='failed'" in markup
    assert "Failures" in markup and "diverged: loss is nan" in markup


def test_report_checks_its_arguments_before_writing(
    cli: Any, two_runs: list[str], isolated: Path
) -> None:
    missing = cli("run", "report", "first", "nope", "-o", "r.html", code=1)
    assert "No run named 'nope'" in missing.stderr
    assert not (isolated / "r.html").exists()
    folder = cli("run", "report", "first", "-o", "no/such/dir/r.html", code=1)
    assert "Folder no/such/dir does not exist" in folder.stderr
    twice = cli("run", "report", "-p", "training", "second", "latest", code=1)
    assert "The same run is named twice" in twice.stderr
    cli("run", "report", "-p", "training", "latest~1", "latest", "-o", "last-two.html")
    assert "Run diff: first → second" in (isolated / "last-two.html").read_text()


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    # A proxy from the environment must not be what makes requests fail (or succeed).
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(var, raising=False)


def test_report_without_the_viz_extra_says_what_to_install(
    cli: Any, two_runs: list[str], isolated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "grandalf", None)
    monkeypatch.setitem(sys.modules, "grandalf.graphs", None)
    out = cli("run", "report", "first", "-o", "r.html", code=1)
    assert "pip install 'runstack[viz]'" in out.stderr
    assert not (isolated / "r.html").exists()
