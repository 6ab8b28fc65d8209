"""The artifact store's promises: one folder per output whatever the names, no merging into an
existing folder, and no read, reuse or removal of URIs outside the store's root."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import sqlalchemy as sa

from runstack.artifact_stores import ArtifactStore
from runstack.exceptions import ArtifactNotFoundError, StoreError
from runstack.metadata_stores import _schema as t
from runstack.models import ExecutionStatus
from runstack.pipelines import pipeline
from runstack.repository import Repository
from runstack.steps import Output, step


@step
def umlauts() -> Output(ä=str, ö=str):
    return "value of ä", "value of ö"


@pipeline
def umlaut_outputs(s):
    s()


def test_outputs_whose_names_sanitize_alike_keep_their_own_values(repo: Repository) -> None:
    outputs = umlaut_outputs(s=umlauts()).run().get_step("s").outputs
    assert outputs["ä"].read() == "value of ä"
    assert outputs["ö"].read() == "value of ö"
    assert outputs["ä"].uri != outputs["ö"].uri


@step
def one() -> int:
    return 1


@step
def two() -> int:
    return 2


@pipeline
def umlaut_slots(slot_ä, slot_ö):
    slot_ä()
    slot_ö()


def test_slots_whose_names_sanitize_alike_keep_their_own_outputs(repo: Repository) -> None:
    run = umlaut_slots(slot_ä=one(), slot_ö=two()).run()
    assert run.get_step("slot_ä").output.read() == 1
    assert run.get_step("slot_ö").output.read() == 2


def test_long_slot_names_sharing_their_first_80_characters_stay_apart(repo: Repository) -> None:
    a, b = "s" * 80 + "a" * 20, "s" * 80 + "b" * 20
    namespace: dict[str, object] = {}
    exec(f"def long_slots({a}, {b}):\n    {a}()\n    {b}()\n", namespace)
    run = pipeline(namespace["long_slots"])(**{a: one(), b: two()}).run()
    assert run.get_step(a).output.read() == 1
    assert run.get_step(b).output.read() == 2
    assert run.get_step(a).output.uri != run.get_step(b).output.uri


@step(enable_cache=False)
def named_logs() -> Output(_logs=str):
    print("hello from the step")
    return "the data"


@pipeline
def logs_output(s):
    s()


def test_an_output_named_logs_never_shares_a_folder_with_the_step_log(
    repo: Repository, file_artifacts: None
) -> None:
    s = logs_output(s=named_logs()).run().get_step("s")
    assert s.output.read() == "the data"
    assert "hello from the step" in s.logs
    assert os.listdir(s.output.uri) == ["data.json"]  # the log went elsewhere


def test_every_name_gets_its_own_folder(tmp_path: Path) -> None:
    store = ArtifactStore(str(tmp_path / "store"))
    names = ["ä", "ö", "_", "a/b", "a_b", "..", ".", "_logs", "x" * 200, "x" * 199 + "y"]
    uris = {store.new_uri("p", "r", "s", n) for n in names}
    assert len(uris) == len(names)
    assert store.logs_uri("p", "r", "s") not in uris
    for uri in uris:
        assert store.check(uri) == uri  # never a '..' or a folder outside the root
        assert all(len(part) < 100 for part in uri.split("/"))
    steps = {store.new_uri("p", "r", s, "out") for s in ["slot_ä", "slot_ö"]}
    assert len(steps) == 2


def test_publishing_onto_an_existing_folder_is_an_error_not_a_merge(tmp_path: Path) -> None:
    store = ArtifactStore(str(tmp_path / "store"))
    uri = store.new_uri("p", "r", "s", "o")
    os.makedirs(uri)
    Path(uri, "old.txt").write_text("old")
    with pytest.raises(StoreError, match="already exists"), store.staged(uri) as target:
        Path(target, "new.txt").write_text("new")
    assert os.listdir(uri) == ["old.txt"]
    assert os.listdir(os.path.dirname(uri)) == [os.path.basename(uri)]  # no staging left


@pytest.mark.parametrize("bad", ["", "/abs", "../up", "a/../b", "a//b", "a/", "./a"])
def test_put_refuses_a_file_name_that_is_not_plain_and_publishes_nothing(
    tmp_path: Path, bad: str
) -> None:
    import io

    store = ArtifactStore(str(tmp_path / "store"))
    uri = store.new_uri("p", "r", "s", "o")
    files = [("ok.txt", io.BytesIO(b"ok")), (bad, io.BytesIO(b"x"))]
    with pytest.raises(StoreError, match="not a plain relative name"):
        store.put(uri, files)
    assert not store.exists(uri)
    store.put(uri, [("a/...b", io.BytesIO(b"y"))])  # dots inside a name are fine
    assert store.files(uri) == [("a/...b", 1)]


def test_a_failed_write_leaves_no_folder_behind(tmp_path: Path) -> None:
    store = ArtifactStore(str(tmp_path / "store"))
    uri = store.new_uri("p", "r", "s", "o")
    with pytest.raises(RuntimeError), store.staged(uri) as target:
        Path(target, "part.bin").write_bytes(b"x")
        raise RuntimeError("half-way")
    assert not store.exists(uri)
    assert os.listdir(os.path.dirname(uri)) == []


# -- URIs outside the store's root ------------------------------------------------------


@step
def answer() -> int:
    return 42


@pipeline
def single(a):
    a()


def _set_uri(repo: Repository, artifact_id: int, uri: str) -> None:
    store = repo.active_stack.metadata_store
    with store.engine.begin() as conn:
        conn.execute(sa.update(t.artifacts).where(t.artifacts.c.id == artifact_id).values(uri=uri))


@pytest.mark.parametrize("where", ["dot-dot", "other root"])
def test_an_artifact_uri_outside_the_store_is_neither_read_nor_reused(
    repo: Repository, where: str, file_artifacts: None
) -> None:
    art = single(answer()).run(run_name="r1").get_step("a").output
    root = repo.active_stack.artifact_store.path
    outside = Path(root).parent / "outside"
    shutil.copytree(art.uri, outside)  # a real, readable artifact lies there
    tampered = f"{root}/../outside" if where == "dot-dot" else str(outside)
    _set_uri(repo, art.id, tampered)

    seen = Repository(repo.root).get_pipeline("single").get_run("r1").get_step("a").output
    assert seen.uri == tampered
    with pytest.raises(ArtifactNotFoundError, match="outside the artifact store's root") as e:
        seen.read()
    assert root in str(e.value) and f"#{art.id}" in str(e.value)

    again = single(answer()).run(run_name="r2").get_step("a")
    assert again.status is ExecutionStatus.COMPLETED  # ran again: the tampered one is passed over
    assert again.output.uri != tampered and again.output.read() == 42


@step(enable_cache=False)
def chatty() -> int:
    print("a line of log")
    return 1


def test_a_log_uri_outside_the_store_is_not_read(repo: Repository) -> None:
    s = single(chatty()).run(run_name="r1").get_step("a")
    assert "a line of log" in s.logs
    root = repo.active_stack.artifact_store.path
    store = repo.active_stack.metadata_store
    with store.engine.begin() as conn:
        conn.execute(
            sa.update(t.steps).where(t.steps.c.id == s.id).values(logs_uri=f"{root}/../../etc")
        )
    fresh = Repository(repo.root).get_pipeline("single").get_run("r1").get_step("a")
    with pytest.raises(ArtifactNotFoundError, match="outside the artifact store's root"):
        _ = fresh.logs


def test_removing_outside_the_root_is_refused(tmp_path: Path) -> None:
    store = ArtifactStore(str(tmp_path / "store"))
    victim = tmp_path / "precious"
    victim.mkdir()
    for uri in (str(victim), f"{store.path}/../precious", f"file://{victim}", "s3://b/x"):
        with pytest.raises(ArtifactNotFoundError, match="outside"):
            store.remove(uri)
    assert victim.exists()
