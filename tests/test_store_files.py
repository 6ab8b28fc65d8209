"""The SQLite store as files, store failures as errors, and who decides a run is dead
(issue 11 items 7, 8, 9, 11).

Real files, real processes, real locks: the store's history is one self-contained file when
no process uses it, a store that is missing its history or is no database is refused by name,
a held lock or a full disk is a clear error with the run's end recorded, and a run is only
called crashed when its owner is provably dead or has stopped beating.
"""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from runstack.cli import main
from runstack.exceptions import StoreError, StoreUnusableError
from runstack.metadata_stores import SQLMetadataStore, _engine, _liveness
from runstack.models import ExecutionStatus
from runstack.pipelines import pipeline
from runstack.repository import Repository
from runstack.steps import BaseStepConfig, step
from test_integrity import CRASHY

PY = sys.executable


@step
def one() -> int:
    return 1


@pipeline
def tiny(s):
    s()


def _db(repo: Repository) -> Path:
    return repo.config_dir / "metadata.db"


def _cli(repo: Repository, *args: str) -> Any:
    return CliRunner().invoke(main, ["-R", str(repo.root), *args])


def _run_in_subprocess(root: Path, run_name: str) -> None:
    code = (
        "from runstack.pipelines import pipeline\n"
        "from runstack.steps import step\n"
        "@step\ndef one() -> int:\n    return 1\n"
        "@pipeline\ndef tiny(s):\n    s()\n"
        f"tiny(s=one()).run(run_name={run_name!r})\n"
    )
    env = {**os.environ, "RUNSTACK_REPOSITORY": str(root), "RUNSTACK_PROGRESS": "off"}
    subprocess.run([PY, "-c", code], cwd=root, env=env, check=True, capture_output=True)


# -- item 7: the history leaves the -wal; copies are safe; a lone -wal is refused ------------


def test_a_store_at_rest_is_one_file_that_copies_with_every_run(repo: Repository) -> None:
    for i in range(3):
        _run_in_subprocess(repo.root, f"r{i}")
    db = _db(repo)
    wal = db.with_name("metadata.db-wal")
    assert not wal.exists() or wal.stat().st_size == 0  # checkpointed when each process ended
    copy = repo.root / "copy.db"
    shutil.copy(db, copy)  # what users do to back up or share a store: the .db alone
    assert [r.name for r in SQLMetadataStore(f"sqlite:///{copy}").list_runs()] == ["r0", "r1", "r2"]


def test_dispose_checkpoints_the_store(isolated: Path) -> None:
    db = isolated / "m.db"
    store = SQLMetadataStore(f"sqlite:///{db}")
    store.create_run("p", "here", datetime.now(timezone.utc))
    wal = db.with_name("m.db-wal")
    assert wal.stat().st_size > 0  # in use: the new run is in the -wal
    store.dispose()
    assert not wal.exists() or wal.stat().st_size == 0
    assert [r.name for r in SQLMetadataStore(f"sqlite:///{db}").list_runs()] == ["here"]


def test_backup_copies_a_live_store_consistently(repo: Repository) -> None:
    tiny(s=one()).run(run_name="in-the-wal")
    reader = sqlite3.connect(_db(repo))
    reader.execute("BEGIN")
    reader.execute("SELECT count(*) FROM runs").fetchone()  # a reader keeps the -wal in use
    try:
        result = _cli(repo, "metadata-store", "backup", str(repo.root / "backup.db"))
        assert result.exit_code == 0, result.output
        assert "Backed up" in result.output
        assert not (repo.root / "backup.db-wal").exists()  # one self-contained file
        assert (repo.root / "backup.db").stat().st_mode & 0o077 == 0  # private, as the store
        runs = SQLMetadataStore(f"sqlite:///{repo.root / 'backup.db'}").list_runs()
        assert [r.name for r in runs] == ["in-the-wal"]
        again = _cli(repo, "metadata-store", "backup", str(repo.root / "backup.db"))
        assert again.exit_code == 1 and "already exists" in again.output
    finally:
        reader.close()


def _wal_store(path: Path) -> None:
    """A store whose history is in its -wal (as while a process writes): both files."""
    store = SQLMetadataStore(f"sqlite:///{path}")
    store.create_run("p", "only-in-wal", datetime.now(timezone.utc))
    holder = sqlite3.connect(path)
    holder.execute("BEGIN")
    holder.execute("SELECT 1 FROM runs").fetchone()  # no checkpoint can empty the -wal
    store.engine.dispose()
    shutil.copy(path.with_name(path.name + "-wal"), path.parent / "saved-wal")
    holder.close()


