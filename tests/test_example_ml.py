"""The ML example: runs by one command, and its last step decides from the recorded history."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

from runstack.materializers import PyTorchModuleMaterializer
from runstack.repository import Repository

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def example(monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.syspath_prepend(str(ROOT))
    import examples.ml.pipeline as example

    return example


def recorded_best(run: Any) -> float:
    logistic = run.get_step("evaluate_logistic").output.read()
    mlp = run.get_step("evaluate_mlp").outputs["accuracy"].read()
    return max(logistic, mlp)


def test_the_decision_follows_the_recorded_history(example: Any, isolated: Path) -> None:
    weak = example.build(epochs=2, C=0.001).run()  # the first run: nothing to beat
    good = example.build(epochs=60).run()  # beats the weak run
    again = example.build(epochs=60).run()  # same config, same scores: a tie is no promotion

    runs = Repository().get_pipeline(example.PIPELINE).runs
    assert [r.name for r in runs] == [weak.name, good.name, again.name]
    for i, run in enumerate(runs):
        decision = run.get_step("decide").outputs
        best = recorded_best(run)
        earlier = [recorded_best(r) for r in runs[:i]]
        assert decision["accuracy"].read() == best
        assert decision["promote"].read() is all(best > e for e in earlier), run.name
    promoted = [r.get_step("decide").outputs["promote"].read() for r in runs]
    assert promoted == [True, True, False]
    assert recorded_best(good) > recorded_best(weak)
    assert {s.name for s in again.steps if s.is_cached} >= {"load", "divide", "fit_mlp"}
    assert not again.get_step("decide").is_cached  # it reads the history: never cached


def test_steps_carry_their_roles_and_models_read_back(example: Any) -> None:
    run = example.build(epochs=30).run()
    roles = {s.name: s.role for s in run.steps}
    assert roles == {
        "load": "importer",
        "divide": "splitter",
        "tensors": None,
        "fit_logistic": "trainer",
        "fit_mlp": "trainer",
        "evaluate_logistic": "evaluator",
        "evaluate_mlp": "evaluator",
        "decide": None,
    }
    test = run.get_step("divide").outputs["test"].read()
    x = torch.tensor(test.drop(columns="target").to_numpy("float32"))

    mlp_out = run.get_step("fit_mlp").output
    meta = json.loads((Path(mlp_out.uri) / "meta.json").read_text())
    assert meta["format"] == "state_dict"  # rebuilt from its config: no pickle involved
    assert meta["class"] == "examples.ml.pipeline.MLP"
    mlp = mlp_out.read(materializer=PyTorchModuleMaterializer.on("cpu"))
    probabilities = run.get_step("evaluate_mlp").outputs["probabilities"].read()
    with torch.no_grad():
        assert torch.allclose(mlp(x).softmax(dim=1), probabilities)

    logistic = run.get_step("fit_logistic").output.read()
    accuracy = (logistic.predict(test.drop(columns="target")) == test["target"]).mean()
    assert run.get_step("evaluate_logistic").output.read() == accuracy


def test_one_command_runs_it(isolated: Path) -> None:
    env = {**os.environ, "XDG_DATA_HOME": str(isolated / "xdg-data")}
    out = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "ml" / "run.py"), "--epochs", "20"],
        cwd=isolated,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    lines = [ln for ln in out.stdout.splitlines() if ln.startswith("  ml_example-")]
    assert len(lines) == 1 and "completed" in lines[0] and "promote=True" in lines[0]


def test_the_gpu_check_skips_cleanly_without_a_gpu(isolated: Path) -> None:
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    out = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gpu_check.py")],
        cwd=isolated,
        env=env,
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("skipped: no CUDA")


def test_a_device_this_machine_lacks_is_a_clear_error_before_anything_runs(
    isolated: Path,
) -> None:
    env = {
        **os.environ,
        "CUDA_VISIBLE_DEVICES": "",  # no GPU visible, even on a machine with one
        "XDG_DATA_HOME": str(isolated / "xdg-data"),
    }
    out = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "ml" / "run.py"), "--device", "cuda"],
        cwd=isolated,
        env=env,
        capture_output=True,
        text=True,
    )
    assert out.returncode == 2, out.stderr
    assert "device 'cuda' is not available here" in out.stderr and "--device cpu" in out.stderr
    assert "Traceback" not in out.stderr and "Running pipeline" not in out.stderr
