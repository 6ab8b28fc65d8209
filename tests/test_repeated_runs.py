"""Many runs in one process: what is kept between runs (the parsed config, the built stores,
the record in hand) must never hide a change or differ from what the store holds."""

from __future__ import annotations

import os
import time
from pathlib import Path

import yaml

from runstack.models import ExecutionStatus
from runstack.pipelines import pipeline
from runstack.repository import Repository
from runstack.steps import step


@step(enable_cache=False)
def one() -> int:
    return 1


@step(enable_cache=False)
def plus_one(x: int) -> int:
    return x + 1


@pipeline
def chain(a, b):
    b(a())


def test_a_config_edited_by_hand_between_runs_takes_effect(
    repo: Repository, file_artifacts: None
) -> None:
    config_file = repo.config_dir / "config.yaml"
    # Unchanged for a while, so the first run's parse is kept (a file changed within the last
    # moment is parsed afresh every time): the edit below must still be noticed.
    an_hour_ago = time.time_ns() - 3600 * 10**9
    os.utime(config_file, ns=(an_hour_ago, an_hour_ago))
    chain(one(), plus_one()).run(run_name="before")
    config = yaml.safe_load(config_file.read_text())
    config["components"]["artifact_store"]["local"]["settings"]["path"] = "elsewhere"
    config_file.write_text(yaml.safe_dump(config))  # in place, as an editor would

    after = chain(one(), plus_one()).run(run_name="after")

    moved = repo.config_dir / "elsewhere"
    assert Path(after.get_step("b").output.uri).is_relative_to(moved)
    assert after.get_step("b").output.read() == 2
    assert not Path(
        Repository(repo.root).get_pipeline("chain").get_run("before").get_step("b").output.uri
    ).is_relative_to(moved)


def test_the_returned_run_is_what_the_store_holds(repo: Repository) -> None:
    returned = chain(one(), plus_one()).run(run_name="r", tags={"exp": "a"})
    stored = Repository(repo.root).get_pipeline("chain").get_run("r")

    assert returned.status is stored.status is ExecutionStatus.COMPLETED
    assert (returned.id, returned.name, returned.pipeline_name) == (
        stored.id,
        stored.name,
        stored.pipeline_name,
    )
    assert returned.start_time == stored.start_time
    assert returned.end_time == stored.end_time
    assert returned.error is stored.error is None
    assert returned.tags == stored.tags == {"exp": "a"}
    # The run ends when its last step does: both are recorded in one transaction.
    last = stored.get_step("b")
    assert last.status is ExecutionStatus.COMPLETED and stored.end_time == last.end_time
    assert [s.output.read() for s in returned.steps] == [1, 2]
