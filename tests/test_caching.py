"""Inputs enter the key by content, hits need their artifacts, and every cache decision is
explained (issue 4). How the key follows code is in test_fingerprint.py."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from runstack.execution import RunEvent
from runstack.models import ArtifactRecord, ExecutionStatus
from runstack.pipelines import pipeline
from runstack.repository import Repository
from runstack.steps import step
from user_code import Code, reasons, statuses, user_code


@pytest.fixture
def code(isolated: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Code]:
    yield from user_code(isolated, monkeypatch)


FEATURES = """
    import mathutil

    SCALE = 3

    def normalize(x):
        return mathutil.double(x) * SCALE

    def unrelated():
        return "not used by any step"
"""
MATHUTIL = """
    def double(x):
        return x * 2
"""
STEPS = """
    import features
    from runstack.pipelines import pipeline
    from runstack.steps import BaseStepConfig, step

    class LoadConfig(BaseStepConfig):
        factor: int = 31

    @step
    def load(config: LoadConfig) -> int:
        return config.factor // 10

    @step
    def transform(x: int) -> int:
        return features.normalize(x)

    @pipeline
    def etl(load, transform):
        transform(load())
"""


def run(module: Any, events: list[RunEvent] | None = None, **config: Any) -> Any:
    pipe = module.etl(load=module.load(**config), transform=module.transform())
    listener = events.append if events is not None else (lambda e: None)
    return Repository().active_stack.run_pipeline(pipe, listener=listener)


@pytest.fixture
def etl(repo: Repository, code: Code) -> Code:
    code.write("mathutil", MATHUTIL)
    code.write("features", FEATURES)
    code.write("steps_mod", STEPS)
    return code


def test_second_run_is_cached_and_names_the_run_it_reused(etl: Code) -> None:
    first = run(etl.load("steps_mod"))
    events: list[RunEvent] = []
    second = run(etl.load("steps_mod"), events)
    assert statuses(second) == {"load": "cached", "transform": "cached"}
    cached = [e for e in events if e.kind == "step_cached"]
    assert [e.detail for e in cached] == [f"from run {first.name!r}"] * 2
    explanation = second.get_step("transform").cache_explanation
    assert explanation.cached and explanation.source_run == first.name
    assert explanation.source_step_id == first.get_step("transform").id
    assert first.name in str(explanation)


def test_helper_two_modules_away_changing_invalidates(etl: Code) -> None:
    run(etl.load("steps_mod"))
    etl.edit("mathutil", "return x * 2", "return x + x + 1")
    again = run(etl.load("steps_mod"))
    assert statuses(again) == {"load": "cached", "transform": "completed"}
    assert "code of helper `double` (module `mathutil`) changed" in reasons(again, "transform")


def test_code_the_step_does_not_reach_leaves_the_cache_alone(etl: Code) -> None:
    run(etl.load("steps_mod"))
    etl.edit("features", '"not used by any step"', '"edited, still not used"')
    etl.edit("features", "SCALE = 3", "SCALE = 3  # a comment outside any function")
    again = run(etl.load("steps_mod"))
    assert statuses(again) == {"load": "cached", "transform": "cached"}


def test_module_constant_enters_the_key_by_value(etl: Code) -> None:
    run(etl.load("steps_mod"))
    etl.edit("features", "SCALE = 3", "SCALE = 5")
    again = run(etl.load("steps_mod"))
    assert statuses(again)["transform"] == "completed"
    assert "constant `SCALE` (module `features`) 3 -> 5" in reasons(again, "transform")


def test_own_source_change_is_named(etl: Code) -> None:
    run(etl.load("steps_mod"))
    etl.edit("steps_mod", "return features.normalize(x)", "return features.normalize(x) + 0")
    again = run(etl.load("steps_mod"))
    assert statuses(again) == {"load": "cached", "transform": "completed"}
    assert "code of step `transform` changed" in reasons(again, "transform")


def test_config_change_is_explained_with_old_and_new_value(etl: Code) -> None:
    first = run(etl.load("steps_mod"), factor=31)
    again = run(etl.load("steps_mod"), factor=55)
    text = reasons(again, "load")
    assert "config `factor` 31 -> 55" in text
    assert f"compared with run {first.name!r}" in text
    assert "input `x` changed (content hash)" in reasons(again, "transform")


def test_upstream_rerun_with_identical_data_keeps_downstream_cached(etl: Code) -> None:
    first = run(etl.load("steps_mod"), factor=31)
    again = run(etl.load("steps_mod"), factor=32)  # 31 // 10 == 32 // 10
    assert statuses(again) == {"load": "completed", "transform": "cached"}
    old, new = first.get_step("load").output, again.get_step("load").output
    assert old.id != new.id and old.content_hash == new.content_hash is not None
    assert len(new.content_hash) == 32  # XXH3-128, hex


def test_hit_needs_every_artifact_it_reuses(etl: Code, file_artifacts: None) -> None:
    first = run(etl.load("steps_mod"))
    shutil.rmtree(first.get_step("load").output.uri)
    again = run(etl.load("steps_mod"))
    assert statuses(again) == {"load": "completed", "transform": "cached"}
    text = reasons(again, "load")
    assert "earlier artifact missing" in text and "`output`" in text and first.name in text
    assert again.get_step("load").output.read() == 3
    third = run(etl.load("steps_mod"))  # the fresh artifact serves later runs
    assert statuses(third) == {"load": "cached", "transform": "cached"}
    assert third.get_step("load").cache_explanation.source_run == again.name


def test_disabled_caching_says_by_whom(repo: Repository) -> None:
    @step(enable_cache=False)
    def fresh() -> int:
        return 1

    @step
    def use(x: int) -> int:
        return x

    @pipeline(enable_cache=False)
    def no_cache(fresh, use):
        use(fresh())

    @pipeline
    def with_cache(fresh, use):
        use(fresh())

    r = with_cache(fresh(), use()).run()
    assert "caching disabled by the step (enable_cache=False)" in reasons(r, "fresh")
    r = no_cache(fresh(), use()).run()
    assert "caching disabled by the pipeline (enable_cache=False)" in reasons(r, "use")
    assert r.get_step("use").status is ExecutionStatus.COMPLETED


def test_first_cached_run_after_uncached_ones_says_so(repo: Repository) -> None:
    @step
    def const() -> int:
        return 4

    @pipeline(name="toggled", enable_cache=False)
    def uncached(c):
        c()

    @pipeline(name="toggled")
    def cached(c):
        c()

    first = uncached(const()).run()
    second = cached(const()).run()
    assert second.get_step("c").status is ExecutionStatus.COMPLETED
    text = reasons(second, "c")
    assert f"the earlier execution (run {first.name!r}) ran with caching disabled" in text
    assert cached(const()).run().get_step("c").is_cached


def test_large_artifacts_enter_the_key_by_identity(
    etl: Code, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RUNSTACK_CONTENT_HASH_MAX_BYTES", "0")
    run(etl.load("steps_mod"), factor=31)
    again = run(etl.load("steps_mod"), factor=32)
    assert again.get_step("load").output.content_hash is None
    assert statuses(again) == {"load": "completed", "transform": "completed"}
    assert "too large to hash" in reasons(again, "transform")


def test_cli_explains_a_step(etl: Code) -> None:
    from runstack.cli._integrity import step_explain

    run(etl.load("steps_mod"), factor=31)
    again = run(etl.load("steps_mod"), factor=45)
    result = CliRunner().invoke(step_explain, [again.name, "transform"])
    assert result.exit_code == 0, result.output
    assert "input `x` changed (content hash)" in result.output
    result = CliRunner().invoke(step_explain, [again.name, "load", "--json"])
    data = json.loads(result.output)
    assert data["cached"] is False and data["reasons"] == ["config `factor` 31 -> 45"]
    assert data["components"]["parameters"] == {"factor": 45}


def test_failed_step_is_never_a_cache_hit(repo: Repository) -> None:
    attempts = []

    @step
    def flaky() -> int:
        attempts.append(1)
        if len(attempts) == 1:
            raise ValueError("first time fails")
        return 7

    @pipeline
    def retrying(f):
        f()

    with pytest.raises(Exception, match="first time fails"):
        retrying(flaky()).run()
    ok = retrying(flaky()).run()
    assert statuses(ok) == {"f": "completed"} and ok.get_step("f").output.read() == 7
    assert "first successful execution" in reasons(ok, "f")


@pytest.mark.parametrize("root", ["local", "memory://hash-test"])
def test_content_hash_follows_bytes_names_and_type(isolated: Path, root: str) -> None:
    from runstack.artifact_stores import ArtifactStore
    from runstack.artifact_stores._verify import content_hash, manifest_problem
    from runstack.materializers import Artifact, BuiltInMaterializer

    store = ArtifactStore(str(isolated / "arts") if root == "local" else root)

    def write(value: Any, name: str) -> str:
        uri = store.new_uri("p", "r", "s", name)
        with store.staged(uri) as staging:
            BuiltInMaterializer(Artifact(staging)).handle_return(value)
        return uri

    a, b, c = write([1, 2], "a"), write([1, 2], "b"), write([1, 3], "c")
    digest = content_hash(store, a, "builtins.list", "M")
    assert digest == content_hash(store, b, "builtins.list", "M") is not None
    assert digest != content_hash(store, c, "builtins.list", "M")
    assert digest != content_hash(store, a, "builtins.tuple", "M")
    # The same bytes kept inline hash as the file would: one hash however a value is stored.
    inline = store.new_uri("p", "r", "s", "inline")
    assert content_hash(store, inline, "builtins.list", "M", inline=b"[1,2]") == digest
    assert content_hash(store, inline, "builtins.list", "M", inline=b"[1,3]") != digest

    present = ArtifactRecord(1, a, "builtins.list", "M", 1, digest, files=dict(store.files(a)))
    assert manifest_problem(store, present) is None
    gone = ArtifactRecord(2, a + "-gone", "builtins.list", "M", 1)
    assert manifest_problem(store, gone) == "its folder is gone or empty"
    # Inline: no files, no folder, nothing to check but its hash (on read).
    kept = ArtifactRecord(3, inline, "builtins.list", "M", 1, digest, inline=b"[1,2]")
    assert manifest_problem(store, kept) is None
