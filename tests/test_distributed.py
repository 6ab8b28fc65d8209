"""Beyond one process: the portable step task, the parallel orchestrator, retries, timeouts."""

from __future__ import annotations

import pickle
import threading
import time
from pathlib import Path

import cloudpickle
import pytest

from runstack.exceptions import (
    DefinitionError,
    StepExecutionError,
    StepTimeoutError,
    StoreError,
)
from runstack.execution import make_plan
from runstack.pipelines import pipeline
from runstack.repository import Repository
from runstack.steps import BaseStep, BaseStepConfig, Output, step
from store_support import refuse_completed_record


def use_parallel(repo: Repository, mode: str, workers: int = 4) -> None:
    repo.register_component(
        "orchestrator", f"par-{mode}", "parallel", {"max_workers": workers, "mode": mode}
    )
    repo.register_stack(
        f"par-{mode}",
        orchestrator=f"par-{mode}",
        metadata_store="local",
        artifact_store="local",
        activate=True,
    )


@step
def source() -> int:
    return 1


@step(enable_cache=False)
def sleeper_a(x: int) -> int:
    print("from a")
    time.sleep(0.6)
    return x + 10


@step(enable_cache=False)
def sleeper_b(x: int) -> int:
    print("from b")
    time.sleep(0.6)
    return x + 20


@step
def join(a: int, b: int) -> int:
    return a + b


@pipeline
def fan(source, a, b, join):
    x = source()
    join(a(x), b(x))


@pytest.mark.parametrize("mode", ["thread", "process"])
def test_parallel_runs_independent_steps_at_once_with_separate_logs(repo, mode):
    use_parallel(repo, mode)
    run = fan(source=source(), a=sleeper_a(), b=sleeper_b(), join=join()).run()
    assert run.get_step("join").outputs["output"].read() == 32
    a, b = run.get_step("a"), run.get_step("b")
    # Both were running at once: each step was started (recorded `running`) before the other
    # was recorded finished. (No wall-clock bound, and not the attempts' own times: a worker
    # process spawned late on a loaded machine may start its sleep after the other ended.)
    assert a.start_time < b.end_time and b.start_time < a.end_time
    assert "from a" in a.logs and "from b" not in a.logs
    assert "from b" in b.logs and "from a" not in b.logs


def test_parallel_records_and_cache_keys_match_a_sequential_run(repo):
    seq = fan(source=source(), a=sleeper_a(), b=sleeper_b(), join=join()).run(run_name="seq")
    use_parallel(Repository(), "process")
    # Another stack has its own store; compare keys by re-planning on the same store instead.
    par = fan(source=source(), a=sleeper_a(), b=sleeper_b(), join=join()).run(run_name="par")
    assert [s.name for s in par.steps] == [s.name for s in seq.steps]
    assert par.get_step("source").cache_key == seq.get_step("source").cache_key


@step(enable_cache=False)
def broken(x: int) -> int:
    raise ValueError("boom")


@pytest.mark.parametrize("mode", ["thread", "process"])
def test_parallel_failure_lets_running_steps_finish_and_names_the_step(repo, mode):
    use_parallel(repo, mode)
    with pytest.raises(StepExecutionError, match="'b'") as info:
        fan(source=source(), a=sleeper_a(), b=broken(), join=join()).run(run_name="bad")
    assert isinstance(info.value.__cause__, ValueError)
    run = Repository().get_pipeline("fan").get_run("bad")
    assert run.status == "failed"
    assert run.get_step("a").status == "completed"  # ran beside the failure, recorded
    assert run.get_step("b").status == "failed"
    assert "join" not in [s.name for s in run.steps]  # never started


_calls = {"n": 0}


@step(retries=2, retry_delay=0.01, retry_backoff=2, enable_cache=False)
def flaky() -> int:
    _calls["n"] += 1
    if _calls["n"] < 3:
        raise RuntimeError(f"flake {_calls['n']}")
    return _calls["n"]


@pipeline
def retrying(flaky):
    flaky()


def test_retries_record_every_attempt_and_the_last_counts(repo):
    _calls["n"] = 0
    run = retrying(flaky=flaky()).run()
    s = run.get_step("flaky")
    assert s.status == "completed" and s.outputs["output"].read() == 3
    assert [a["attempt"] for a in s.attempts] == [1, 2, 3]
    assert [a["error"] for a in s.attempts] == [
        "RuntimeError: flake 1",
        "RuntimeError: flake 2",
        None,
    ]
    assert s.options["retries"] == 2


