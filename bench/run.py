"""``python -m bench``: run the benchmark suite, print a table, write JSON.

python -m bench                     # the whole suite (first run builds a cached 10k-run store)
python -m bench --quick             # smaller sizes and fewer repeats: a minute or so
python -m bench --full              # more repeats
python -m bench --only history --backend postgresql
python -m bench --json out.json     # default: bench/results/<UTC time>.json
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
import traceback
from datetime import datetime, timezone
from pathlib import Path

from bench._core import MODES, RESULTS_DIR, Figure
from bench._report import print_table, session_meta, write_json

# name -> module; imported only when selected, so --only overhead never imports pandas.
BENCHMARKS = {
    "overhead": "bench.overhead",
    "seed": "bench.seed",
    "coldstart": "bench.coldstart",
    "history": "bench.history",
    "artifacts": "bench.artifacts",
    "concurrency": "bench.concurrency",
    "distributed": "bench.distributed",
    "compare": "bench.compare",
    "display": "bench.display",
    "dashboard": "bench.dashboard",
}
BACKENDS = ("sqlite", "postgresql", "mysql")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    size = ap.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_const", dest="mode", const="quick")
    size.add_argument("--full", action="store_const", dest="mode", const="full")
    ap.add_argument(
        "--only",
        action="append",
        choices=sorted(BENCHMARKS),
        metavar="NAME",
        help=f"run only this benchmark (repeatable): {', '.join(BENCHMARKS)}",
    )
    ap.add_argument(
        "--backend",
        choices=BACKENDS,
        default="sqlite",
        help="metadata store for the history figures (server ones use a fresh database)",
    )
    ap.add_argument("--json", type=Path, help="where to write the results (default bench/results/)")
    ap.add_argument("--plain", action="store_true", help="plain-text table instead of rich")
    ap.add_argument(
        "--rebuild", action="store_true", help="rebuild cached history stores instead of reusing"
    )
    ns = ap.parse_args(argv)
    ns.mode = ns.mode or "default"
    return ns


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    mode = MODES[args.mode]
    names = args.only or list(BENCHMARKS)
    meta = session_meta(mode.name, args.backend)
    figures: list[Figure] = []
    errors: dict[str, str] = {}
    for name in names:
        t0 = time.perf_counter()
        print(f"[bench] {name} ...", file=sys.stderr, flush=True)
        try:
            module = importlib.import_module(BENCHMARKS[name])
            found = module.run(mode, backend=args.backend, rebuild=args.rebuild)
        except Exception as e:  # report the others; one broken benchmark must not hide them
            errors[name] = "".join(traceback.format_exception(type(e), e, e.__traceback__))
            print(f"[bench] {name} FAILED: {type(e).__name__}: {e}", file=sys.stderr, flush=True)
            continue
        figures.extend(found)
        print(f"[bench] {name} done in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    out = args.json or RESULTS_DIR / f"{stamp}-{mode.name}-{args.backend}.json"
    write_json(out, meta, figures, errors)
    print_table(figures, meta, plain=args.plain)
    missed = [f"{f.benchmark}: {f.name}" for f in figures if f.status == "MISS"]
    print(f"budgets: {sum(f.status == 'PASS' for f in figures)} met, {len(missed)} missed")
    for m in missed:
        print(f"  MISS {m}")
    for name in errors:
        print(f"  ERROR in {name} (traceback in the JSON file)")
    print(f"results written to {out}")
    return 1 if errors else 0
