"""A hyper-parameter sweep: N trainers at once, then a step that picks the best.

    python examples/sweep/sweep.py                          # 8 trials on the parallel orchestrator
    python examples/sweep/sweep.py --orchestrator ray       # the same on a local Ray instance
    python examples/sweep/sweep.py --orchestrator ray --address auto   # on a Ray cluster
    python examples/sweep/sweep.py --trials 16 --workers 4

Each trial fits a ridge regression of one strength (``alpha``) by gradient descent and scores
it on a held-out split; ``pick`` takes every score and names the best trial. The steps are
defined in this script (``__main__``): the orchestrators ship them to their worker processes
or Ray workers. Run it twice: every step is then a cache hit, on either orchestrator.
See docs/distributed.md.
"""

from __future__ import annotations

import argparse
import inspect
import re
import time

import numpy as np

from runstack.pipelines import BasePipeline
from runstack.repository import Repository
from runstack.stack import Stack
from runstack.steps import BaseStepConfig, Output, step


class Trial(BaseStepConfig):
    alpha: float
    epochs: int = 5000


@step
def make_data() -> Output(X=np.ndarray, y=np.ndarray):
    """A noisy linear problem with more features than the signal needs."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(5_000, 20))
    w = np.zeros(20)
    w[:5] = [3.0, -2.0, 1.5, 0.5, -1.0]
    return X, X @ w + rng.normal(0, 2.0, len(X))


@step(retries=1, timeout=600, resources={"cpus": 1})
def train(config: Trial, X: np.ndarray, y: np.ndarray) -> Output(weights=np.ndarray, score=float):
    """Ridge regression by gradient descent on the first 3/4; R^2 on the last 1/4."""
    cut = len(X) * 3 // 4
    Xt, yt, Xv, yv = X[:cut], y[:cut], X[cut:], y[cut:]
    w = np.zeros(X.shape[1])
    for _ in range(config.epochs):
        grad = Xt.T @ (Xt @ w - yt) / len(Xt) + config.alpha * w
        w -= 0.05 * grad
    residual = yv - Xv @ w
    score = 1.0 - float(residual @ residual) / float(((yv - yv.mean()) ** 2).sum())
    print(f"alpha={config.alpha:g}: R^2={score:.4f}")
    return w, score


def pick_step(trials: list[str]) -> type:
    """A step taking one score per trial (its inputs are named after the trials)."""

    def pick(**scores: float) -> Output(best=str, score=float):
        best = max(scores, key=lambda name: scores[name])
        return best, scores[best]

    # A step's inputs are its named parameters: give `pick` one per trial.
    pick.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [inspect.Parameter(t, inspect.Parameter.KEYWORD_ONLY, annotation=float) for t in trials],
        return_annotation=Output(best=str, score=float),
    )
    return step(pick)


def sweep_pipeline(alphas: list[float], epochs: int = 5000) -> BasePipeline:
    """The pipeline for these trials: data -> trial_0..trial_N-1 -> pick."""
    trials = [f"trial_{i}" for i in range(len(alphas))]

    def connect(self: BasePipeline, **slots: object) -> None:
        X, y = slots["data"]()  # type: ignore[operator]
        scores = {t: slots[t](X, y)[1] for t in trials}  # type: ignore[operator]
        slots["pick"](**scores)  # type: ignore[operator]

    connect.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
        + [inspect.Parameter(s, inspect.Parameter.KEYWORD_ONLY) for s in ["data", *trials, "pick"]]
    )
    Sweep = type("sweep", (BasePipeline,), {"NAME": "sweep", "connect": connect})
    steps = {t: train(Trial(alpha=a, epochs=epochs)) for t, a in zip(trials, alphas, strict=True)}
    return Sweep(data=make_data(), pick=pick_step(trials)(), **steps)


def sweep_stack(name: str, workers: int, address: str | None) -> Stack:
    """A stack `sweep-...` with this orchestrator and the active stack's stores (registered
    on first use), so every orchestrator shares one history and one cache."""
    repo = Repository()
    if name == "parallel":
        flavor, settings, key = "parallel", {"max_workers": workers}, f"sweep-parallel-{workers}"
    else:
        flavor, settings = "ray", {"address": address} if address else {}
        key = "sweep-ray" + (f"-{re.sub(r'[^A-Za-z0-9_.-]', '-', address)}" if address else "")
    if key not in repo.list_components("orchestrator"):
        repo.register_component("orchestrator", key, flavor, settings)
    if key not in repo.list_stacks():
        active = repo.get_stack_config(repo.active_stack_key)
        repo.register_stack(
            key,
            orchestrator=key,
            metadata_store=active.metadata_store,
            artifact_store=active.artifact_store,
        )
    return repo.get_stack(key)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orchestrator", choices=["parallel", "ray"], default="parallel")
    parser.add_argument("--trials", type=int, default=8, help="number of trainers (N)")
    parser.add_argument("--workers", type=int, default=8, help="max_workers of `parallel`")
    parser.add_argument("--epochs", type=int, default=5000, help="gradient steps per trial")
    parser.add_argument("--address", help="Ray address (`auto`, `ray://host:10001`)")
    args = parser.parse_args(argv)
    if args.trials < 1:
        parser.error("--trials must be at least 1")
    stack = sweep_stack(args.orchestrator, args.workers, args.address)
    alphas = [float(a) for a in np.logspace(-3, 1, args.trials)]
    started = time.monotonic()
    run = stack.run_pipeline(sweep_pipeline(alphas, args.epochs))
    elapsed = time.monotonic() - started
    pick = run.get_step("pick")
    best, score = pick.outputs["best"].read(), pick.outputs["score"].read()
    alpha = alphas[int(best.removeprefix("trial_"))]
    cached = sum(s.is_cached for s in run.steps)
    print(
        f"best: {best} alpha={alpha:g} R^2={score:.4f} | {args.trials} trials on "
        f"{args.orchestrator} in {elapsed:.1f}s, {cached} of {len(run.steps)} steps cached"
    )
    weights = run.get_step(best).outputs["weights"].read()
    print("largest weights of the best model:", np.round(np.sort(np.abs(weights))[-5:], 2))


if __name__ == "__main__":
    main()
