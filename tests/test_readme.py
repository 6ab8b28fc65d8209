"""The README's Python samples run as written."""

from __future__ import annotations

import re
from pathlib import Path

from runstack.repository import Repository

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_python_samples_run_in_order(repo: Repository) -> None:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    assert len(blocks) >= 2
    namespace: dict[str, object] = {}
    for block in blocks:
        exec(compile(block, str(README), "exec"), namespace)
    # The second sample browses what the first one recorded.
    assert namespace["step"].outputs["multiplied_output_int"].read() == 35  # type: ignore[attr-defined]
    assert namespace["pipeline"].name == "first_pipeline"  # type: ignore[attr-defined]
