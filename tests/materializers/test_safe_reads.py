"""Reading runs no code the record did not allow, and says what went wrong (issue 11: 3, 12,
14, 16, 17, 22)."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import sqlalchemy as sa
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import FunctionTransformer
from torch import nn

from runstack.exceptions import ArtifactCorruptedError, MaterializerError
from runstack.materializers import (
    BuiltInMaterializer,
    PandasMaterializer,
    PyTorchModuleMaterializer,
    registry,
)
from runstack.materializers._read import load_data_type, load_materializer
from runstack.metadata_stores import _schema as t
from runstack.pipelines import pipeline
from runstack.repository import Repository
from runstack.steps import step


@step
def three() -> int:
    return 3


@step
def whole_module() -> nn.Module:
    return nn.Sequential(nn.Linear(2, 1))


@step(enable_cache=False)
def doubler() -> Pipeline:
    return make_pipeline(FunctionTransformer(lambda x: x * 2)).fit(np.ones((2, 2)))


@pipeline
def one(first):
    first()


def _set_artifact(repo: Repository, **values: Any) -> None:
    store = repo.active_stack.metadata_store
    with store.engine.begin() as conn:
        conn.execute(sa.update(t.artifacts).values(**values))


def _output(repo: Repository) -> Any:
    return Repository(repo.root).get_pipeline("one").runs[-1].steps[0].output


# -- 12: recorded names are not imported blindly ------------------------------------------


@pytest.mark.parametrize("recorded", ["this.s", "antigravity.x", "os.system", "json.JSONDecoder"])
def test_recorded_materializer_names_are_checked_before_any_import(
    repo: Repository, recorded: str
) -> None:
    one(three()).run()
    _set_artifact(repo, materializer=recorded)
    module = recorded.partition(".")[0]
    was_loaded = module in sys.modules
    with pytest.raises(MaterializerError, match="materializer") as e:
        _output(repo).read()
    assert recorded in str(e.value)
    assert (module in sys.modules) == was_loaded  # nothing imported to find out
    assert "RUNSTACK_MATERIALIZER_MODULES" in str(e.value) or "not a materializer" in str(e.value)


def test_reading_a_tampered_record_in_a_fresh_process_prints_nothing(repo: Repository) -> None:
    one(three()).run()
    _set_artifact(repo, materializer="this.s", data_type="antigravity.x")
    code = (
        "from runstack.repository import Repository\n"
        "try:\n"
        "    Repository().get_pipeline('one').runs[-1].steps[0].output.read()\n"
        "except Exception as e:\n"
        "    print(type(e).__name__)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=repo.root, check=True
    ).stdout
    assert out.strip() == "MaterializerError"  # and no Zen of Python


def test_data_types_are_never_imported() -> None:
    assert load_data_type("builtins.int") is int
    assert load_data_type("this.s") is object and "this" not in sys.modules
    assert load_data_type("json.dumps") is object  # loaded, but not a class
    assert load_materializer("runstack.materializers._builtin.BuiltInMaterializer") is (
        BuiltInMaterializer
    )


def test_trusted_modules_may_be_imported_but_must_hold_materializers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("RUNSTACK_MATERIALIZER_MODULES", "json")
    with pytest.raises(MaterializerError, match="not a materializer class"):
        load_materializer("json.JSONDecoder")


# -- 16, 22: the wrong materializer, or not a materializer ---------------------------------


def test_the_wrong_materializer_says_who_wrote_it(repo: Repository) -> None:
    one(three()).run()
    with pytest.raises(MaterializerError) as e:
        _output(repo).read(materializer=PandasMaterializer)
    msg = str(e.value)
    assert "BuiltInMaterializer" in msg and "PandasMaterializer cannot read it" in msg
    assert "deleted or moved" not in msg


@pytest.mark.parametrize("bad", ["PandasMaterializer", 3, int])
def test_read_needs_a_materializer_class(repo: Repository, bad: Any) -> None:
    one(three()).run()
    with pytest.raises(TypeError, match="materializer class.*BaseMaterializer"):
        _output(repo).read(materializer=bad)


# -- 17: a missing extra is an install hint ------------------------------------------------


def test_a_missing_extra_says_what_to_install(
    repo: Repository, monkeypatch: pytest.MonkeyPatch
) -> None:
    one(three()).run()
    _set_artifact(repo, materializer="runstack.materializers._pandas.PandasMaterializer")
    monkeypatch.delitem(sys.modules, "runstack.materializers._pandas", raising=False)
    monkeypatch.setitem(sys.modules, "pandas", None)  # "not installed"
    known = {k: v for k, v in registry._by_path.items() if "_pandas" not in k}
    monkeypatch.setattr(registry, "_by_path", known)  # as in a process without pandas
    with pytest.raises(MaterializerError, match=r"pip install 'runstack\[pandas\]'"):
        _output(repo).read()
    # The CLI says the same, with a non-zero exit and no traceback.
    from click.testing import CliRunner

    from runstack.cli import main

    run = Repository(repo.root).get_pipeline("one").runs[-1]
    result = CliRunner().invoke(main, ["artifact", "read", run.name, run.steps[0].name])
    assert result.exit_code == 1, result.output
    assert "pip install 'runstack[pandas]'" in result.output
    assert "Traceback" not in result.output and "AttributeError" not in result.output


# -- 14: pickle only where the record says so ----------------------------------------------


def test_pickle_artifacts_are_recorded_warned_and_refused_when_not_recorded(
    repo: Repository, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="runstack"):
        one(whole_module()).run()
    assert "storing it whole with torch.save (pickle)" in caplog.text
    store = repo.active_stack.metadata_store
    with store.engine.connect() as conn:
        assert conn.execute(sa.select(t.artifacts.c.storage_format)).scalar() == "pickle"
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="runstack"):
        assert isinstance(_output(repo).read(), nn.Sequential)
        _output(repo).read()
    assert caplog.text.count("pickle-based artifact") == 1  # warned once
    _set_artifact(repo, storage_format=None)
    with pytest.raises(MaterializerError, match="say they are a pickle"):
        _output(repo).read(materializer=PyTorchModuleMaterializer)


class Rebuildable(nn.Module):
    def __init__(self, n: int = 2) -> None:
        super().__init__()
        self.n = n
        self.lin = nn.Linear(n, 1)

    def get_config(self) -> dict[str, int]:
        return {"n": self.n}


@step
def safe_module() -> nn.Module:
    return Rebuildable(3)


def test_files_replaced_by_a_pickle_are_not_unpickled(repo: Repository) -> None:
    import torch

    one(safe_module()).run()
    art = _output(repo)
    assert isinstance(art.read(), Rebuildable)
    folder = Path(art.uri.removeprefix("file://"))
    meta = json.loads((folder / "meta.json").read_text())
    assert meta["format"] == "state_dict"
    # Someone swaps the files for a pickle: the record still says it is not one.
    torch.save(nn.Linear(1, 1), folder / "module.pt")
    (folder / "meta.json").write_text(json.dumps({**meta, "format": "pickle"}))
    with pytest.raises(ArtifactCorruptedError):  # the files differ from those recorded
        _output(repo).read()
    # Even unverified (or with hashes made to match), the record decides: no unpickling.
    with pytest.raises(MaterializerError, match="not unpickled"):
        _output(repo).read(verify=False)


# -- 3: nothing unreadable is recorded -----------------------------------------------------


def test_a_model_that_cannot_be_read_back_fails_the_step(repo: Repository) -> None:
    with pytest.raises(MaterializerError) as e:
        one(doubler()).run()
    msg = str(e.value)
    assert "read back" in msg and "lambda" in msg and "module level" in msg
    run = Repository(repo.root).get_pipeline("one").runs[-1]
    assert run.steps[0].status.value == "failed"
