"""The table on the terminal and the JSON file: the two outputs of a benchmark session."""

from __future__ import annotations

import json
import os
import platform
import socket
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from bench._core import BENCH_DIR, Figure

SCHEMA = 1  # of the JSON file; bump when its keys change


def _fmt(x: float | None, unit: str = "s") -> str:
    if x is None:
        return "-"
    if unit == "s":
        if x >= 1:
            return f"{x:.2f} s"
        if x >= 1e-3:
            return f"{x * 1e3:.2f} ms"
        return f"{x * 1e6:.1f} us"
    return f"{x:.3g} {unit}".strip()


def _git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=BENCH_DIR,
            capture_output=True,
            text=True,
            timeout=10,
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no", "--", "src"],
            cwd=BENCH_DIR.parent,
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode != 0:
        return None
    return out.stdout.strip() + ("+dirty-src" if dirty.stdout.strip() else "")


def machine_speed_ms(repeats: int = 7) -> float:
    """Median ms of ``python -c pass`` as a new process: how fast the machine is right now.
    On a shared VM it drifts by tens of percent over minutes (here 9 to 13 ms), and absolute
    figures drift with it; the header prints it so results from different hours compare."""
    import statistics
    import subprocess
    import time

    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], check=True)
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3


def session_meta(mode: str, backend: str) -> dict[str, Any]:
    import runstack

    return {
        "started_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "mode": mode,
        "backend": backend,
        "host": socket.gethostname(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "runstack": runstack.__version__,
        "commit": _git_commit(),
        "loadavg_start": list(os.getloadavg()),
        "python_c_pass_ms": machine_speed_ms(),
        "argv": sys.argv[1:],
    }


def write_json(
    path: Path, meta: dict[str, Any], figures: list[Figure], errors: dict[str, str]
) -> None:
    meta = {
        **meta,
        "loadavg_end": list(os.getloadavg()),
        "python_c_pass_ms_end": machine_speed_ms(),
    }
    meta["finished_at"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    doc = {
        "schema": SCHEMA,
        "meta": meta,
        "figures": [f.to_json() for f in figures],
        "budgets": {f"{f.benchmark}: {f.name}": f.status for f in figures if f.budget is not None},
        "errors": errors,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=2) + "\n")


def print_table(figures: list[Figure], meta: dict[str, Any], plain: bool = False) -> None:
    rows = [
        [
            f.benchmark,
            f.name,
            _fmt(f.figure, f.unit),
            str(f.budget) if f.budget else "",
            f.status,
            _fmt(f.subject_s),
            _fmt(f.baseline_s),
            "-" if f.ratio is None else f"{f.ratio:.3g}x",
            f.baseline,
        ]
        for f in figures
    ]
    head = ["bench", "figure", "value", "budget", "", "subject", "baseline", "ratio", "baseline is"]
    title = (
        f"runstack {meta['runstack']} @ {meta['commit']}  {meta['started_at']}  "
        f"mode={meta['mode']} backend={meta['backend']}  {meta['cpus']} CPUs, "
        f"load {meta['loadavg_start'][0]:.2f}, python -c pass {meta['python_c_pass_ms']:.1f} ms"
    )
    if not plain:
        try:
            from rich.console import Console
            from rich.table import Table
        except ImportError:
            plain = True
    if plain:
        print(title)
        widths = [max(len(str(r[i])) for r in [head, *rows]) for i in range(len(head))]
        for r in [head, *rows]:
            print("  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
        _print_notes(figures)
        return
    table = Table(title=title, title_justify="left")
    for h in head:
        table.add_column(
            h, justify="right" if h in ("value", "subject", "baseline", "ratio") else "left"
        )
    style = {"PASS": "[green]PASS[/]", "MISS": "[bold red]MISS[/]", "": ""}
    for r in rows:
        r[4] = style[r[4]]
        table.add_row(*r)
    Console(width=max(160, Console().width)).print(table)
    _print_notes(figures)


def _print_notes(figures: list[Figure]) -> None:
    noted = [f for f in figures if f.note]
    if noted:
        print("notes:")
    for f in noted:
        print(f"  {f.benchmark}: {f.name}: {f.note}")