def test_a_wal_without_its_database_file_is_refused(isolated: Path) -> None:
    db = isolated / "store.db"
    _wal_store(db)
    db.unlink()
    shutil.copy(isolated / "saved-wal", isolated / "store.db-wal")
    with pytest.raises(StoreUnusableError) as e:
        SQLMetadataStore(f"sqlite:///{db}")
    assert str(db) in str(e.value) and "store.db-wal" in str(e.value)
    assert not db.exists()  # no empty store was started next to it


def test_a_database_copied_without_its_wal_is_refused(isolated: Path) -> None:
    src = isolated / "live"
    src.mkdir()
    con = sqlite3.connect(src / "m.db")
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("CREATE TABLE runs (id INTEGER)")
    con.commit()  # the table is in m.db-wal only; m.db is its one-page header
    shutil.copy(src / "m.db", isolated / "copy.db")
    con.close()
    with pytest.raises(StoreUnusableError) as e:
        SQLMetadataStore(f"sqlite:///{isolated / 'copy.db'}")
    assert "copy.db-wal, which is missing" in str(e.value)


def test_a_new_store_is_created_whole(isolated: Path) -> None:
    db = isolated / "fresh.db"
    store = SQLMetadataStore(f"sqlite:///{db}")
    assert store.list_runs() == []
    assert sorted(p.name for p in isolated.iterdir() if p.name.startswith(".")) == []
    store.dispose()
    SQLMetadataStore(f"sqlite:///{db}").dispose()  # reopening the empty store is fine


@pytest.mark.parametrize(
    "name", ["plain.db", "with space.db", "é.db", "a@b:c.db", "a#b.db", "pct%41.db", "q?x.db"]
)
def test_a_store_is_opened_at_the_file_sqlalchemy_would_open(isolated: Path, name: str) -> None:
    # Plain sqlite:/// URLs are read without SQLAlchemy's parser: same file, same URL.
    url = f"sqlite:///{isolated / name}"
    parsed = sa.make_url(url)
    store = SQLMetadataStore(url)
    try:
        assert store.url == parsed
        assert store.display_url == parsed.render_as_string(hide_password=True)
        assert store.__reduce__()[1] == (parsed.render_as_string(hide_password=False),)
        assert store._sqlite_path == Path(parsed.database or "").resolve()
        assert store._sqlite_path.is_file() and store.list_runs() == []
    finally:
        store.dispose()


# -- item 8: a store that is no database, corrupted, or read-only ----------------------------


def test_a_file_that_is_not_a_database_is_an_error_naming_it(repo: Repository) -> None:
    _db(repo).write_text("these are my notes, not a database\n" * 50)
    for args in (["run", "list"], ["run", "list", "--json"], ["pipeline", "list"]):
        result = _cli(repo, *args)
        assert result.exit_code == 1, result.output
        assert str(_db(repo)) in result.output and "not a SQLite database" in result.output
        assert "No runs yet" not in result.output and "[]" not in result.output


def test_a_corrupted_store_is_an_error_saying_how_to_recover(repo: Repository) -> None:
    for i in range(20):
        tiny(s=one()).run(run_name=f"r{i}")
    repo.active_stack.metadata_store.dispose()
    from runstack.stack import _flavors

    _flavors._stores.clear()
    data = bytearray(_db(repo).read_bytes())
    page = int.from_bytes(data[16:18], "big")
    for at in range(page, len(data), 97):  # every page but the header page
        data[at] ^= 0x5A
    _db(repo).write_bytes(bytes(data))
    result = _cli(repo, "run", "list")
    assert result.exit_code == 1, result.output
    assert "corrupted" in result.output or "not a SQLite database" in result.output
    assert str(_db(repo)) in result.output


def _require_mount_namespace() -> None:
    """A real read-only mount needs a mount namespace; without one the test fails."""
    assert shutil.which("unshare") is not None, "needs util-linux's `unshare`"
    probe = subprocess.run(["unshare", "--mount", "true"], capture_output=True, text=True)
    assert probe.returncode == 0, (
        f"`unshare --mount` failed ({probe.stderr.strip()}): run the tests as root or in a "
        "container allowed to create mount namespaces."
    )


