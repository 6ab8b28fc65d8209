"""Cache keys follow the code, inputs enter by content, hits need their artifacts, and every
decision is explained (issue 4)."""

from __future__ import annotations

import importlib
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from runstack.execution import RunEvent
from runstack.execution._fingerprint import code_components, code_fingerprint
from runstack.metadata_stores import _schema as t
from runstack.models import ExecutionStatus
from runstack.pipelines import pipeline
from runstack.repository import Repository
from runstack.steps import BaseStep, step


class Code:
    """User modules written to the test folder and imported afresh after every edit."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.names: set[str] = set()
        self._tick = 0

    def write(self, name: str, text: str) -> None:
        path = self.root / f"{name}.py"
        path.write_text(textwrap.dedent(text))
        # Import and inspect compare mtimes: make every edit visibly newer.
        self._tick += 10
        stamp = path.stat().st_mtime + self._tick
        os.utime(path, (stamp, stamp))
        self.names.add(name)

    def edit(self, name: str, old: str, new: str) -> None:
        text = (self.root / f"{name}.py").read_text()
        assert old in text
        self.write(name, text.replace(old, new))

    def load(self, name: str) -> Any:
        for n in self.names:
            sys.modules.pop(n, None)
        importlib.invalidate_caches()
        return importlib.import_module(name)


@pytest.fixture
def code(isolated: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.syspath_prepend(str(isolated))
    c = Code(isolated)
    yield c
    for n in c.names:
        sys.modules.pop(n, None)


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


def statuses(run_view: Any) -> dict[str, str]:
    return {s.name: s.status.value for s in run_view.steps}


def reasons(run_view: Any, step_name: str) -> str:
    return str(run_view.get_step(step_name).cache_explanation)


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
    assert len(new.content_hash) == 64


def test_hit_needs_every_artifact_it_reuses(etl: Code) -> None:
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


def test_closure_values_and_class_steps(repo: Repository) -> None:
    def make(k: int) -> type[BaseStep]:
        @step(name="scaled")
        def scaled() -> int:
            return 10 * k

        return scaled

    @pipeline
    def closing(s):
        s()

    closing(make(2)()).run()
    again = closing(make(2)()).run()
    assert statuses(again) == {"s": "cached"}
    changed = closing(make(3)()).run()
    assert statuses(changed) == {"s": "completed"}
    assert "closure variable `k`" in reasons(changed, "s") and "2 -> 3" in reasons(changed, "s")
    assert changed.get_step("s").output.read() == 30


def test_class_step_methods_are_part_of_its_code(code: Code, repo: Repository) -> None:
    code.write(
        "cls_steps",
        """
        from runstack.pipelines import pipeline
        from runstack.steps import BaseStep

        def helper():
            return 1

        class Produce(BaseStep):
            def entrypoint(self) -> int:
                return self.compute()

            def compute(self):
                return helper()

        @pipeline
        def cls_pipe(p):
            p()
        """,
    )
    mod = code.load("cls_steps")
    mod.cls_pipe(mod.Produce()).run()
    code.edit("cls_steps", "return 1", "return 2")
    mod = code.load("cls_steps")
    again = mod.cls_pipe(mod.Produce()).run()
    assert statuses(again) == {"p": "completed"}
    assert "code of helper `helper` (module `cls_steps`) changed" in reasons(again, "p")


def test_third_party_versions_are_in_the_key(repo: Repository) -> None:
    np = pytest.importorskip("numpy")

    @step
    def arr() -> int:
        return int(np.arange(3).sum())

    @pipeline
    def versions(a):
        a()

    assert code_components(arr)["packages"] == {"numpy": np.__version__}
    first = versions(arr()).run()
    # Pretend the first run used an older numpy: its key and recorded version differ.
    store = repo.active_stack.metadata_store
    comps = dict(first.get_step("a").cache_components)
    comps["code"] = {**comps["code"], "packages": {"numpy": "1.0.0"}}
    with store.engine.begin() as conn:
        conn.execute(
            sa.update(t.steps)
            .where(t.steps.c.id == first.get_step("a").id)
            .values(cache_key="0" * 64, cache_components=comps)
        )
    again = versions(arr()).run()
    assert f"package `numpy` 1.0.0 -> {np.__version__}" in reasons(again, "a")


def test_fingerprint_without_source_uses_bytecode() -> None:
    def make(value: int) -> type[BaseStep]:
        namespace: dict[str, Any] = {"step": step, "__name__": "__main__"}
        exec(f"@step\ndef nosource() -> int:\n    return {value}\n", namespace)
        return namespace["nosource"]

    a, b, c = make(1), make(1), make(2)
    assert code_fingerprint(a) == code_fingerprint(b) != code_fingerprint(c)


SCRIPT = """
import sys
from runstack.pipelines import pipeline
from runstack.steps import step

