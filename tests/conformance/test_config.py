"""Pointing a stack at a database server: settings from parts, secrets from the environment."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import sqlalchemy as sa
from conformance_pipelines import make_first_pipeline
from conformance_support import Backend

from runstack.exceptions import ConfigError
from runstack.metadata_stores import SQLMetadataStore
from runstack.post_execution import History
from runstack.repository import Repository

SERVER_BACKENDS = pytest.mark.parametrize("backend", ["postgresql", "mysql"], indirect=True)


@SERVER_BACKENDS
def test_settings_by_parts_with_environment_variables(
    repo: Repository, backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = sa.make_url(backend.url)
    monkeypatch.setenv("RS_TEST_DB_HOST", url.host or "")
    monkeypatch.setenv("RS_TEST_DB_NAME", url.database or "")
    repo.register_component(
        "metadata_store",
        "team-db",
        backend.flavor,
        {
            "host": "${RS_TEST_DB_HOST}",
            "port": url.port,
            "username": url.username,
            "database": "$RS_TEST_DB_NAME",
        },
    )
    repo.register_stack(
        "team",
        orchestrator="local",
        metadata_store="team-db",
        artifact_store="local",
        activate=True,
    )
    assert "${RS_TEST_DB_HOST}" in repo.config_path.read_text()  # the file keeps the reference
    make_first_pipeline().run(run_name="via-env")
    store = repo.active_stack.metadata_store
    assert store.url.database == url.database and store.url.host == url.host
    assert [r.name for r in repo.get_pipeline("first_pipeline").runs] == ["via-env"]


@SERVER_BACKENDS
def test_an_unset_environment_variable_is_named(
    repo: Repository, backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("RS_TEST_UNSET_PASSWORD", raising=False)
    repo.register_component(
        "metadata_store", "team-db", backend.flavor, {"password": "${RS_TEST_UNSET_PASSWORD}"}
    )
    repo.register_stack(
        "team", orchestrator="local", metadata_store="team-db", artifact_store="local"
    )
    with pytest.raises(ConfigError, match="RS_TEST_UNSET_PASSWORD, which is not set"):
        repo.get_stack("team")


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_passwords_stay_out_of_reprs_and_messages(backend: Backend) -> None:
    # The server trusts local connections, so any password is accepted: show it is hidden.
    url = sa.make_url(backend.url).set(password="s3cret-pw")
    store = SQLMetadataStore(url)
    try:
        for shown in (store.display_url, repr(store), repr(History(store))):
            assert "s3cret-pw" not in shown and "***" in shown
    finally:
        store.dispose()


@pytest.mark.parametrize(
    ("given", "driver"),
    [
        ("postgresql://u@h/db", "postgresql+psycopg"),
        ("postgres://u@h/db", "postgresql+psycopg"),
        # mysqlclient is in the test extra: a plain URL takes it (absent: test below).
        ("mysql://u@h/db", "mysql+mysqldb"),
        ("mariadb://u@h/db", "mariadb+mysqldb"),
        ("mysql+pymysql://u@h/db", "mysql+pymysql"),
        ("mariadb+pymysql://u@h/db", "mariadb+pymysql"),
        ("mysql+mysqldb://u@h/db", "mysql+mysqldb"),
        ("postgresql+psycopg://u@h/db", "postgresql+psycopg"),
    ],
)
def test_plain_urls_get_runstacks_drivers(given: str, driver: str) -> None:
    from runstack.metadata_stores._engine import normalize_url

    assert normalize_url(given).drivername == driver


@pytest.mark.parametrize(
    ("url", "hint"),
    [
        ("postgresql+psycopg2://u:pw@h/db", "pip install 'runstack[postgresql]'"),
        ("mysql+mysqlconnector://u@h/db", "pip install 'runstack[mysql]'"),
        ("mysql+mysqlconnector://u@h/db", "pip install 'runstack[mysqlclient]'"),
        ("postgresql+nosuch://u@h/db", "postgresql+psycopg"),
    ],
)
def test_a_missing_driver_says_what_to_install(url: str, hint: str) -> None:
    from runstack.exceptions import StoreError

    with pytest.raises(StoreError, match="Cannot use the database driver") as info:
        SQLMetadataStore(url)
    assert hint in str(info.value) and "pw" not in str(info.value).replace("psycopg", "")


# A child Python in which MySQLdb cannot be imported, as where mysqlclient is not installed.
_NO_MYSQLCLIENT = "import sys; sys.modules['MySQLdb'] = None\n"


def _in_child(code: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", _NO_MYSQLCLIENT + textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_without_mysqlclient_plain_urls_and_the_flavor_take_pymysql() -> None:
    out = _in_child(
        """
        from runstack.metadata_stores._engine import normalize_url
        from runstack.stack._builtin_flavors import MySQLFlavor

        print(normalize_url("mysql://u@h/db").drivername)
        print(normalize_url("mariadb://u@h/db").drivername)
        print(normalize_url("mysql+mysqldb://u@h/db").drivername)  # named: kept
        print(normalize_url(MySQLFlavor(database="d").resolved_url()).drivername)
        print(MySQLFlavor.missing_extra())
        """
    )
    assert out.splitlines() == [
        "mysql+pymysql",
        "mariadb+pymysql",
        "mysql+mysqldb",
        "mysql+pymysql",
        "None",  # PyMySQL is installed
    ]


def test_the_mysql_flavor_needs_either_driver() -> None:
    out = _in_child(
        """
        import sys
        from runstack.stack._builtin_flavors import MySQLFlavor

        print(MySQLFlavor.missing_extra())
        sys.modules["pymysql"] = None
        print(MySQLFlavor.missing_extra())
        """
    )
    assert out.splitlines() == ["None", "pip install 'runstack[mysql]'"]
    from runstack.stack._builtin_flavors import MySQLFlavor

    assert MySQLFlavor.missing_extra() is None


def test_importing_runstack_loads_no_mysql_driver() -> None:
    out = _in_child(
        """
        import sys
        del sys.modules["MySQLdb"]
        import runstack
        from runstack.metadata_stores._engine import normalize_url
        from runstack.stack._builtin_flavors import MySQLFlavor

        normalize_url("mysql://u@h/db")
        MySQLFlavor.missing_extra()
        print(sorted({"MySQLdb", "pymysql"} & set(sys.modules)))
        """
    )
    assert out == "[]"


@pytest.mark.parametrize("backend", ["mysql"], indirect=True)
def test_the_mysql_flavor_built_from_parts_uses_mysqlclient(
    repo: Repository, backend: Backend
) -> None:
    url = sa.make_url(backend.url)
    repo.register_component(
        "metadata_store",
        "team-db",
        "mysql",
        {"host": url.host, "port": url.port, "username": url.username, "database": url.database},
    )
    repo.register_stack(
        "team", orchestrator="local", metadata_store="team-db", artifact_store="local"
    )
    store = repo.get_stack("team").metadata_store
    assert store.url.drivername == "mysql+mysqldb"
    raw = store.engine.raw_connection()
    try:
        assert type(raw.driver_connection).__module__.startswith("MySQLdb")
    finally:
        raw.close()


@pytest.mark.parametrize("backend", ["mysql"], indirect=True)
def test_a_mysqlclient_that_does_not_load_falls_back_to_pymysql(
    backend: Backend, tmp_path: Path
) -> None:
    # Installed (found) but broken, as where its C library is missing at run time: a plain
    # mysql:// URL still opens, on PyMySQL; a URL naming mysqldb says what is wrong.
    broken = tmp_path / "MySQLdb"
    broken.mkdir()
    (broken / "__init__.py").write_text(
        "raise ImportError('libmariadb.so.3: cannot open shared object file')\n"
    )
    plain = "mysql://" + backend.url.partition("://")[2]
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                f"""
                import sys
                sys.path.insert(0, {str(tmp_path)!r})
                from runstack.exceptions import StoreError
                from runstack.metadata_stores import SQLMetadataStore

                store = SQLMetadataStore({plain!r})
                print(store.url.drivername, store.list_runs())
                try:
                    SQLMetadataStore({plain.replace("mysql://", "mysql+mysqldb://")!r})
                except StoreError as e:
                    print("named:", "libmariadb" in str(e) or "MySQLdb" in str(e))
                """
            ),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[:2] == ["mysql+pymysql []", "named: True"]


@pytest.mark.parametrize("backend", ["mysql"], indirect=True)
def test_a_worker_reopens_a_plain_url_with_the_driver_it_has(backend: Backend) -> None:
    """A store sent to a worker process (parallel, Ray) is reopened from its URL there: a
    plain mysql:// URL gets PyMySQL where mysqlclient is missing, not a driver it lacks."""
    import pickle
    from datetime import datetime, timezone

    plain = sa.make_url(backend.url).set(drivername="mysql").render_as_string(False)
    store = SQLMetadataStore(plain)
    try:
        store.create_run("p", "r-1", datetime.now(timezone.utc))
        assert store.url.drivername == "mysql+mysqldb"
        sent = pickle.dumps(store)
    finally:
        store.dispose()
    out = _in_child(
        f"""
        import pickle
        store = pickle.loads({sent!r})
        print(store.url.drivername, store.get_run("r-1").name)
        store.dispose()
        """
    )
    assert out == "mysql+pymysql r-1"
