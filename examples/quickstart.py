"""Quickstart: a three-step pipeline on the default local stack, then a look at its history.

Run it a few times: the data step is cached after the first run, the training step reruns
when its config changes, and the last step compares each run with every earlier one.

    python examples/quickstart.py            # one run with the default learning rate
    python examples/quickstart.py 0.05       # another learning rate
"""

from __future__ import annotations

import contextlib
import sys

import numpy as np
import pandas as pd

from runstack.pipelines import pipeline
from runstack.repository import Repository
from runstack.steps import BaseStepConfig, Output, StepContext, step


@step
def load_data() -> pd.DataFrame:
    """A small regression data set: y = 3x + 2 with noise."""
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, 200)
    return pd.DataFrame({"x": x, "y": 3 * x + 2 + rng.normal(0, 0.1, 200)})


class TrainConfig(BaseStepConfig):
    learning_rate: float = 0.1
    epochs: int = 200


@step
def train(data: pd.DataFrame, config: TrainConfig) -> Output(weights=list, mse=float):
    """Gradient descent on a line; a poor learning rate leaves a worse fit."""
    w, b = 0.0, 0.0
    x, y = data["x"].to_numpy(), data["y"].to_numpy()
    for _ in range(config.epochs):
        error = w * x + b - y
        w -= config.learning_rate * 2 * float(np.mean(error * x))
        b -= config.learning_rate * 2 * float(np.mean(error))
    return [w, b], float(np.mean((w * x + b - y) ** 2))


@step
def is_best(context: StepContext, mse: float) -> bool:
    """Whether this run's error is the lowest of every run recorded so far."""
    runs = context.metadata_store.get_pipeline("quickstart").runs
    earlier = []
    for run in runs[:-1]:  # the last one is this run, still going
        with contextlib.suppress(KeyError):  # a failed run has no output
            earlier.append(run.get_step("trainer").outputs["mse"].read())
    return all(mse <= e for e in earlier)


@pipeline
def quickstart(importer, trainer, judge):
    data = importer()
    _weights, mse = trainer(data)
    judge(mse)


def main() -> None:
    rate = float(sys.argv[1]) if len(sys.argv) > 1 else 0.1
    quickstart(importer=load_data(), trainer=train(learning_rate=rate), judge=is_best()).run()

    print("\nRecorded runs of 'quickstart' (oldest first):")
    pipe = Repository().get_pipeline("quickstart")
    for run in pipe.runs:
        trainer = run.get_step("trainer")
        data = run.get_step("importer").output
        cached = [s.name for s in run.steps if s.is_cached]
        try:
            mse = f"{trainer.outputs['mse'].read():.5f}"
            best = run.get_step("judge").output.read()
        except KeyError:
            mse, best = "-", "-"
        print(
            f"  {run.name}  {run.status.value:9}  lr={trainer.parameters['learning_rate']:<6}"
            f" mse={mse}  best={best}  rows={len(data.read())}  cached={cached or 'none'}"
        )


if __name__ == "__main__":
    main()
