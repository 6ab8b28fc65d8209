"""PyTorch tensors, datasets and modules: safetensors weights, rebuild or pickle, device maps."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn
from torch.utils.data import Dataset, TensorDataset

from runstack.exceptions import MaterializerError
from runstack.materializers import (
    Artifact,
    PyTorchModuleMaterializer,
    PyTorchTensorMaterializer,
)
from runstack.pipelines import pipeline
from runstack.repository import Repository
from runstack.steps import BaseStepConfig, Output, step, trainer

torch.manual_seed(0)


class TinyNet(nn.Module):
    """Rebuildable from its config: stored without pickle."""

    def __init__(self, n_in: int, hidden: int, n_out: int = 2) -> None:
        super().__init__()
        self.n_in, self.hidden, self.n_out = n_in, hidden, n_out
        self.body = nn.Sequential(nn.Linear(n_in, hidden), nn.ReLU(), nn.Linear(hidden, n_out))
        self.norm = nn.BatchNorm1d(n_in)  # has buffers (running stats) that must come back

    def get_config(self) -> dict[str, int]:
        return {"n_in": self.n_in, "hidden": self.hidden, "n_out": self.n_out}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(self.norm(x))


class Tied(nn.Module):
    """Two names for one weight: the rebuilt module must share it again."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self.n = n
        self.encode = nn.Linear(n, n, bias=False)
        self.decode = nn.Linear(n, n, bias=False)
        self.decode.weight = self.encode.weight

    def get_config(self) -> dict[str, int]:
        return {"n": self.n}


class Forgetful(TinyNet):
    def get_config(self) -> dict[str, int]:
        return {"n_in": self.n_in, "hidden": 1}  # wrong hidden size: weights will not fit


def trained(net: nn.Module, steps: int = 20) -> nn.Module:
    x, y = torch.randn(64, 4), torch.randint(0, 2, (64,))
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    for _ in range(steps):
        opt.zero_grad()
        nn.functional.cross_entropy(net(x), y).backward()
        opt.step()
    return net.eval()


def read_back(tmp_path: Path, value: Any, reader: Any = None) -> Any:
    art = Artifact(str(tmp_path))
    writer = PyTorchTensorMaterializer if isinstance(value, torch.Tensor) else None
    writer = writer or PyTorchModuleMaterializer
    written = writer(art)
    written.handle_return(value)
    read = (reader or writer)(art)
    read.recorded_format = written.storage_format  # what the metadata store records
    return read.handle_input(type(value))


TENSORS = {
    "0-d": torch.tensor(3.5),
    "non-contiguous": torch.arange(24.0).reshape(4, 6)[:, ::2].t(),
    "bfloat16": torch.randn(3, 2).to(torch.bfloat16),
    "int8": torch.tensor([-128, 0, 127], dtype=torch.int8),
    "bool": torch.tensor([[True, False]]),
    "empty": torch.empty(0, 5),
}


@pytest.mark.parametrize("name", list(TENSORS))
def test_tensors_round_trip(name: str, roundtrip: Callable[..., Any]) -> None:
    value = TENSORS[name]
    back = roundtrip(value)
    assert back.dtype == value.dtype and back.shape == value.shape and back.device.type == "cpu"
    assert torch.equal(back, value)


def test_requires_grad_and_parameters_are_kept(roundtrip: Callable[..., Any]) -> None:
    back = roundtrip(torch.ones(2, requires_grad=True))
    assert back.requires_grad and back.is_leaf
    param = roundtrip(nn.Parameter(torch.zeros(3), requires_grad=False))
    assert isinstance(param, nn.Parameter) and not param.requires_grad


def test_sparse_tensors_are_refused_with_a_fix(roundtrip: Callable[..., Any]) -> None:
    with pytest.raises(MaterializerError, match=r"dense tensors.*to_dense\(\)"):
        roundtrip(torch.eye(3).to_sparse())


def test_tensor_datasets_round_trip(roundtrip: Callable[..., Any]) -> None:
    ds = TensorDataset(torch.randn(5, 3), torch.arange(5))
    back = roundtrip(ds)
    assert isinstance(back, TensorDataset) and len(back) == 5
    assert all(torch.equal(a, b) for a, b in zip(back.tensors, ds.tensors, strict=True))
    x = torch.randn(4, 2)
    autoencoder = roundtrip(TensorDataset(x, x))  # one tensor twice: inputs are the targets
    assert torch.equal(autoencoder.tensors[0], x) and torch.equal(autoencoder.tensors[1], x)


def test_configured_modules_are_rebuilt_without_pickle(tmp_path: Path) -> None:
    net = trained(TinyNet(4, 8))
    back = read_back(tmp_path, net)
    assert not (tmp_path / "module.pt").exists()
    meta = json.loads((tmp_path / "meta.json").read_text())
    assert meta["format"] == "state_dict" and meta["config"] == {"n_in": 4, "hidden": 8, "n_out": 2}
    assert type(back) is TinyNet and not back.training
    x = torch.randn(10, 4)
    assert torch.equal(back(x), net(x))
    assert torch.equal(back.norm.running_mean, net.norm.running_mean)


def test_tied_weights_stay_tied(tmp_path: Path) -> None:
    back = read_back(tmp_path, Tied(3))
    assert back.decode.weight is back.encode.weight


def test_a_config_that_does_not_fit_the_weights_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(MaterializerError, match=r"does not match the weights.*get_config\(\)"):
        read_back(tmp_path, Forgetful(4, 8))


