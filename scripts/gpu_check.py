"""GPU check for the PyTorch materializers: write on CUDA, read back on CPU and on CUDA.

    python scripts/gpu_check.py              # on a machine with a CUDA GPU
    python scripts/gpu_check.py --device cpu # the same flow on the CPU (a dry run of the script)

Runs the ML example (examples/ml) in a temporary runstack home with the MLP, its training
tensors and its predicted probabilities on the device, then reads those artifacts back:
by default (onto the device they were written from), onto the CPU, onto the device, and in a
fresh process that sees no GPU (CUDA_VISIBLE_DEVICES=""), as a CPU-only machine would.
Prints one line per check and a summary; exits 0 when all pass, 1 otherwise, and 0 with a
"skipped: no CUDA" line where there is no GPU.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "src"))

import torch  # noqa: E402

CHECKS: list[tuple[str, bool, str]] = []


def check(name: str, ok: bool, detail: str = "") -> None:
    CHECKS.append((name, ok, detail))
    print(f"  [{'ok' if ok else 'FAIL'}] {name}{f': {detail}' if detail else ''}", flush=True)


def read_on_cpu_only(uris: dict[str, str]) -> None:
    """Child process: no GPU visible; default reads must land on the CPU."""
    from runstack.materializers import (
        Artifact,
        PyTorchDatasetMaterializer,
        PyTorchModuleMaterializer,
        PyTorchTensorMaterializer,
    )

    model = PyTorchModuleMaterializer(Artifact(uris["model"])).handle_input(torch.nn.Module)
    data = PyTorchDatasetMaterializer(Artifact(uris["dataset"])).handle_input(object)
    probs = PyTorchTensorMaterializer(Artifact(uris["probabilities"])).handle_input(torch.Tensor)
    devices = {
        "model": str(next(model.parameters()).device),
        "dataset": str(data.tensors[0].device),
        "probabilities": str(probs.device),
    }
    print(json.dumps({"cuda_available": torch.cuda.is_available(), "devices": devices}))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--read-on-cpu-only", metavar="JSON", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.read_on_cpu_only:
        read_on_cpu_only(json.loads(args.read_on_cpu_only))
        return 0

    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print(f"skipped: no CUDA (torch {torch.__version__}, torch.cuda.is_available() is False)")
        return 0
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU (dry run)"
    print(f"runstack GPU check on {name}, torch {torch.__version__}")

    home = tempfile.mkdtemp(prefix="runstack-gpu-check-")
    os.environ["XDG_DATA_HOME"] = str(Path(home) / "xdg")
    os.environ.pop("RUNSTACK_REPOSITORY", None)
    os.chdir(home)

    from examples.ml.pipeline import build

    from runstack.materializers import (
        PyTorchDatasetMaterializer,
        PyTorchModuleMaterializer,
        PyTorchTensorMaterializer,
    )

    started = time.perf_counter()
    run = build(epochs=60, device=str(device)).run()
    check("pipeline ran with the MLP on the device", run.status.value == "completed")
    print(f"  (run {run.name} in {time.perf_counter() - started:.1f}s)")

    outputs = {
        "model": (run.get_step("fit_mlp").output, PyTorchModuleMaterializer),
        "dataset": (run.get_step("tensors").output, PyTorchDatasetMaterializer),
        "probabilities": (
            run.get_step("evaluate_mlp").outputs["probabilities"],
            PyTorchTensorMaterializer,
        ),
    }

    def device_of(value: object) -> torch.device:
        if isinstance(value, torch.nn.Module):
            return next(value.parameters()).device
        if isinstance(value, torch.Tensor):
            return value.device
        return value.tensors[0].device  # type: ignore[attr-defined]

    read: dict[str, dict[str, object]] = {}
    for key, (view, materializer) in outputs.items():
        meta = json.loads((Path(view.uri) / "meta.json").read_text())
        check(
            f"{key} written from {device.type}",
            meta["device"].startswith(device.type),
            meta["device"],
        )
        read[key] = {
            "default": view.read(),
            "cpu": view.read(materializer=materializer.on("cpu")),
            "device": view.read(materializer=materializer.on(device)),
        }
        for how, value in read[key].items():
            want = "cpu" if how == "cpu" else device.type
            got = device_of(value)
            check(f"{key} read ({how}) lands on {want}", got.type == want, str(got))

    test = run.get_step("divide").outputs["test"].read()
    x = torch.tensor(test.drop(columns="target").to_numpy("float32"))
    with torch.no_grad():
        on_cpu = read["model"]["cpu"](x).softmax(dim=1)  # type: ignore[operator]
        on_dev = read["model"]["device"](x.to(device)).softmax(dim=1).cpu()  # type: ignore[operator]
    recorded = read["probabilities"]["cpu"]
    diff = float((on_cpu - on_dev).abs().max())
    check("model read on CPU and on the device agree", diff < 1e-5, f"max |diff| {diff:.2e}")
    diff = float((on_cpu - recorded).abs().max())  # type: ignore[operator]
    check("CPU read reproduces the recorded probabilities", diff < 1e-5, f"max |diff| {diff:.2e}")
    same = torch.equal(recorded, read["probabilities"]["device"].cpu())  # type: ignore[arg-type,union-attr]
    check("probabilities identical read on CPU and on the device", same)

    # A module without get_config() is stored whole (pickle); it must remap devices too.
    from runstack.materializers import Artifact

    whole = torch.nn.Sequential(torch.nn.Linear(30, 4), torch.nn.Tanh()).to(device)
    whole_dir = Path(home) / "whole-module"
    whole_dir.mkdir()
    PyTorchModuleMaterializer(Artifact(str(whole_dir))).handle_return(whole)
    for target in ("cpu", str(device)):
        back = PyTorchModuleMaterializer.on(target)(Artifact(str(whole_dir))).handle_input(
            torch.nn.Module
        )
        got = next(back.parameters()).device
        with torch.no_grad():
            diff = float((back(x.to(got)).cpu() - whole(x.to(device)).cpu()).abs().max())
        ok = got.type == torch.device(target).type and diff < 1e-5
        check(f"pickled module read on {target}", ok, f"{got}, max |diff| {diff:.2e}")

    uris = {key: view.uri for key, (view, _) in outputs.items()}
    child = subprocess.run(
        [sys.executable, __file__, "--read-on-cpu-only", json.dumps(uris)],
        env={**os.environ, "CUDA_VISIBLE_DEVICES": ""},
        capture_output=True,
        text=True,
    )
    if child.returncode != 0:
        check("a process without a GPU reads every artifact", False, child.stderr.strip()[-500:])
    else:
        seen = json.loads(child.stdout.strip().splitlines()[-1])
        on_cpu_only = all(d == "cpu" for d in seen["devices"].values())
        detail = f"cuda visible={seen['cuda_available']}, devices={seen['devices']}"
        check("a process without a GPU reads every artifact on the CPU", on_cpu_only, detail)

    failed = [c for c in CHECKS if not c[1]]
    print(f"summary: {len(CHECKS) - len(failed)}/{len(CHECKS)} checks passed on {name}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
