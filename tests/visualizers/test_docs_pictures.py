"""docs/make_pictures.py draws the pictures docs/compare.md shows, from a clean checkout."""

from __future__ import annotations

import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
NS = {"s": "http://www.w3.org/2000/svg"}
PICTURES = {
    "run-graph.svg": ".//s:g[@class='step']",
    "timeline.svg": ".//s:rect[@class='bar']",
    "statistics.svg": ".//s:rect[@class='hist-bar']",
    "metric.svg": ".//s:circle[@class='point']",
}


def test_docs_script_draws_each_picture_the_docs_show(tmp_path: Path) -> None:
    out = tmp_path / "img"
    done = subprocess.run(
        [sys.executable, str(ROOT / "docs" / "make_pictures.py"), "--out", str(out)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    docs = (ROOT / "docs" / "compare.md").read_text()
    for name, drawn in PICTURES.items():
        root = ET.parse(out / name).getroot()
        assert root.findall(drawn, NS), name
        assert f"](img/{name})" in docs
        assert (ROOT / "docs" / "img" / name).stat().st_size < 20_000  # small, committed
    steps = ET.parse(out / "run-graph.svg").getroot().findall(".//s:g[@class='step']", NS)
    assert {s.get("data-status") for s in steps} == {"cached", "completed"}
    bars = ET.parse(out / "timeline.svg").getroot().findall(".//s:rect[@class='bar']", NS)
    x = {
        b.get("data-step"): (float(b.get("x")), float(b.get("x")) + float(b.get("width")))
        for b in bars
    }
    assert x["profile"][0] < x["clean"][1] and x["clean"][0] < x["profile"][1]  # side by side