def test_other_modules_are_stored_whole_with_pickle(tmp_path: Path) -> None:
    net = nn.Sequential(nn.Linear(4, 3), nn.Tanh(), nn.Linear(3, 2)).train()
    trained(net).train()
    back = read_back(tmp_path, net)
    assert json.loads((tmp_path / "meta.json").read_text())["format"] == "pickle"
    assert back.training
    x = torch.randn(6, 4)
    assert torch.equal(back(x), net(x))


def _pretend_written_on(tmp_path: Path, device: str) -> None:
    meta_path = tmp_path / "meta.json"
    meta = json.loads(meta_path.read_text())
    meta_path.write_text(json.dumps({**meta, "device": device}))


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the fallback on a CPU-only machine")
def test_gpu_artifacts_read_on_the_cpu_when_no_gpu_is_here(tmp_path: Path) -> None:
    art = Artifact(str(tmp_path))
    PyTorchTensorMaterializer(art).handle_return(torch.arange(3))
    _pretend_written_on(tmp_path, "cuda:0")  # as scripts/gpu_check.py writes it on a GPU
    assert PyTorchTensorMaterializer(art).handle_input(torch.Tensor).device.type == "cpu"
    on_cpu = PyTorchTensorMaterializer.on("cpu")
    assert on_cpu(art).handle_input(torch.Tensor).device.type == "cpu"
    with pytest.raises(MaterializerError, match=r"no cuda device.*\.on\('cpu'\)"):
        PyTorchTensorMaterializer.on("cuda")(art).handle_input(torch.Tensor)

    net_dir = tmp_path / "net"
    net_dir.mkdir()
    PyTorchModuleMaterializer(Artifact(str(net_dir))).handle_return(TinyNet(4, 2))
    _pretend_written_on(net_dir, "cuda:1")
    back = PyTorchModuleMaterializer(Artifact(str(net_dir))).handle_input(nn.Module)
    assert next(back.parameters()).device.type == "cpu"


def test_reading_variants_do_not_replace_the_default() -> None:
    from runstack.materializers import registry

    on_cpu = PyTorchModuleMaterializer.on("cpu")
    assert on_cpu.MAP_LOCATION == "cpu" and on_cpu is not PyTorchModuleMaterializer
    assert PyTorchModuleMaterializer.on(torch.device("cpu")) is on_cpu  # made once
    assert registry.get(nn.Linear) is PyTorchModuleMaterializer


class FitConfig(BaseStepConfig):
    epochs: int = 15
    hidden: int = 6


@step
def make_data() -> TensorDataset:
    g = torch.Generator().manual_seed(3)
    x = torch.randn(80, 4, generator=g)
    return TensorDataset(x, (x[:, 0] > 0).long())


@trainer
def fit(dataset: Dataset, config: FitConfig) -> Output(model=nn.Module, loss=float):
    torch.manual_seed(0)
    x, y = dataset.tensors  # type: ignore[attr-defined]
    net = TinyNet(4, config.hidden)
    opt = torch.optim.Adam(net.parameters(), lr=0.05)
    for _ in range(config.epochs):
        opt.zero_grad()
        loss = nn.functional.cross_entropy(net(x), y)
        loss.backward()
        opt.step()
    return net.eval(), loss.item()


@pipeline
def torch_pipeline(data, train):
    train(data())


def test_a_trainer_step_returns_a_module_that_reads_back(repo: Repository) -> None:
    run = torch_pipeline(make_data(), fit()).run()
    step_view = run.get_step("train")
    assert step_view.role == "trainer"
    model = step_view.outputs["model"].read()
    assert isinstance(model, TinyNet) and not model.training
    x, y = step_view.inputs["dataset"].read().tensors
    loss = nn.functional.cross_entropy(model(x), y).item()
    assert loss < step_view.outputs["loss"].read()  # one more step of training lowered it
    on_cpu = step_view.outputs["model"].read(materializer=PyTorchModuleMaterializer.on("cpu"))
    assert torch.equal(on_cpu(x), model(x))


def test_the_documented_mlp_runs_and_round_trips_without_pickle(tmp_path: Path) -> None:
    import re

    doc = Path(__file__).resolve().parents[2] / "docs" / "materializers.md"
    block = next(b for b in re.findall(r"```python\n(.*?)```", doc.read_text(), re.S) if "MLP" in b)
    namespace: dict[str, Any] = {"__name__": "runstack_docs_mlp"}
    exec(compile(block, str(doc), "exec"), namespace)
    mlp = namespace["MLP"](4)
    assert mlp(torch.ones(3, 4)).shape == (3, 2)  # it has a forward()
    assert mlp.get_config() == {"n_features": 4, "hidden": 16}


def test_a_module_whose_class_cannot_be_imported_fails_when_written(tmp_path: Path) -> None:
    """Issue 11: 3. Written and recorded, it could never be read back."""

    class Local(nn.Module):  # defined in a function: no reader can import it
        def __init__(self, n: int) -> None:
            super().__init__()
            self.n, self.lin = n, nn.Linear(n, n)

        def get_config(self) -> dict[str, int]:
            return {"n": self.n}

    with pytest.raises(MaterializerError, match="cannot be loaded back.*importable"):
        PyTorchModuleMaterializer(Artifact(str(tmp_path))).handle_return(Local(2))


def test_a_module_stored_whole_is_logged_as_pickle_when_written(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Issue 11: 14. Writing a pickle-based artifact says so, as scikit-learn's fallback does."""
    with caplog.at_level("WARNING", logger="runstack"):
        written = PyTorchModuleMaterializer(Artifact(str(tmp_path)))
        written.handle_return(nn.Sequential(nn.Linear(2, 2)))
    assert "torch.save (pickle)" in caplog.text and written.storage_format == "pickle"
