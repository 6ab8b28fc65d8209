"""One writer process of the concurrency test: opens the active stack, waits, then runs.

Usage: python _worker.py REPO_DIR RUN_PREFIX N_RUNS GO_FILE
Opening the stack happens before the wait, so every worker migrates the fresh database at once.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from conformance_pipelines import make_first_pipeline

from runstack.repository import Repository


def main() -> None:
    repo_dir, prefix, n, go = sys.argv[1], sys.argv[2], int(sys.argv[3]), Path(sys.argv[4])
    stack = Repository(repo_dir).active_stack  # opens (and maybe migrates) the store
    print("ready", flush=True)
    deadline = time.monotonic() + 120
    while not go.exists():
        if time.monotonic() > deadline:
            sys.exit("the test never said go")
        time.sleep(0.01)
    for i in range(n):
        stack.run_pipeline(make_first_pipeline(multiplier=i + 1), run_name=f"{prefix}-{i}")


if __name__ == "__main__":
    main()
