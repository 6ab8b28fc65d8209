"""Run diff and comparison (issue 12): ``run_a.diff(run_b)``, ``Repository().diff/compare``.

Each test makes two real runs that differ in one way and asserts the diff field by field.
"""

from __future__ import annotations

import importlib
import json
import pickle
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from runstack.exceptions import RunNotFoundError, StepNotFoundError
from runstack.execution import _fingerprint
from runstack.materializers import BaseMaterializer, PandasMaterializer
from runstack.pipelines import pipeline
from runstack.post_execution import (
    ArrayDiff,
    ComponentChange,
    Delta,
    OpaqueDiff,
    RunDiff,
    TableDiff,
    ValueDiff,
)
from runstack.repository import Repository
from runstack.steps import BaseStepConfig, Output, step
from user_code import Code, user_code


@pytest.fixture
def code(isolated: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Code]:
    yield from user_code(isolated, monkeypatch)


class LoadConfig(BaseStepConfig):
    rows: int = 4
    x_as: str = "int"  # "int", "float" or "str": the type of column x
    extra: bool = False  # add a column "z"


@step
def load(config: LoadConfig) -> pd.DataFrame:
    n = config.rows
    xs: list[Any] = list(range(n))
    if config.x_as == "float":
        xs = [float(x) for x in xs]
    elif config.x_as == "str":
        xs = [str(x) for x in xs]
    df = pd.DataFrame({"x": xs, "y": [i * 2.0 for i in range(n)], "c": ["a"] * n})
    if config.extra:
        df["z"] = 1
    return df


@step
def train(df: pd.DataFrame) -> Output(weights=np.ndarray, loss=float, info=dict, label=str):
    n = len(df)
    return np.full((2, n), 1.5), float(df["y"].sum()), {"rows": n, "kind": "linear"}, "model"


@pipeline
def training(load, train):
    train(load())


@pipeline
def other_training(load, train):
    train(load())


def run(name: str, pipe: Any = training, **config: Any) -> Any:
    return pipe(load=load(config=LoadConfig(**config)), train=train()).run(run_name=name)


def change(component: str, name: str, before: Any, after: Any, kind: str = "changed") -> Any:
    """The fields of a ComponentChange, without the sentence."""
    return (component, name, before, after, kind)


def fields_of(changes: tuple[ComponentChange, ...]) -> list[Any]:
    return [(c.component, c.name, c.before, c.after, c.change) for c in changes]


def test_parameter_change_reaches_outputs_and_downstream_inputs(repo: Repository) -> None:
    a, b = run("a"), run("b", rows=6)
    diff = a.diff(b)
    assert isinstance(diff, RunDiff)
    assert (diff.a.name, diff.b.name, diff.same_pipeline, diff.identical) == ("a", "b", True, False)
    assert [s.name for s in diff.steps] == ["load", "train"]

    load_diff = diff.step("load")
    assert (load_diff.presence, load_diff.status, load_diff.cached) == (
        "both",
        Delta("completed", "completed"),
        Delta(False, False),
    )
    assert load_diff.cache_key_same is False
    assert fields_of(load_diff.changes) == [change("parameter", "rows", 4, 6)]
    assert load_diff.changes[0].description == "config `rows` 4 -> 6"
    (table,) = load_diff.outputs
    assert (table.name, table.presence, table.same) == ("output", "both", False)
    assert table.content_hash.before != table.content_hash.after
    detail = table.detail
    assert isinstance(detail, TableDiff)
    assert detail.rows == Delta(4, 6) and detail.rows.delta == 2
    assert (detail.columns_added, detail.columns_removed, detail.columns_retyped) == ((), (), {})
    assert detail.column_stats["y"]["mean"] == Delta(3.0, 5.0)
    assert detail.column_stats["y"]["max"] == Delta(6.0, 10.0)
    assert detail.column_stats["c"]["top_values"] == Delta({"a": 4}, {"a": 6})
    assert "nulls" not in detail.column_stats["y"]  # only statistics that differ

    train_diff = diff.step("train")
    df_hashes = (table.content_hash.before, table.content_hash.after)
    assert fields_of(train_diff.changes) == [change("input", "df", *df_hashes)]
    outputs = {o.name: o for o in train_diff.outputs}
    loss = outputs["loss"].detail
    assert isinstance(loss, ValueDiff) and loss.value == Delta(12.0, 30.0)
    assert loss.value.delta == 18.0
    info = outputs["info"].detail
    assert isinstance(info, ValueDiff)
    assert info.value == Delta({"rows": 4, "kind": "linear"}, {"rows": 6, "kind": "linear"})
    assert (info.keys_added, info.keys_removed, info.keys_changed) == ((), (), ("rows",))
    weights = outputs["weights"].detail
    assert isinstance(weights, ArrayDiff)
    assert (weights.shape, weights.dtype) == (Delta([2, 4], [2, 6]), Delta("float64", "float64"))
    assert weights.stats == {"size": Delta(8, 12)}  # same values: min, max, mean, std equal
    assert outputs["label"].same is True and outputs["label"].detail is None

    text = str(diff)
    assert "config `rows` 4 -> 6" in text and "rows 4 -> 6" in text and "12.0 -> 30.0" in text