OFFSET = {offset}

def helper(x):
    return x + OFFSET

@step
def produce() -> int:
    return helper(1)

@pipeline
def inline(produce):
    produce()

r = inline(produce()).run(run_name=sys.argv[1])
print("STATUS", r.get_step("produce").status.value)
print("WHY", str(r.get_step("produce").cache_explanation).replace("\\n", " | "))
"""


@pytest.mark.slow
def test_steps_defined_in_main_without_a_source_file(repo: Repository) -> None:
    env = {**os.environ, "RUNSTACK_REPOSITORY": str(repo.root), "RUNSTACK_PROGRESS": "off"}

    def go(offset: int, name: str) -> str:
        done = subprocess.run(
            [sys.executable, "-c", SCRIPT.format(offset=offset), name],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    assert "STATUS completed" in go(1, "m1")
    assert "STATUS cached" in go(1, "m2")
    out = go(2, "m3")
    assert "STATUS completed" in out and "constant `OFFSET` (module `__main__`) 1 -> 2" in out


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
    from runstack.execution._cache import artifact_present, content_hash
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
    assert artifact_present(store, a) and not artifact_present(store, a + "-gone")


def test_helpers_behind_lru_cache_and_partial_are_followed(code: Code, repo: Repository) -> None:
    code.write(
        "wrapped",
        """
        import functools
        from runstack.pipelines import pipeline
        from runstack.steps import step

        @functools.lru_cache
        def cached_helper(x):
            return x + 1

        def scaled(x, k):
            return x * k

        triple = functools.partial(scaled, k=3)

        @step
        def use() -> int:
            return cached_helper(1) + triple(1)

        @pipeline
        def wrapping(u):
            u()
        """,
    )
    mod = code.load("wrapped")
    assert set(code_components(mod.use)["helpers"]) == {
        "wrapped:cached_helper",
        "wrapped:scaled",
    }
    mod.wrapping(mod.use()).run()
    code.edit("wrapped", "return x + 1", "return x + 2")
    mod = code.load("wrapped")
    again = mod.wrapping(mod.use()).run()
    assert "code of helper `cached_helper` (module `wrapped`) changed" in reasons(again, "u")
    code.edit("wrapped", "k=3", "k=4")
    mod = code.load("wrapped")
    third = mod.wrapping(mod.use()).run()
    assert third.get_step("u").status is ExecutionStatus.COMPLETED
    assert third.get_step("u").output.read() == 3 + 4
    assert "constant `triple` (module `wrapped`)" in reasons(third, "u")


def test_notebook_cells_that_rebind_names_invalidate_without_a_new_step_class(
    repo: Repository,
) -> None:
    # A notebook: one namespace, cells executed one after another, no source files.
    cells = {"__name__": "__main__", "step": step, "pipeline": pipeline}

    def cell(source: str) -> None:
        exec(textwrap.dedent(source), cells)

    cell(
        """
        SCALE = 3

        def helper(x):
            return x * SCALE

        @step
        def nb() -> int:
            return helper(2)

        @pipeline
        def notebook(s):
            s()
        """
    )
    nb = cells["nb"]
    first = code_fingerprint(nb)
    assert code_fingerprint(nb) == first  # cached: nothing changed
    assert cells["notebook"](nb()).run().get_step("s").output.read() == 6

    cell("SCALE = 5")  # re-running a cell rebinds a constant the step reaches
    assert code_fingerprint(nb) != first
    again = cells["notebook"](nb()).run()
    assert again.get_step("s").output.read() == 10
    assert "constant `SCALE` (module `__main__`) 3 -> 5" in reasons(again, "s")

    cell("def helper(x):\n    return x * SCALE + 1\n")  # a redefined helper, same step class
    third = cells["notebook"](nb()).run()
    assert third.get_step("s").output.read() == 11
    assert "code of helper `helper` (module `__main__`) changed" in reasons(third, "s")


def test_objects_that_resist_inspection_do_not_fail_the_run(repo: Repository) -> None:
    class Hostile:
        def __getattr__(self, name: str) -> Any:
            raise RuntimeError(f"no attribute access here ({name})")

        def __repr__(self) -> str:
            raise RuntimeError("no repr either")

    hostile = Hostile()

    @step
    def uses_it() -> int:
        return 1 if hostile is not None else 0

    @pipeline
    def resisting(s):
        s()

    assert resisting(uses_it()).run().get_step("s").output.read() == 1
