"""Pointing a stack at a database server: settings from parts, secrets from the environment."""

from __future__ import annotations

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
        ("mysql://u@h/db", "mysql+pymysql"),
        ("mariadb://u@h/db", "mariadb+pymysql"),
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
        ("mysql+mysqldb://u@h/db", "pip install 'runstack[mysql]'"),
        ("postgresql+nosuch://u@h/db", "postgresql+psycopg"),
    ],
)
def test_a_missing_driver_says_what_to_install(url: str, hint: str) -> None:
    from runstack.exceptions import StoreError

    with pytest.raises(StoreError, match="Cannot use the database driver") as info:
        SQLMetadataStore(url)
    assert hint in str(info.value) and "pw" not in str(info.value).replace("psycopg", "")