def test_to_dict_is_strict_json_with_every_field(repo: Repository) -> None:
    diff = run("a").diff(run("b", rows=6))
    data = json.loads(json.dumps(diff.to_dict(), allow_nan=False))
    assert data["a"]["name"] == "a" and data["b"]["pipeline"] == "training"
    assert (data["same_pipeline"], data["identical"]) == (True, False)
    load_d, train_d = data["steps"]
    assert set(load_d) == {
        "name", "presence", "entrypoint", "status", "cached", "duration", "cache_key_same",
        "changes", "outputs", "notes", "differs",
    }  # fmt: skip
    assert load_d["changes"] == [
        {
            "component": "parameter",
            "name": "rows",
            "before": 4,
            "after": 6,
            "change": "changed",
            "description": "config `rows` 4 -> 6",
        }
    ]
    table = load_d["outputs"][0]
    assert (table["same"], table["differs"], table["detail"]["kind"]) == (False, True, "table")
    assert table["detail"]["rows"] == {"before": 4, "after": 6, "delta": 2}
    loss = next(o for o in train_d["outputs"] if o["name"] == "loss")
    assert loss["detail"] == {
        "kind": "value",
        "note": None,
        "value": {"before": 12.0, "after": 30.0, "delta": 18.0},
        "length": None,
        "keys_added": [],
        "keys_removed": [],
        "keys_changed": [],
    }
    weights = next(o for o in train_d["outputs"] if o["name"] == "weights")
    assert weights["detail"]["shape"] == {"before": [2, 4], "after": [2, 6], "delta": None}


def test_identical_runs_have_an_empty_diff(repo: Repository) -> None:
    a, b = run("a"), run("b")
    assert [s.status.value for s in b.steps] == ["cached", "cached"]
    diff = a.diff(b)
    assert diff.identical and diff.differences == ()
    load_diff = diff.step("load")
    assert load_diff.status == Delta("completed", "cached")
    assert load_diff.cached == Delta(False, True)
    assert load_diff.changes == () and load_diff.cache_key_same is True
    assert all(o.same for s in diff.steps for o in s.outputs)
    assert not load_diff.differs  # ran in one, reused in the other: the same results
    assert str(diff) == "Run 'a' -> 'b': no differences."
    with pytest.raises(StepNotFoundError, match="Did you mean 'train'"):
        diff.step("trian")
    assert diff.to_dict()["identical"] is True


def test_column_retyped_added_and_removed(repo: Repository) -> None:
    a, b = run("a"), run("b", x_as="str", extra=True)
    (out,) = a.diff(b).step("load").outputs
    detail = out.detail
    assert isinstance(detail, TableDiff)
    assert list(detail.columns_retyped) == ["x"]
    # Arrow's name for the type pandas wrote (pandas 3 writes large_string).
    assert detail.columns_retyped["x"].before == "int64"
    assert detail.columns_retyped["x"].after in ("string", "large_string")
    assert detail.columns_added == ("z",) and detail.columns_removed == ()
    assert detail.rows == Delta(4, 4)
    # A numeric column that became text: its numeric statistics go, its top values come.
    x = detail.column_stats["x"]
    assert x["mean"] == Delta(1.5, None) and x["top_values"].before is None
    assert "y" not in detail.column_stats  # unchanged column
    back = b.diff(a).step("load").outputs[0].detail
    assert isinstance(back, TableDiff) and back.columns_removed == ("z",)
    floats = a.diff(run("c", x_as="float")).step("load").outputs[0].detail
    assert isinstance(floats, TableDiff)
    assert floats.columns_retyped == {"x": Delta("int64", "double")}
    assert floats.column_stats.get("x", {}) == {}  # same numbers, other type


