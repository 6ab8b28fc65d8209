"""Small built-in values kept inline with their artifact record (issue 15), on every backend.

Inline and file artifacts must be interchangeable: the same value reads back the same, has
the same content hash, and a cache hit crosses the boundary in both directions. A store
written before inline values existed (schema 0007, every artifact a file) is upgraded in
place and reads unchanged.
"""

from __future__ import annotations

import os
from typing import Any

import pytest
import sqlalchemy as sa
from conformance_support import downgrade

from runstack.metadata_stores._migrate import upgrade
from runstack.pipelines import pipeline
from runstack.repository import Repository
from runstack.steps import Output, step
from runstack.steps._base_step import BaseStep

SMALL = {"name": "small", "values": [1, 2.5, None, True], "nested": {"t": (1, "a")}}
LARGE = list(range(2000))  # ~9 KB of JSON: above the inline limit, stays a file


@step(enable_cache=False)
def produce() -> Output(small=dict, large=list, raw=bytes, number=int):  # type: ignore[valid-type]
    return SMALL, LARGE, b"\x00\x01", 21


@step
def consume(small: dict, large: list, raw: bytes, number: int) -> int:
    return len(small) + len(large) + len(raw) + number


@pipeline
def mixed(p: BaseStep, c: BaseStep) -> None:  # type: ignore[no-untyped-def]
    c(*p())


def _run(name: str) -> Any:
    return mixed(p=produce(), c=consume()).run(run_name=name)


def _outputs(repo: Repository, run: str) -> dict[str, Any]:
    return dict(repo.get_history().get_run(run).get_step("p").outputs)


def test_small_values_are_inline_and_the_rest_are_files(team: Repository) -> None:
    _run("r1")
    outs = _outputs(team, "r1")
    assert {n: a.is_inline for n, a in outs.items()} == {
        "small": True,
        "large": False,
        "raw": False,  # bytes are a raw file, never inline
        "number": True,
    }
    assert outs["small"].read() == SMALL and outs["large"].read() == LARGE
    assert outs["raw"].read() == b"\x00\x01" and outs["number"].read() == 21
    for name in ("small", "number"):
        assert not os.path.exists(outs[name].uri)  # no folder: the value is in the record
    assert os.path.isdir(outs["large"].uri)
    consumer = team.get_history().get_run("r1").get_step("c")
    assert consumer.output.read() == len(SMALL) + len(LARGE) + 2 + 21
    assert consumer.inputs["small"].read() == SMALL  # read back as a step input too


def test_inline_and_file_artifacts_are_interchangeable(
    team: Repository, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RUNSTACK_INLINE_MAX_BYTES", "0")  # every artifact a file
    _run("files")
    monkeypatch.delenv("RUNSTACK_INLINE_MAX_BYTES")
    _run("inline")  # the producer runs again (cache off), writing inline this time
    as_files, inline = _outputs(team, "files"), _outputs(team, "inline")
    assert not as_files["small"].is_inline and inline["small"].is_inline
    for name in ("small", "number"):
        assert as_files[name].read() == inline[name].read()
        assert as_files[name].content_hash == inline[name].content_hash is not None
    # Same input hashes, so the consumer of the inline values is a hit on the file-based run.
    history = team.get_history()
    hit = history.get_run("inline").get_step("c")
    assert hit.is_cached
    assert hit.output.producer_step.run.name == "files"
    # And the other way: a file-based producer's consumer hits the inline run's consumer.
    history.get_run("inline")  # (exists)
    monkeypatch.setenv("RUNSTACK_INLINE_MAX_BYTES", "0")
    again = _run("files-again").get_step("c")
    assert again.is_cached


def test_a_store_written_before_inline_values_is_upgraded_and_reads_unchanged(
    team: Repository, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RUNSTACK_INLINE_MAX_BYTES", "0")
    _run("old")
    before = {n: (a.read(), a.content_hash) for n, a in _outputs(team, "old").items()}
    store = team.active_stack.metadata_store
    downgrade(store.engine, "0007")  # back to the schema before inline values
    with store.engine.connect() as conn:
        columns = {c["name"] for c in sa.inspect(conn).get_columns("artifacts")}
        assert "inline_data" not in columns
    upgrade(store.engine)  # what opening the store does
    with store.engine.connect() as conn:
        columns = {c["name"] for c in sa.inspect(conn).get_columns("artifacts")}
        assert "inline_data" in columns
    after = {n: (a.read(), a.content_hash) for n, a in _outputs(team, "old").items()}
    assert after == before
    monkeypatch.delenv("RUNSTACK_INLINE_MAX_BYTES")
    assert _run("new").get_step("c").is_cached  # new inline values hit the old files' cache


def test_export_import_and_delete_treat_inline_and_file_artifacts_alike(
    team: Repository, tmp_path: Any
) -> None:
    from runstack.lifecycle._bundle import export_bundle, import_bundle
    from runstack.repository import Repository as Repo

    _run("out")
    stack = team.active_stack
    run = team.get_history().get_run("out")
    bundle = tmp_path / "out.tar"
    export_bundle(stack.metadata_store, stack.artifact_store, [run.id], bundle)
    other = Repo.init(tmp_path / "elsewhere")  # a SQLite store of its own
    target = other.active_stack
    import_bundle(target.metadata_store, target.artifact_store, bundle)
    before, after = _outputs(team, "out"), _outputs(other, "out")
    for name, art in before.items():
        assert after[name].is_inline == art.is_inline, name
        assert after[name].read() == art.read(), name
        assert after[name].content_hash == art.content_hash, name
    # Deleting the run removes the file artifacts' folders; inline ones have none to remove.
    team.delete_run("out")
    assert not os.path.exists(before["large"].uri)
    with pytest.raises(KeyError):
        team.get_history().get_run("out")