def test_a_store_on_a_read_only_mount_is_an_error_naming_it(repo: Repository) -> None:
    _require_mount_namespace()
    tiny(s=one()).run(run_name="before")
    repo.active_stack.metadata_store.dispose()
    mount = repo.root.parent / "ro-mount"
    mount.mkdir()
    runstack = Path(PY).with_name("runstack")
    env = {**os.environ, "RUNSTACK_PROGRESS": "off", "PYTHONPATH": os.pathsep.join(sys.path)}
    for args in ("run list", "run list --json"):
        script = (
            f"mount --bind {repo.root} {mount} && mount -o remount,bind,ro {mount} && "
            f"{runstack} -R {mount} {args}"
        )
        result = subprocess.run(
            ["unshare", "--mount", "sh", "-c", script], capture_output=True, text=True, env=env
        )
        out = result.stdout + result.stderr
        assert result.returncode == 1, out
        assert "read-only" in out and str(mount / ".runstack" / "metadata.db") in out
        assert "No runs yet" not in out and "[]" not in result.stdout


# -- item 9: a held lock, a full disk ---------------------------------------------------------


def test_a_lock_held_past_the_busy_timeout_is_a_clear_error_and_the_run_ends_recorded(
    repo: Repository, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_engine, "BUSY_TIMEOUT_S", 1.0)
    repo.active_stack.metadata_store.dispose()  # new connections take the short timeout
    db = _db(repo)

    @step
    def locks() -> int:
        def hold() -> None:  # another program holds a write transaction for 1.5 s
            con = sqlite3.connect(db, isolation_level=None)
            con.execute("BEGIN IMMEDIATE")
            taken.set()
            time.sleep(1.5)
            con.execute("ROLLBACK")
            con.close()

        threading.Thread(target=hold).start()
        taken.wait(10)
        return 1

    taken = threading.Event()
    began = time.monotonic()
    with pytest.raises(StoreError) as e:
        tiny(s=locks()).run(run_name="locked-out")
    assert time.monotonic() - began < 20  # no six retries of the whole timeout
    assert "stayed locked by another connection" in str(e.value) and str(db) in str(e.value)
    assert "sqlite3.OperationalError" not in str(e.value)
    run = repo.active_stack.metadata_store.get_run("locked-out")
    assert run.status is ExecutionStatus.FAILED and run.end_time is not None
    assert "locked" in run.error


class Big(BaseStepConfig):
    notes: str = "x" * 200_000


@step
def bulky(config: Big) -> int:
    return len(config.notes)


def test_a_full_disk_is_a_clear_error_and_the_run_ends_recorded(
    repo: Repository, monkeypatch: pytest.MonkeyPatch
) -> None:
    tiny(s=one()).run(run_name="warm-up")
    store = repo.active_stack.metadata_store
    pages = store._fetch("PRAGMA page_count")[0][0]
    # The runner writes on sqlite3 connections of its own (``_inserts``): open fresh ones,
    # on which the disk fills up at this size.
    inserts = store._sqlite_inserts
    inserts.release()
    connect = inserts._connect

    def limited() -> sqlite3.Connection:
        conn = connect()
        conn.execute(f"PRAGMA max_page_count={pages + 2}")
        return conn

    monkeypatch.setattr(inserts, "_connect", limited)
    try:
        with pytest.raises(StoreError) as e:
            tiny(s=bulky()).run(run_name="disk-full")
    finally:
        monkeypatch.undo()
        inserts.release()
    assert "is full" in str(e.value) and "Free space" in str(e.value)
    run = store.get_run("disk-full")
    assert run.status is ExecutionStatus.FAILED and run.end_time is not None


# -- item 11: liveness across PID namespaces; SIGTERM -----------------------------------------


def _dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def test_a_run_of_another_pid_namespace_is_judged_by_its_heartbeat(repo: Repository) -> None:
    store = repo.active_stack.metadata_store
    now = datetime.now(timezone.utc)
    for name, start in (("beating", now), ("silent", now - timedelta(hours=1))):
        store.create_run(
            "boxed",
            name,
            start,
            owner_host=_liveness.this_host(),  # a container sharing the host's name...
            owner_pid=_dead_pid(),  # ...whose pid means nothing here
            owner_ns="another-boot:4026531836",
        )
    runs = {r.name: r for r in Repository(repo.root).get_pipeline("boxed").runs}
    assert runs["beating"].status is ExecutionStatus.RUNNING
    assert runs["silent"].status is ExecutionStatus.FAILED
    assert "no heartbeat" in runs["silent"].error
    assert runs["silent"].end_time == now - timedelta(hours=1)  # last seen, not looked at
    assert [c.run_name for c in _liveness.reconcile(store)] == ["silent"]
    # The same dead pid in this namespace is provably dead at once.
    store.create_run(
        "boxed",
        "here",
        now,
        owner_host=_liveness.this_host(),
        owner_pid=_dead_pid(),
        owner_ns=_liveness.this_namespace(),
    )
    assert Repository(repo.root).get_pipeline("boxed").get_run("here").status is (
        ExecutionStatus.FAILED
    )


