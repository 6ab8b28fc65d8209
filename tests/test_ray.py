"""The ray orchestrator on a real local Ray instance: scheduling, records, failures, resources.

Steps here are tiny: what is tested is scheduling, records, caching, failures and resources,
not Ray's speed (see ``python -m bench --only distributed``). The instance (2 CPUs, never
skipped) comes from ``tests/ray_support.py``; test_ray_workers.py has the rest.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from ray_support import ran, recorded, use_ray
from runstack.exceptions import ConfigError, StepExecutionError, StepTimeoutError, StoreError
from runstack.models import ExecutionStatus
from runstack.pipelines import pipeline
from runstack.steps import BaseStepConfig, Output, StepContext, step
from store_support import refuse_completed_record

# -- fan-out, logs, records ---------------------------------------------------------------


@step
def source() -> int:
    return 1


@step(enable_cache=False)
def sleeper_a(x: int) -> Output(value=int, pid=int):
    print("from a")
    time.sleep(0.8)
    return x + 10, os.getpid()


@step(enable_cache=False)
def sleeper_b(x: int) -> Output(value=int, pid=int):
    print("from b")
    time.sleep(0.8)
    return x + 20, os.getpid()


@step
def join(a: int, b: int) -> int:
    return a + b


@pipeline
def fan(source, a, b, join):
    x = source()
    a_value, _ = a(x)
    b_value, _ = b(x)
    join(a_value, b_value)


def test_independent_steps_run_at_once_on_ray_workers_with_their_own_logs(ray_address, repo):
    use_ray(repo)
    run = fan(source=source(), a=sleeper_a(), b=sleeper_b(), join=join()).run()
    assert run.status is ExecutionStatus.COMPLETED
    assert run.get_step("join").output.read() == 32
    a, b = run.get_step("a"), run.get_step("b")
    (a_start, a_end), (b_start, b_end) = ran(a), ran(b)
    assert a_start < b_end and b_start < a_end  # the sleeps overlapped
    pids = {a.outputs["pid"].read(), b.outputs["pid"].read()}
    assert len(pids) == 2 and os.getpid() not in pids  # two Ray workers, not the driver
    assert "from a" in a.logs and "from b" not in a.logs
    assert "from b" in b.logs and "from a" not in b.logs
    # The driver recorded each step once, with its attempt.
    assert [s.name for s in run.steps] == ["source", "a", "b", "join"]
    assert [att["attempt"] for att in a.attempts] == [1]


class Scale(BaseStepConfig):
    factor: int = 3


@step
def scaled(config: Scale) -> list:
    return [config.factor * i for i in range(4)]


@step
def total(values: list) -> int:
    return sum(values)


@pipeline
def cached_pipe(first, second):
    second(first())


def test_a_run_on_ray_has_the_local_cache_keys_and_reuses_a_local_run(ray_address, repo):
    local = cached_pipe(scaled(), total()).run(run_name="local")
    use_ray(repo)  # same metadata and artifact stores, another orchestrator
    on_ray = cached_pipe(scaled(), total()).run(run_name="on-ray")
    for name in ("first", "second"):
        s = on_ray.get_step(name)
        assert s.is_cached, name
        assert s.cache_key == local.get_step(name).cache_key
    assert on_ray.get_step("second").output.read() == 18
    # A changed parameter runs on Ray and is cached by the next local run.
    changed = cached_pipe(scaled(Scale(factor=5)), total()).run(run_name="changed")
    assert not changed.get_step("first").is_cached
    assert changed.get_step("second").output.read() == 30
    repo.set_active_stack("default")
    again = cached_pipe(scaled(Scale(factor=5)), total()).run(run_name="again")
    assert all(s.is_cached for s in again.steps)


@step
def earlier_totals(context: StepContext, values: list) -> int:
    """Reads the history on the worker: the metadata store is opened there, on demand."""
    runs = context.metadata_store.get_pipeline("cached_pipe").runs
    return len(runs) * 100 + sum(values)


def test_a_step_on_ray_reads_the_history_through_its_context(ray_address, repo):
    cached_pipe(scaled(), total()).run(run_name="before")
    use_ray(repo)
    run = cached_pipe(scaled(), earlier_totals()).run(run_name="reading")
    # Two runs are visible from the worker: the earlier one and this one, in flight.
    assert run.get_step("second").output.read() == 200 + 18


@step(enable_cache=False)
def read_mark() -> str:
    return os.environ.get("RUNSTACK_TEST_MARK", "unset")


@pipeline
def marking(first):
    first()


def test_runtime_env_is_given_to_every_step_task(ray_address, repo):
    use_ray(repo, runtime_env={"env_vars": {"RUNSTACK_TEST_MARK": "from runtime_env"}})
    run = marking(first=read_mark()).run()
    assert run.get_step("first").output.read() == "from runtime_env"


# -- failures, retries, timeouts, dead workers --------------------------------------------


@step(enable_cache=False)
def broken(x: int) -> Output(value=int, pid=int):
    raise ValueError("boom on ray")


def test_a_failing_step_fails_the_run_and_running_steps_are_recorded(ray_address, repo):
    use_ray(repo)
    with pytest.raises(StepExecutionError, match="'b'.*boom on ray") as info:
        fan(source=source(), a=sleeper_a(), b=broken(), join=join()).run(run_name="bad")
    assert isinstance(info.value.__cause__, ValueError)
    run = recorded("bad")
    assert run.status is ExecutionStatus.FAILED
    assert run.get_step("a").status is ExecutionStatus.COMPLETED  # finished beside the failure
    assert run.get_step("b").status is ExecutionStatus.FAILED
    assert "Traceback" in run.get_step("b").traceback
    assert "join" not in [s.name for s in run.steps]


def test_a_chain_on_ray_links_inputs_and_a_failed_record_leaves_its_successor_unrecorded(
    ray_address, repo, tmp_path
):
    from test_distributed import Mark, chain, marks, one, plus_one

    use_ray(repo)
    run = chain(s0=one(), s1=plus_one(), s2=plus_one()).run(run_name="ok")
    s0, s1, s2 = (run.get_step(n) for n in ("s0", "s1", "s2"))
    assert s2.outputs["output"].read() == 3
    assert s1.inputs["x"].id == s0.outputs["output"].id
    assert s2.inputs["x"].id == s1.outputs["output"].id
    refuse_completed_record(repo.config_dir / "metadata.db", "s1")
    mark = tmp_path / "s2"
    with pytest.raises(StoreError, match="refused by the test"):
        chain(s0=one(), s1=plus_one(), s2=marks(Mark(path=str(mark)))).run(run_name="bad")
    assert mark.read_text() == "finished"  # started ahead of s1's record, and awaited
    bad = recorded("bad")
    assert bad.status is ExecutionStatus.FAILED
    assert "s2" not in [s.name for s in bad.steps]


class Counter(BaseStepConfig):
    path: str
    fail_times: int


@step(retries=2, retry_delay=0.01, enable_cache=False)
def flaky(config: Counter) -> int:
    # Attempts run in (possibly different) worker processes: count in a file.
    counter = Path(config.path)
    n = int(counter.read_text()) + 1 if counter.exists() else 1
    counter.write_text(str(n))
    if n <= config.fail_times:
        raise RuntimeError(f"flake {n}")
    return n


@pipeline
def retrying(flaky):
    flaky()


def test_retries_on_ray_record_every_attempt(ray_address, repo, tmp_path):
    use_ray(repo)
    cfg = Counter(path=str(tmp_path / "n"), fail_times=2)
    s = retrying(flaky=flaky(cfg)).run(run_name="ok").get_step("flaky")
    assert s.output.read() == 3
    assert [a["error"] for a in s.attempts] == [
        "RuntimeError: flake 1",
        "RuntimeError: flake 2",
        None,
    ]
    cfg = Counter(path=str(tmp_path / "m"), fail_times=5)
    with pytest.raises(StepExecutionError, match="flake 3"):
        retrying(flaky=flaky(cfg)).run(run_name="exhausted")
    s = recorded("exhausted").get_step("flaky")
    assert s.status is ExecutionStatus.FAILED and len(s.attempts) == 3


@step(timeout=0.5, enable_cache=False)
def sleeps_in_python() -> int:
    time.sleep(60)
    return 1


@step(timeout=0.5, enable_cache=False)
def stuck_in_native_code() -> int:
    # SIGALRM blocked: the worker cannot stop the step itself; the driver must end it.
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})
    time.sleep(60)
    return 1


@pipeline
def timing(slow):
    slow()


@pytest.mark.parametrize("slow", [sleeps_in_python, stuck_in_native_code])
def test_a_step_past_its_timeout_fails_naming_the_limit(ray_address, repo, slow):
    use_ray(repo)
    started = time.monotonic()
    with pytest.raises(StepTimeoutError, match=r"timeout of 0\.5 s"):
        timing(slow=slow()).run(run_name="t")
    assert time.monotonic() - started < 30  # stopped, not the step's 60 s
    run = recorded("t")
    assert run.status is ExecutionStatus.FAILED
    assert "StepTimeoutError" in run.get_step("slow").error


@step(enable_cache=False)
def dies() -> int:
    os._exit(3)


@pipeline
def dying(step_):
    step_()


def test_a_worker_that_dies_fails_its_step_with_a_clear_error(ray_address, repo):
    use_ray(repo)
    with pytest.raises(StepExecutionError, match="Ray worker running the step died") as info:
        dying(step_=dies()).run(run_name="dead")
    assert "WorkerCrashedError" in str(info.value)
    run = recorded("dead")
    assert run.status is ExecutionStatus.FAILED
    s = run.get_step("step_")
    assert s.status is ExecutionStatus.FAILED and "worker running the step died" in s.error


# -- resources ----------------------------------------------------------------------------


@step(resources={"cpus": 2}, enable_cache=False)
def wide_a(x: int) -> Output(value=int, pid=int):
    time.sleep(0.4)
    return x, os.getpid()


@step(resources={"cpus": 2}, enable_cache=False)
def wide_b(x: int) -> Output(value=int, pid=int):
    time.sleep(0.4)
    return x, os.getpid()


def test_cpus_are_honoured_two_steps_needing_every_cpu_never_overlap(ray_address, repo):
    use_ray(repo)
    run = fan(source=source(), a=wide_a(), b=wide_b(), join=join()).run()
    (a_start, a_end), (b_start, b_end) = ran(run.get_step("a")), ran(run.get_step("b"))
    assert a_end <= b_start or b_end <= a_start


@step(resources={"tpu_pod": 1}, enable_cache=False)
def needs_a_pod(x: int) -> Output(value=int, pid=int):
    return x, 0


@step(resources={"gpus": 1}, enable_cache=False)
def needs_a_gpu(x: int) -> Output(value=int, pid=int):
    return x, 0


@pytest.mark.parametrize(("odd", "what"), [(needs_a_pod, "tpu_pod"), (needs_a_gpu, "GPU")])
def test_resources_no_node_has_are_refused_before_any_step_runs(ray_address, repo, odd, what):
    use_ray(repo)
    with pytest.raises(ConfigError, match=rf"Step 'b' asks Ray for .*{what}.*no node"):
        fan(source=source(), a=sleeper_a(), b=odd(), join=join()).run(run_name="odd")
    run = recorded("odd")
    assert run.status is ExecutionStatus.FAILED and run.steps == []


def test_resources_are_passed_to_ray_as_task_options():
    from runstack.execution._ray import ray_options
    from runstack.steps._options import ExecutionOptions

    opts = ExecutionOptions.make("t", resources={"cpus": 2, "gpus": 0.5, "memory": "1GiB", "x": 1})
    assert ray_options(dict(opts.resources)) == {
        "num_cpus": 2.0,
        "num_gpus": 0.5,
        "memory": 2**30,
        "resources": {"x": 1.0},
    }