@step(enable_cache=False)
def read_csv() -> pd.DataFrame:
    return pd.read_csv("data.csv")


@step
def total(df: pd.DataFrame) -> float:
    return float(df["v"].sum())


@pipeline
def from_file(read_csv, total):
    total(read_csv())


def test_input_data_change(repo: Repository, isolated: Path) -> None:
    (isolated / "data.csv").write_text("v\n1\n2\n")
    a = from_file(read_csv=read_csv(), total=total()).run(run_name="a")
    (isolated / "data.csv").write_text("v\n1\n2\n4\n")
    b = from_file(read_csv=read_csv(), total=total()).run(run_name="b")
    diff = a.diff(b)
    reader = diff.step("read_csv")
    assert reader.changes == ()  # same code and parameters: the data changed
    table = reader.outputs[0].detail
    assert isinstance(table, TableDiff) and table.rows == Delta(2, 3)
    assert table.column_stats["v"]["max"] == Delta(2, 4)
    summed = diff.step("total")
    ((component, name, before, after, kind),) = fields_of(summed.changes)
    assert (component, name, kind) == ("input", "df", "changed")
    assert (before, after) == (
        a.get_step("read_csv").output.content_hash,
        b.get_step("read_csv").output.content_hash,
    )
    assert summed.changes[0].description == "input `df` changed (content hash)"
    value = summed.outputs[0].detail
    assert isinstance(value, ValueDiff) and value.value == Delta(3.0, 7.0)


def test_helper_function_edit(code: Code, repo: Repository) -> None:
    code.write(
        "helped",
        """
        from runstack.pipelines import pipeline
        from runstack.steps import step

        def scale(v):
            return v * 2

        @step
        def compute() -> int:
            return scale(21)

        @pipeline
        def helped(compute):
            compute()
        """,
    )
    mod = code.load("helped")
    a = mod.helped(compute=mod.compute()).run(run_name="a")
    code.edit("helped", "return v * 2", "return v * 3")
    mod = code.load("helped")
    b = mod.helped(compute=mod.compute()).run(run_name="b")
    s = a.diff(b).step("compute")
    ((component, name, before, after, kind),) = fields_of(s.changes)
    assert (component, name, kind) == ("helper", "helped:scale", "changed")
    helpers = (
        a.get_step("compute").cache_components["code"]["helpers"]["helped:scale"],
        b.get_step("compute").cache_components["code"]["helpers"]["helped:scale"],
    )
    assert (before, after) == helpers and before != after
    assert s.changes[0].description == "code of helper `scale` (module `helped`) changed"
    out = s.outputs[0].detail
    assert isinstance(out, ValueDiff) and out.value == Delta(42, 63) and out.value.delta == 21


def _fake_dist(root: Path, version: str) -> Path:
    """A package ``fakepkg`` with an installed distribution's metadata, in a site dir."""
    site = root / f"v{version}" / "site-packages"
    (site / "fakepkg").mkdir(parents=True)
    (site / "fakepkg" / "__init__.py").write_text("def value():\n    return 5\n")
    info = site / f"fakepkg-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: fakepkg\nVersion: {version}\n")
    return site