def _free_host_pid(above: int = 300) -> int:
    pid = above
    while Path(f"/proc/{pid}").exists():
        pid += 1
    return pid


def _require_unshare_pid() -> None:
    """This test needs a real PID namespace; without one it fails (tests never skip)."""
    assert shutil.which("unshare") is not None, "needs util-linux's `unshare`"
    probe = subprocess.run(
        ["unshare", "--pid", "--fork", "--mount-proc", "true"], capture_output=True, text=True
    )
    assert probe.returncode == 0, (
        f"`unshare --pid --fork --mount-proc` failed ({probe.stderr.strip()}): run the tests "
        "as root or in a container allowed to create PID namespaces."
    )


@pytest.mark.slow
def test_a_run_in_another_pid_namespace_is_running_while_it_runs(
    repo: Repository, monkeypatch: pytest.MonkeyPatch
) -> None:
    _require_unshare_pid()
    script = repo.root / "crashy.py"
    script.write_text(CRASHY)
    marker = repo.root / "boxed.marker"
    target = _free_host_pid()
    # Inside the new namespace pids count from 1: burn some, so that the run's pid is one that
    # no process has on the host (as a container's pid usually is).
    burn = f"i=2; while [ $i -lt {target} ]; do /bin/true; i=$((i+1)); done"
    inner = f"{burn}; {PY} {script} step {marker} boxed-run; true"  # no exec: keep the pid
    env = {**os.environ, "RUNSTACK_REPOSITORY": str(repo.root), "RUNSTACK_PROGRESS": "off"}
    proc = subprocess.Popen(
        ["unshare", "--pid", "--fork", "--mount-proc", "--kill-child", "sh", "-c", inner],
        cwd=repo.root,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 120
        while not marker.exists():
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            assert time.monotonic() < deadline, "the step never started"
            time.sleep(0.05)
        run = Repository(repo.root).get_pipeline("crashy").get_run("boxed-run")
        record = repo.active_stack.metadata_store.get_run("boxed-run")
        assert not Path(f"/proc/{record.owner_pid}").exists()  # its pid is no process here
        assert record.owner_ns != _liveness.this_namespace()
        assert run.status is ExecutionStatus.RUNNING  # not "crashed" while it runs
        assert _liveness.reconcile(repo.active_stack.metadata_store) == []
    finally:
        proc.kill()
        proc.wait(timeout=30)
        if proc.stderr:
            proc.stderr.close()
    # Killed, it cannot be proven dead from here: it is crashed once its heartbeat is stale.
    monkeypatch.setattr(_liveness, "STALE_AFTER", timedelta(seconds=0))
    run = Repository(repo.root).get_pipeline("crashy").get_run("boxed-run")
    assert run.status is ExecutionStatus.FAILED and "no heartbeat" in run.error


@pytest.mark.slow
def test_sigterm_records_the_run_failed_like_ctrl_c(repo: Repository) -> None:
    script = repo.root / "crashy.py"
    script.write_text(CRASHY)
    marker = repo.root / "term.marker"
    env = {**os.environ, "RUNSTACK_REPOSITORY": str(repo.root), "RUNSTACK_PROGRESS": "off"}
    proc = subprocess.Popen(
        [PY, str(script), "step", str(marker), "terminated"],
        cwd=repo.root,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 60
    while not marker.exists():
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.02)
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=60)
    if proc.stderr:
        proc.stderr.close()
    record = repo.active_stack.metadata_store.get_run("terminated")
    assert record.status is ExecutionStatus.FAILED  # recorded by the process itself
    assert "SIGTERM" in (record.error or "") and record.end_time is not None
    steps = Repository(repo.root).get_pipeline("crashy").get_run("terminated").steps
    assert [(s.name, s.status) for s in steps] == [
        ("first", ExecutionStatus.COMPLETED),
        ("second", ExecutionStatus.FAILED),
    ]
