"""Draw the pictures docs/compare.md shows, from real runs of a small pipeline.

    pip install 'runstack[viz,pandas]'
    python docs/make_pictures.py            # writes docs/img/*.svg

It runs the pipeline in a temporary repository (the parallel orchestrator, so the timeline
shows two steps at once) and draws with ``runstack.visualizers``: the same functions the
notebook displays, ``runstack run report`` and the dashboard call.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))  # this checkout's runstack, installed or not

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from runstack.pipelines import pipeline  # noqa: E402
from runstack.repository import Repository  # noqa: E402
from runstack.steps import BaseStepConfig, Output, step  # noqa: E402


class TrainConfig(BaseStepConfig):
    lr: float = 0.1


@step
def load() -> pd.DataFrame:
    rng = np.random.default_rng(7)
    n = 500
    age = rng.normal(41, 12, n).round(1)
    income = rng.lognormal(10.5, 0.4, n).round(0)
    income[rng.choice(n, 40, replace=False)] = np.nan
    city = rng.choice(["Oslo", "Lima", "Rome", "Kyiv", "Pune"], n, p=[0.4, 0.25, 0.2, 0.1, 0.05])
    time.sleep(0.2)
    return pd.DataFrame({"age": age, "income": income, "city": city})


@step
def clean(data: pd.DataFrame) -> Output(features=pd.DataFrame, dropped=int):
    time.sleep(0.5)
    kept = data.dropna()
    return kept, len(data) - len(kept)


@step
def profile(data: pd.DataFrame) -> Output(report=dict):
    time.sleep(0.3)
    return {"rows": len(data), "cities": int(data["city"].nunique())}


@step
def train(config: TrainConfig, features: pd.DataFrame) -> Output(accuracy=float):
    time.sleep(0.4)
    return round(0.9 - (config.lr - 0.05) ** 2 * 8 + len(features) * 1e-5, 4)


@pipeline
def churn(load, clean, profile, train):
    data = load()
    features, _ = clean(data)
    profile(data)
    train(features)


def make(out: Path) -> list[Path]:
    """Run the pipeline a few times and write one picture of each kind to ``out``."""
    from runstack.visualizers import (
        metric_points,
        metric_svg,
        run_graph_svg,
        statistics_svg,
        timeline_svg,
    )

    os.environ.setdefault("RUNSTACK_PROGRESS", "off")
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="runstack-pictures-") as tmp:
        here = os.getcwd()
        os.chdir(tmp)
        try:
            repo = Repository.init(tmp)
            repo.register_component(
                "orchestrator", "threads", "parallel", {"max_workers": 4, "mode": "thread"}
            )
            repo.register_stack(
                "threads", orchestrator="threads", metadata_store="local",
                artifact_store="local", activate=True,
            )
            for i, lr in enumerate((0.3, 0.2, 0.12, 0.08, 0.05, 0.1)):
                churn(load(), clean(), profile(), train(TrainConfig(lr=lr))).run(
                    run_name=f"churn-{i + 1}"
                )
            history = repo.get_pipeline("churn")
            first, last = history.get_run("churn-1"), history.latest_run
            from runstack.materializers import StatisticsMaterializer

            stats = first.get_step("load").output.read(materializer=StatisticsMaterializer)
            pictures = {
                "run-graph.svg": run_graph_svg(last),  # load cached, the rest ran
                "timeline.svg": timeline_svg(first),  # clean and profile side by side
                "statistics.svg": statistics_svg(stats, "Statistics of load's output"),
                "metric.svg": metric_svg(metric_points(history, "train.accuracy"),
                                         "train.accuracy over runs"),
            }
        finally:
            os.chdir(here)
    written = []
    for name, svg in pictures.items():
        path = out / name
        path.write_text(svg + "\n", encoding="utf-8")
        written.append(path)
    return written


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE / "img", help="folder for the SVGs")
    for path in make(parser.parse_args().out):
        print(f"wrote {path} ({path.stat().st_size:,} bytes)")
