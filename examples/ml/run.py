"""Run the ML example once and print every recorded run of it.

    python examples/ml/run.py                    # defaults; run it twice to see the decision
    python examples/ml/run.py --epochs 5 --C 0.01
    python examples/ml/run.py --device cuda      # train and evaluate the MLP on a GPU

It uses the active runstack stack (the default local one unless a repository says otherwise).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

# Import the steps as `examples.ml.pipeline`, not `__main__`, so the recorded class paths
# (the MLP's, for one) can be imported again by whoever reads the artifacts later.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from examples.ml.pipeline import PIPELINE, build

from runstack.repository import Repository


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--C", type=float, default=1.0, help="inverse regularization (logistic)")
    parser.add_argument("--epochs", type=int, default=150, help="training epochs (MLP)")
    parser.add_argument("--hidden", type=int, default=16, help="hidden units (MLP)")
    parser.add_argument("--device", default="cpu", help="torch device for the MLP")
    args = parser.parse_args(argv)
    try:
        configured = build(C=args.C, epochs=args.epochs, hidden=args.hidden, device=args.device)
    except ValueError as e:
        parser.error(f"--device: {e}")
    configured.run()

    print(f"\nRecorded runs of {PIPELINE!r} (oldest first):")
    for run in Repository().get_pipeline(PIPELINE).runs:
        try:
            logistic = run.get_step("evaluate_logistic").output.read()
            mlp = run.get_step("evaluate_mlp").outputs["accuracy"].read()
            decision = run.get_step("decide").outputs
            winner, promote = decision["winner"].read(), decision["promote"].read()
            scores = f"logistic={logistic:.4f}  mlp={mlp:.4f}"
        except KeyError:  # a failed run
            scores, winner, promote = "-", "-", "-"
        print(f"  {run.name}  {run.status.value:9}  {scores}  winner={winner}  promote={promote}")


if __name__ == "__main__":
    main()
