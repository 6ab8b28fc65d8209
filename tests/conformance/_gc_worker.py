"""A live writer for the gc concurrency test: runs the lineage pipeline N times.

Usage: python _gc_worker.py REPO_DIR RUN_PREFIX N_RUNS GO_FILE
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from test_lineage import evaluate, lineage_pipeline, load, train

from runstack.execution import log_listener
from runstack.repository import Repository


def main() -> None:
    repo_dir, prefix, n, go = sys.argv[1], sys.argv[2], int(sys.argv[3]), Path(sys.argv[4])
    stack = Repository(repo_dir).active_stack
    print("ready", flush=True)
    deadline = time.monotonic() + 120
    while not go.exists():
        if time.monotonic() > deadline:
            sys.exit("the test never said go")
        time.sleep(0.01)
    for i in range(n):
        pipe = lineage_pipeline(load(), train(), evaluate())
        stack.run_pipeline(pipe, run_name=f"{prefix}-{i}", listener=log_listener)


if __name__ == "__main__":
    main()