def test_retries_exhausted_fail_the_step(repo):
    _calls["n"] = -10
    with pytest.raises(StepExecutionError, match="flake"):
        retrying(flaky=flaky()).run(run_name="r")
    s = Repository().get_pipeline("retrying").get_run("r").get_step("flaky")
    assert s.status == "failed" and len(s.attempts) == 3


_release_slow = threading.Event()


@step(timeout=0.3, enable_cache=False)
def slow() -> int:
    # A thread cannot be stopped: it runs on after its timeout until the test releases it
    # (a step still running keeps this process's log routing on for the next test).
    _release_slow.wait(12)
    return 1


@pipeline
def timing(slow):
    slow()


@pytest.mark.parametrize("mode", [None, "thread", "process"])
def test_timeout_fails_the_step_naming_the_limit(repo, mode):
    _release_slow.clear()
    if mode:
        use_parallel(repo, mode)
    started = time.monotonic()
    with pytest.raises(StepTimeoutError, match=r"timeout of 0\.3 s"):
        timing(slow=slow()).run(run_name="t")
    assert time.monotonic() - started < 10  # stopped, not the step's 12 s
    s = Repository().get_pipeline("timing").get_run("t").get_step("slow")
    assert s.status == "failed" and "StepTimeoutError" in s.error
    _release_slow.set()