def test_package_version_change(
    code: Code, repo: Repository, isolated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    code.write(
        "uses_pkg",
        """
        import fakepkg

        from runstack.pipelines import pipeline
        from runstack.steps import step

        @step
        def use() -> int:
            return fakepkg.value()

        @pipeline
        def packaged(use):
            use()
        """,
    )

    def install(version: str) -> Any:
        site = _fake_dist(isolated, version)
        monkeypatch.setattr(sys, "path", [str(site), *(p for p in sys.path if "/v1.0/" not in p)])
        sys.modules.pop("fakepkg", None)
        importlib.invalidate_caches()
        # The fingerprint remembers versions and module kinds for the process: a new one.
        monkeypatch.setattr(_fingerprint, "_versions", {})
        monkeypatch.setattr(_fingerprint, "_module_kind", {})
        monkeypatch.setattr(_fingerprint, "_roots", None)
        return code.load("uses_pkg")

    monkeypatch.setitem(sys.modules, "fakepkg", None)  # restored (removed) after the test
    mod = install("1.0")
    a = mod.packaged(use=mod.use()).run(run_name="a")
    mod = install("2.0")
    b = mod.packaged(use=mod.use()).run(run_name="b")
    assert [s.status.value for s in b.steps] == ["completed"]  # the version is in the key
    s = a.diff(b).step("use")
    assert fields_of(s.changes) == [change("package", "fakepkg", "1.0", "2.0")]
    assert s.changes[0].description == "package `fakepkg` 1.0 -> 2.0"
    assert s.outputs[0].same is True  # same result under the new version
    assert s.differs


def test_runs_of_two_pipelines_match_by_slot(repo: Repository) -> None:
    a, b = run("a"), run("b", pipe=other_training)
    diff = a.diff(b)
    assert not diff.same_pipeline and (diff.a.pipeline, diff.b.pipeline) == (
        "training",
        "other_training",
    )
    assert [s.presence for s in diff.steps] == ["both", "both"]
    assert diff.step("load").changes == ()  # pipeline names are not reported per step
    assert diff.step("load").cache_key_same is False  # ...though they are in the key
    assert diff.identical
    assert "pipelines 'training' and 'other_training'" in str(diff)
    assert diff.to_dict()["same_pipeline"] is False


@pipeline
def just_load(load):
    load()


def test_step_present_in_one_run_only(repo: Repository) -> None:
    a = just_load(load=load()).run(run_name="a")
    b = run("b")
    diff = a.diff(b)
    assert [(s.name, s.presence) for s in diff.steps] == [("load", "both"), ("train", "only_b")]
    only = diff.step("train")
    assert only.status == Delta(None, "completed") and only.outputs == () and only.differs
    assert [(s.name, s.presence) for s in b.diff(a).steps][1] == ("train", "only_a")


class Blob:
    def __init__(self, value: int) -> None:
        self.value = value


class PickledBlobMaterializer(BaseMaterializer):
    """Pickle-based: a diff must never read it back."""

    ASSOCIATED_TYPES = (Blob,)

    def handle_return(self, data: Any) -> None:
        with self.artifact.open("blob.pkl", "wb") as f:
            f.write(pickle.dumps(data.value))
        self.storage_format = "pickle"

    def handle_input(self, data_type: type) -> Any:
        raise AssertionError("a diff read a pickle-based artifact")


class BlobConfig(BaseStepConfig):
    value: int = 1


@step
def make_blob(config: BlobConfig) -> Blob:
    return Blob(config.value)


@pipeline
def blobs(make_blob):
    make_blob()


def test_pickle_based_artifacts_are_never_opened(repo: Repository) -> None:
    a = blobs(make_blob=make_blob()).run(run_name="a")
    b = blobs(make_blob=make_blob(config=BlobConfig(value=2))).run(run_name="b")
    out = a.diff(b).step("make_blob").outputs[0]
    assert out.same is False
    assert isinstance(out.detail, OpaqueDiff)
    assert out.detail.hashes == out.content_hash and out.detail.hashes.changed
    assert out.detail.note == "pickle-based, not opened for a diff"
    assert out.detail.to_dict()["kind"] == "opaque"


def test_reading_is_bounded(repo: Repository) -> None:
    a, b = run("a"), run("b", rows=6)
    diff = a.diff(b, read_limit=20)
    outputs = {o.name: o.detail for o in diff.step("train").outputs}
    loss = outputs["loss"]
    assert isinstance(loss, ValueDiff)  # 4 bytes of JSON: under the limit
    info = outputs["info"]
    assert isinstance(info, OpaqueDiff) and info.note is not None
    assert info.note.startswith("too large to diff:") and "20-byte limit" in info.note
    weights = outputs["weights"]
    assert isinstance(weights, ArrayDiff)  # shape and dtype come from the header alone
    assert weights.shape == Delta([2, 4], [2, 6]) and weights.stats == {}
    assert weights.note is not None and "too large to read" in weights.note
    table = diff.step("load").outputs[0].detail
    assert isinstance(table, TableDiff) and table.rows == Delta(4, 6)  # from the footer
    assert table.column_stats == {} and "statistics not computed" in (table.note or "")
    nothing = a.diff(b, read_limit=0).step("train").outputs[1].detail
    assert isinstance(nothing, OpaqueDiff) and nothing.note == "not read (read_limit=0)"


def test_repository_diff_resolves_latest(repo: Repository) -> None:
    run("one")
    run("two", rows=5)
    run("three", rows=6)
    diff = Repository().diff("latest~2", "latest", pipeline="training")
    assert (diff.a.name, diff.b.name) == ("one", "three")
    assert Repository().get_run("latest~1", pipeline="training").name == "two"
    assert Repository().diff("one", "two").step("load").changes[0].after == 5
    with pytest.raises(RunNotFoundError, match=r"only 3 run\(s\)"):
        Repository().get_run("latest~3", pipeline="training")
    with pytest.raises(RunNotFoundError, match="say which pipeline"):
        Repository().get_run("latest")


def test_unknown_run_lists_known_names(repo: Repository) -> None:
    run("first-run")
    run("second-run", rows=5)
    with pytest.raises(RunNotFoundError) as e:
        Repository().diff("first-run", "secnd-run")
    message = str(e.value)
    assert "No run named 'secnd-run'" in message
    assert "Known runs (newest first): 'second-run', 'first-run'" in message
    assert "Did you mean 'second-run'?" in message
    with pytest.raises(RunNotFoundError, match="Did you mean 'second-run'"):
        Repository().get_run("secnd-run", pipeline="training")


def test_compare_runs_shows_parameters_that_differ_and_metrics(repo: Repository) -> None:
    run("a")
    run("b", rows=6)
    run("c", x_as="float")
    comparison = Repository().compare("a", "b", "c")
    assert comparison.parameters == ("load.rows", "load.x_as")  # load.extra is the same
    assert comparison.metrics == ("train.loss", "train.label")  # info is a dict: no metric
    rows = [(r.run.name, r.parameters, r.metrics) for r in comparison.rows]
    assert rows == [
        ("a", {"load.rows": 4, "load.x_as": "int"}, {"train.loss": 12.0, "train.label": "model"}),
        ("b", {"load.rows": 6, "load.x_as": "int"}, {"train.loss": 30.0, "train.label": "model"}),
        ("c", {"load.rows": 4, "load.x_as": "float"}, {"train.loss": 12.0, "train.label": "model"}),
    ]
    data = json.loads(json.dumps(comparison.to_dict(), allow_nan=False))
    assert data["rows"][1]["name"] == "b" and data["rows"][1]["metrics"]["train.loss"] == 30.0


class K(BaseStepConfig):
    k: int = 1


@step
def metric(config: K) -> Output(score=float, count=int):
    return config.k * 0.5, config.k


@pipeline
def wide(m1, m2, m3, m4, m5, m6):
    for m in (m1, m2, m3, m4, m5, m6):
        m()


def _wide(name: str, changed: int) -> Any:
    """Six steps; the first ``changed`` of them with k=2."""
    steps = {f"m{i}": metric(config=K(k=2 if i <= changed else 1)) for i in range(1, 7)}
    return wide(**steps).run(run_name=name)


def test_diff_and_compare_cost_few_queries(repo: Repository) -> None:
    from store_support import StatementCounter

    _wide("a", 0), _wide("b", 2), _wide("c", 0)
    store = repo.active_stack.metadata_store

    def fresh() -> dict[str, Any]:
        return {r.name: r for r in Repository().get_pipeline("wide").runs}

    views = fresh()
    with StatementCounter(store) as same:
        assert views["a"].diff(views["c"]).identical
    views = fresh()
    with StatementCounter(store) as two:
        assert len(views["a"].diff(views["b"]).differences) == 2
    with StatementCounter(store) as table:
        assert len(Repository().compare("a", "b", "c").rows) == 3
    # The runs' steps (listed together), every output in one go, and components only where
    # the keys differ (one query per step and run: the store has no batch read of them).
    assert same.queries == 2, same.statements
    assert two.queries == 2 + 2 * 2, two.statements
    assert table.queries <= 3 * 2 + 1 + 3, (
        table.statements
    )  # resolve 3 runs by name, steps, outputs


class Kind(BaseStepConfig):
    floats: bool = False


@step
def polars_table(config: Kind) -> Any:
    import polars as pl

    values = [1.0, 2.0, 4.0] if config.floats else [1, 2, 3]
    return pl.DataFrame({"a": values, "b": ["x", "y", "y"]})


@step
def arrow_table(config: Kind) -> Any:
    import pyarrow as pa

    columns = {"a": [1, 2, 3]}
    if config.floats:
        columns["extra"] = [0.5, 0.5, 0.5]
    return pa.table(columns)


@pipeline
def other_tables(p, q):
    p()
    q()


def test_polars_and_arrow_tables(repo: Repository) -> None:
    def go(name: str, floats: bool) -> Any:
        cfg = Kind(floats=floats)
        return other_tables(p=polars_table(config=cfg), q=arrow_table(config=cfg)).run(
            run_name=name
        )

    a, b = go("a", False), go("b", True)
    assert a.get_step("p").output.materializer.endswith("PolarsMaterializer")
    assert a.get_step("q").output.materializer.endswith("ArrowMaterializer")
    diff = a.diff(b)
    polars_diff = diff.step("p").outputs[0].detail
    assert isinstance(polars_diff, TableDiff)
    assert polars_diff.columns_retyped == {"a": Delta("int64", "double")}
    assert polars_diff.column_stats["a"]["max"] == Delta(3, 4.0)
    assert "b" not in polars_diff.column_stats
    arrow_diff = diff.step("q").outputs[0].detail
    assert isinstance(arrow_diff, TableDiff)
    assert (arrow_diff.columns_added, arrow_diff.columns_retyped) == (("extra",), {})
    assert arrow_diff.rows == Delta(3, 3) and arrow_diff.column_stats == {}


def test_without_content_hashes_the_diff_says_it_cannot_tell(
    repo: Repository, isolated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RUNSTACK_CONTENT_HASH_MAX_BYTES", "1")  # nothing gets hashed
    (isolated / "data.csv").write_text("v\n1\n2\n")
    a = from_file(read_csv=read_csv(), total=total()).run(run_name="a")
    b = from_file(read_csv=read_csv(), total=total()).run(run_name="b")  # same data, re-read
    assert a.get_step("read_csv").output.content_hash is None
    diff = a.diff(b)
    assert not diff.identical  # unknown is never reported as "the same"
    (out,) = diff.step("read_csv").outputs
    assert out.same is None and out.differs
    assert isinstance(out.detail, TableDiff) and out.detail.rows == Delta(2, 2)
    assert out.detail.column_stats == {}  # as far as can be seen, the same
    assert "whether the content is the same is unknown" in (out.detail.note or "")
    ((component, name, before, after, kind),) = fields_of(diff.step("total").changes)
    assert (component, name, kind) == ("input", "df", "changed")
    assert str(before).startswith("artifact:") and str(after).startswith("artifact:")
    assert "too large to hash" in diff.step("total").changes[0].description


class ParquetFrames(PandasMaterializer):
    ASSOCIATED_TYPES = ()  # only where asked for: DataFrames keep their default materializer


def test_step_code_constant_and_materializer_changes(code: Code, repo: Repository) -> None:
    code.write(
        "coded",
        """
        import pandas as pd

        from runstack.pipelines import pipeline
        from runstack.steps import step

        FACTOR = 2

        @step
        def frame() -> pd.DataFrame:
            return pd.DataFrame({"v": [FACTOR]})

        @pipeline
        def coded(frame):
            frame()
        """,
    )
    mod = code.load("coded")
    a = mod.coded(frame=mod.frame()).run(run_name="a")
    code.edit("coded", "FACTOR = 2", "FACTOR = 3")
    code.edit("coded", '{"v": [FACTOR]}', '{"v": [FACTOR, 1]}')
    mod = code.load("coded")
    b = mod.coded(frame=mod.frame().with_return_materializers(ParquetFrames)).run(run_name="b")
    s = a.diff(b).step("frame")
    by_component = {c.component: c for c in s.changes}
    assert sorted(by_component) == ["constant", "materializer", "step_code"]
    constant = by_component["constant"]
    assert (constant.name, constant.before, constant.after) == ("coded:FACTOR", "2", "3")
    step_code = by_component["step_code"]
    assert step_code.before != step_code.after and step_code.name == ""
    assert step_code.description == "code of step `frame` changed"
    mat = by_component["materializer"]
    assert (mat.name, mat.before, mat.after) == (
        "output",
        "runstack.materializers._pandas.PandasMaterializer",
        "test_diff.ParquetFrames",
    )
    # A materializer the diff does not know is not opened, even one that writes Parquet.
    detail = s.outputs[0].detail
    assert isinstance(detail, OpaqueDiff)
    assert detail.note == "different kinds of data (table -> opaque)"