def test_options_from_yaml_config_and_bad_options_are_definition_errors(repo, tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("steps:\n  flaky:\n    retries: 5\n    resources: {cpus: 2, memory: 1GiB}\n")
    plan = make_plan(retrying(flaky=flaky()).with_config(str(cfg)))
    opts = plan.steps[0].options
    assert opts.retries == 5 and opts.resources == {"cpus": 2.0, "memory": 2**30}
    with pytest.raises(DefinitionError, match="retries must be an int"):
        step(retries=-1)(lambda: 1)
    with pytest.raises(DefinitionError, match="did you mean 'gpus'"):
        step(resources={"gpu": 1})(lambda: 1)
    with pytest.raises(DefinitionError, match="memory must be a positive size"):
        step(resources={"memory": "lots"})(lambda: 1)


def test_definitions_errors_and_plans_survive_cloudpickle(repo):
    class Klass(BaseStep):
        def entrypoint(self, x: int) -> Output(y=int):
            return x

    again = cloudpickle.loads(cloudpickle.dumps(Klass))
    assert again.SIGNATURE.outputs.keys() == {"y"}
    plan = make_plan(fan(source=source(), a=sleeper_a(), b=sleeper_b(), join=join()))
    assert [sp.slot for sp in cloudpickle.loads(cloudpickle.dumps(plan)).steps] == [
        sp.slot for sp in plan.steps
    ]
    err = StepExecutionError("m", pipeline="p", run="r", step="s")
    back = pickle.loads(pickle.dumps(err))
    assert (str(back), back.pipeline_name, back.run_name, back.step_name) == ("m", "p", "r", "s")


def test_step_show_prints_the_options_and_every_attempt(repo):
    import json

    from click.testing import CliRunner

    from runstack.cli import main

    _calls["n"] = 0
    retrying(flaky=flaky().with_options(timeout=30, resources={"memory": "1GiB"})).run(
        run_name="shown"
    )
    text = CliRunner().invoke(main, ["step", "show", "shown", "flaky"]).output
    assert "retries=2 retry_delay=0.01s retry_backoff=2 timeout=30s memory=1GiB" in text
    assert "RuntimeError: flake 1" in text and "RuntimeError: flake 2" in text
    data = json.loads(CliRunner().invoke(main, ["step", "show", "shown", "flaky", "--json"]).output)
    assert data["options"]["timeout"] == 30 and data["options"]["retries"] == 2
    assert data["options"]["resources"] == {"memory": 2**30}
    assert [a["attempt"] for a in data["attempts"]] == [1, 2, 3]
    assert data["attempts"][-1]["error"] is None


@step(resources={"cpus": 2}, enable_cache=False)
def wide_a(x: int) -> int:
    time.sleep(0.3)
    return x


@step(resources={"cpus": 2}, enable_cache=False)
def wide_b(x: int) -> int:
    time.sleep(0.3)
    return x


def test_parallel_uses_cpus_as_the_weight_of_a_step_against_max_workers(repo):
    from datetime import datetime

    use_parallel(repo, "thread", workers=2)  # room for one step of 2 cpus at a time
    run = fan(source=source(), a=wide_a(), b=wide_b(), join=join()).run()
    (a,), (b,) = run.get_step("a").attempts, run.get_step("b").attempts
    a_start, a_end, b_start, b_end = (
        datetime.fromisoformat(t)
        for t in (a["start_time"], a["end_time"], b["start_time"], b["end_time"])
    )
    assert a_end <= b_start or b_end <= a_start
    # Without the weight the two would overlap (see the fan-out test above).


# -- a finished step's successors start before its record is written ------------------------
# (parallel with processes and ray: the record is written while the successor runs)


@step(enable_cache=False)
def one() -> int:
    return 1


@step(enable_cache=False)
def plus_one(x: int) -> int:
    return x + 1


@step
def doubled(x: int) -> int:
    return 2 * x


class Mark(BaseStepConfig):
    path: str


@step(enable_cache=False)
def marks(x: int, config: Mark) -> int:
    Path(config.path).write_text("started")
    time.sleep(0.3)
    Path(config.path).write_text("finished")
    return x + 1


@pipeline
def chain(s0, s1, s2):
    s2(s1(s0()))


def test_a_chain_started_ahead_of_its_records_links_every_input_to_its_producer(repo):
    sequential = chain(s0=one(), s1=plus_one(), s2=plus_one()).run(run_name="seq")
    use_parallel(repo, "process", workers=2)
    run = chain(s0=one(), s1=plus_one(), s2=plus_one()).run()
    s0, s1, s2 = (run.get_step(n) for n in ("s0", "s1", "s2"))
    assert [s.status for s in (s0, s1, s2)] == ["completed"] * 3
    assert s2.outputs["output"].read() == 3
    for producer, consumer in ((s0, s1), (s1, s2)):
        made = producer.outputs["output"]
        assert consumer.inputs["x"].id == made.id
        assert consumer.cache_components["inputs"] == {"x": made.content_hash}
    assert [s.cache_key for s in run.steps] == [s.cache_key for s in sequential.steps]


def test_a_successor_found_in_the_cache_while_its_input_is_unrecorded_is_recorded_cached(repo):
    use_parallel(repo, "process", workers=2)
    first = chain(s0=one(), s1=plus_one(), s2=doubled()).run(run_name="first")
    # s1 runs again (cache off) and writes the same value: s2 is a hit, linked to the new one.
    run = chain(s0=one(), s1=plus_one(), s2=doubled()).run(run_name="second")
    s1, s2 = run.get_step("s1"), run.get_step("s2")
    assert s2.status == "cached" and s2.outputs["output"].read() == 4
    assert s2.inputs["x"].id == s1.outputs["output"].id
    assert s2.outputs["output"].id == first.get_step("s2").outputs["output"].id


def test_a_failed_record_fails_the_run_and_its_started_successor_is_never_recorded(repo, tmp_path):
    use_parallel(repo, "process", workers=2)
    chain(s0=one(), s1=plus_one(), s2=plus_one()).run(run_name="ok")  # creates the store
    refuse_completed_record(repo.config_dir / "metadata.db", "s1")
    mark = tmp_path / "s2"
    with pytest.raises(StoreError, match="refused by the test"):
        chain(s0=one(), s1=plus_one(), s2=marks(Mark(path=str(mark)))).run(run_name="bad")
    # s2 was handed to a worker before s1's record failed, and was awaited...
    assert mark.read_text() == "finished"
    run = Repository().get_pipeline("chain").get_run("bad")
    assert run.status == "failed"
    # ... but never recorded: its input was not.
    assert [s.name for s in run.steps if s.name == "s2"] == []
    assert run.get_step("s0").status == "completed"


@pytest.mark.parametrize("mode", [None, "thread"])
def test_in_this_process_a_successor_waits_for_its_inputs_record(repo, tmp_path, mode):
    """Steps run in this process are held until their input's record is written: one that
    fails leaves them never run (they would run before their inputs were recorded)."""
    if mode:
        use_parallel(repo, mode, workers=2)
    chain(s0=one(), s1=plus_one(), s2=plus_one()).run(run_name="ok")  # creates the store
    refuse_completed_record(repo.config_dir / "metadata.db", "s1")
    mark = tmp_path / "s2"
    with pytest.raises(StoreError, match="refused by the test"):
        chain(s0=one(), s1=plus_one(), s2=marks(Mark(path=str(mark)))).run(run_name="bad")
    assert not mark.exists()
    run = Repository().get_pipeline("chain").get_run("bad")
    assert run.status == "failed" and "s2" not in [s.name for s in run.steps]
    assert run.get_step("s0").status == "completed"
