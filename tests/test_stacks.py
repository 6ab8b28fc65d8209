"""Stacks, components, flavors (built-in and entry-point) and the repository's config file."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import yaml

from runstack.exceptions import ConfigError, PipelineNotFoundError, StoreError
from runstack.pipelines import pipeline
from runstack.repository import Repository
from runstack.stack._flavors import MASK, available_flavors, masked_settings
from runstack.steps import BaseStepConfig, step


class CountConfig(BaseStepConfig):
    n: int = 3


@step
def numbers(config: CountConfig) -> list:
    return list(range(config.n))


@step
def total(values: list) -> int:
    return sum(values)


@pipeline
def summing(numbers, total):
    total(numbers())


def make_pipeline():
    return summing(numbers=numbers(), total=total())


@pytest.fixture(autouse=True)
def _quiet(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUNSTACK_PROGRESS", "off")


def add_sqlite_stack(repo: Repository, key: str, activate: bool = False) -> None:
    repo.register_component("metadata_store", f"{key}-db", "sqlite", {"path": f"{key}.db"})
    repo.register_component("artifact_store", f"{key}-files", "local", {"path": f"{key}-art"})
    repo.register_stack(
        key,
        orchestrator="local",
        metadata_store=f"{key}-db",
        artifact_store=f"{key}-files",
        activate=activate,
    )


# -- the config file -------------------------------------------------------------------------


def test_init_writes_a_readable_yaml_config_with_one_active_default_stack(repo: Repository):
    text = repo.config_path.read_text()
    assert text.startswith("# runstack repository config")
    data = yaml.safe_load(text)
    assert data["active_stack"] == "default"
    assert data["stacks"]["default"] == {
        "orchestrator": "local",
        "metadata_store": "local",
        "artifact_store": "local",
    }
    assert "{" not in text.split("stacks:")[1]  # block style, not JSON-ish flow style
    assert repo.active_stack_key == "default"
    assert Repository.init(repo.root).config == repo.config  # idempotent


def test_registered_components_and_stacks_are_saved_and_reloaded(repo: Repository):
    add_sqlite_stack(repo, "team", activate=True)
    again = Repository()
    assert again.active_stack_key == "team"
    assert set(again.stacks) == set(again.list_stacks()) == {"default", "team"}
    assert again.get_component("metadata_store", "team-db").settings == {"path": "team.db"}
    assert again.active_stack.metadata_store.display_url.endswith("/.runstack/team.db")


def test_settings_are_converted_by_the_flavor_and_stored_without_defaults(repo: Repository):
    repo.register_component(
        "metadata_store", "pg", "postgresql", {"host": "db", "port": "6543", "password": "x"}
    )
    stored = repo.get_component("metadata_store", "pg").settings
    assert stored == {"host": "db", "port": 6543, "password": "x"}
    assert (
        yaml.safe_load(repo.config_path.read_text())["components"]["metadata_store"]["pg"][
            "settings"
        ]["port"]
        == 6543
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("metadata_store", "x", "nosuch", {}), "Unknown metadata_store flavor 'nosuch'"),
        (("metadata_store", "x", "sqlite", {"paht": "a.db"}), "Its settings are: path"),
        (("metadata_store", "x", "postgresql", {"port": "many"}), "port"),
        (("artifact_store", "x", "fsspec", {}), "url"),
        (("artifact_store", "bad name", "local", {}), "Invalid artifact store name"),
        (("tracker", "x", "local", {}), "Unknown component type 'tracker'"),
        (("metadata_store", "local", "sqlite", {}), "already exists"),
    ],
)
def test_bad_components_are_refused_and_nothing_is_saved(repo, args, message):
    before = repo.config_path.read_text()
    with pytest.raises(ConfigError, match=message):
        repo.register_component(*args)
    assert repo.config_path.read_text() == before


def test_stack_mistakes_are_refused_with_a_way_out(repo: Repository):
    with pytest.raises(ConfigError, match="No metadata_store named 'nope'.*register"):
        repo.register_stack(
            "s", orchestrator="local", metadata_store="nope", artifact_store="local"
        )
    with pytest.raises(ConfigError, match="already exists"):
        repo.register_stack(
            "default", orchestrator="local", metadata_store="local", artifact_store="local"
        )
    with pytest.raises(ConfigError, match="Did you mean 'default'"):
        repo.set_active_stack("defualt")
    with pytest.raises(ConfigError, match="is active; activate another one first"):
        repo.delete_stack("default")
    with pytest.raises(ConfigError, match=r"used by stack\(s\) \['default'\]"):
        repo.delete_component("metadata_store", "local")


def test_deleting_a_stack_then_its_components(repo: Repository):
    add_sqlite_stack(repo, "other")
    repo.delete_stack("other")
    repo.delete_component("metadata_store", "other-db")
    repo.delete_component("artifact_store", "other-files")
    assert set(repo.stacks) == {"default"}
    assert "other-db" not in Repository().list_components("metadata_store")


def test_edits_from_two_repository_objects_both_survive(repo: Repository):
    first, second = Repository(), Repository()
    first.register_component("orchestrator", "a", "local")
    second.register_component("orchestrator", "b", "local")  # second never saw "a"
    assert set(Repository().list_components("orchestrator")) == {"local", "a", "b"}


def test_hand_edited_config_with_dangling_references_is_explained(repo: Repository):
    data = yaml.safe_load(repo.config_path.read_text())
    data["stacks"]["broken"] = {
        "orchestrator": "local",
        "metadata_store": "gone",
        "artifact_store": "local",
    }
    repo.config_path.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError, match="Stack 'broken' .* uses metadata_store 'gone'"):
        Repository()
    data["stacks"].pop("broken")
    data["active_stack"] = "missing"
    repo.config_path.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError, match="active stack 'missing' .* does not exist"):
        Repository()


def test_unknown_keys_and_future_versions_are_refused(repo: Repository):
    repo.config_path.write_text("version: 1\nstackz: {}\n")
    with pytest.raises(ConfigError, match="stackz"):
        Repository()
    repo.config_path.write_text("version: 99\n")
    with pytest.raises(ConfigError, match="pip install -U runstack"):
        Repository()


def test_a_config_of_the_wrong_shape_names_every_problem_and_where(repo: Repository):
    repo.config_path.write_text(
        "active_stack: 3\n"
        "components:\n  orchestrator:\n    o: {settings: []}\n"
        "stacks:\n  s: {orchestrator: 1, metadata_store: local}\n"
    )
    with pytest.raises(ConfigError) as info:
        Repository()
    message = str(info.value)
    for problem in (
        "active_stack: expected a string, got 3",
        "components.orchestrator.o.flavor: field required",
        "components.orchestrator.o.settings: expected a mapping",
        "stacks.s.orchestrator: expected a string, got 1",
        "stacks.s.artifact_store: field required",
    ):
        assert problem in message


def test_hand_edited_settings_of_a_built_in_flavor_are_converted_or_refused(repo: Repository):
    """Settings of the saved types are taken as they are; others go through pydantic, so a
    hand-edited file is converted ("8" -> 8) or refused as the command line would be."""
    from runstack.stack._flavors import validate_settings

    data = yaml.safe_load(repo.config_path.read_text())
    data["components"]["orchestrator"]["par"] = {
        "flavor": "parallel",
        "settings": {"max_workers": "2", "mode": "thread"},
    }
    data["stacks"]["p"] = {
        "orchestrator": "par",
        "metadata_store": "local",
        "artifact_store": "local",
    }
    repo.config_path.write_text(yaml.safe_dump(data))
    orchestrator = Repository().get_stack("p").orchestrator
    assert type(orchestrator).__name__ == "ParallelOrchestrator"
    exact = validate_settings("orchestrator", "parallel", {"max_workers": 2, "mode": "thread"})
    converted = validate_settings(
        "orchestrator", "parallel", {"max_workers": "2", "mode": "thread"}
    )
    assert exact == converted
    for bad, message in (
        ({"max_workers": "many"}, "max_workers: Input should be a valid integer"),
        ({"workers": 2}, "workers: .*Its settings are: max_workers, mode"),
    ):
        with pytest.raises(ConfigError, match=message):
            validate_settings("orchestrator", "parallel", bad)


# -- secrets ---------------------------------------------------------------------------------


def test_secrets_are_masked_for_display_but_env_references_are_shown():
    shown = masked_settings(
        "metadata_store",
        "postgresql",
        {"host": "db", "password": "hunter2", "url": "postgresql://me:hunter2@db/x"},
    )
    assert shown == {"host": "db", "password": MASK, "url": f"postgresql://me:{MASK}@db/x"}
    assert "hunter2" not in repr(shown)
    refs = {"password": "${PGPASSWORD}", "url": "postgresql://me:${PW}@db/x"}
    assert masked_settings("metadata_store", "postgresql", refs) == refs
    # A flavor runstack cannot import still gets its secret-looking settings masked.
    assert masked_settings("artifact_store", "gone", {"api_token": "t"}) == {"api_token": MASK}


def test_an_unreachable_server_store_is_a_store_error_without_its_password(repo: Repository):
    repo.register_component(
        "metadata_store",
        "pg",
        "postgresql",
        {"host": "127.0.0.1", "port": "1", "username": "u", "password": "hunter2"},
    )
    repo.register_stack("pg", orchestrator="local", metadata_store="pg", artifact_store="local")
    with pytest.raises((StoreError, ConfigError)) as info:
        repo.get_stack("pg")
    assert "hunter2" not in str(info.value)
    assert "127.0.0.1:1" in str(info.value)


# -- flavors from entry points ---------------------------------------------------------------


def install_flavor_dist(site: Path, module_body: str, entry: str) -> None:
    """A real installed distribution: a module plus a .dist-info with entry_points.txt."""
    site.mkdir(parents=True, exist_ok=True)
    (site / "rs_test_flavors.py").write_text(textwrap.dedent(module_body))
    info = site / "rs_test_flavors-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: rs-test-flavors\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[runstack.flavors]\n{entry}\n")


MEMORY_FLAVOR = """
    from runstack.artifact_stores import ArtifactStore
    from runstack.stack import Flavor

    class MemoryFlavor(Flavor):
        '''Artifacts in fsspec's in-memory filesystem.'''
        prefix: str = "runstack"

        def build(self, base_dir):
            return ArtifactStore(f"memory://{self.prefix}")
"""


def test_a_flavor_from_an_entry_point_is_found_registered_and_runs_a_pipeline(
    repo: Repository, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    install_flavor_dist(
        tmp_path / "site", MEMORY_FLAVOR, "artifact_store.memory = rs_test_flavors:MemoryFlavor"
    )
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    assert available_flavors("artifact_store")["memory"] == "rs_test_flavors:MemoryFlavor"
    assert "memory" not in available_flavors("metadata_store")  # named per component type

    repo.register_component("artifact_store", "mem", "memory", {"prefix": "ep-test"})
    with pytest.raises(ConfigError, match="prefixx"):
        repo.register_component("artifact_store", "mem2", "memory", {"prefixx": "x"})
    repo.register_stack(
        "inmem", orchestrator="local", metadata_store="local", artifact_store="mem", activate=True
    )
    run = make_pipeline().run()
    out = run.get_step("total").output
    assert out.uri.startswith("memory://ep-test/")
    assert out.read() == 3


def test_a_broken_entry_point_flavor_is_a_clear_config_error(
    repo: Repository, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    install_flavor_dist(
        tmp_path / "site",
        "import not_installed_dependency\n",
        "orchestrator.fancy = rs_test_flavors:X",
    )
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    with pytest.raises(ConfigError, match="Cannot import orchestrator flavor 'fancy'"):
        repo.register_component("orchestrator", "f", "fancy")


# -- history across stacks -------------------------------------------------------------------


def test_pipelines_of_every_stack_or_of_one(repo: Repository):
    make_pipeline().run(run_name="on-default")
    add_sqlite_stack(repo, "team", activate=True)
    make_pipeline().with_config({"steps": {"numbers": {"parameters": {"n": 5}}}}).run(
        run_name="on-team"
    )
    # The same-store alias stack adds no duplicate pipelines.
    repo.register_stack(
        "alias", orchestrator="local", metadata_store="local", artifact_store="local"
    )
    fresh = Repository()
    assert fresh.history_stack_keys() == ["team", "default"]
    everywhere = fresh.get_pipelines()
    assert [p.name for p in everywhere] == ["summing", "summing"]
    assert {p.runs[0].name for p in everywhere} == {"on-default", "on-team"}
    assert [p.runs[0].name for p in fresh.get_pipelines(stack_key="default")] == ["on-default"]
    team = fresh.get_pipeline("summing", stack_key="team")
    assert team.runs[0].get_step("total").output.read() == 10
    assert fresh.get_pipeline(pipeline_name="summing").runs[0].name == "on-team"  # active first
    with pytest.raises(ConfigError, match="No stack named 'nope'"):
        fresh.get_pipelines(stack_key="nope")
    with pytest.raises(PipelineNotFoundError, match="Did you mean 'summing'"):
        fresh.get_pipeline("suming")


def test_views_of_a_pipeline_on_two_stacks_say_which_stack(repo: Repository):
    """Issue 11: 21. Two indistinguishable PipelineView(name='summing') used to come back."""
    make_pipeline().run(run_name="on-default")
    add_sqlite_stack(repo, "team", activate=True)
    make_pipeline().run(run_name="on-team")
    fresh = Repository()
    views = fresh.get_pipelines()
    assert sorted(p.stack_key for p in views) == ["default", "team"]
    assert sorted(map(repr, views)) == [
        "PipelineView(name='summing', stack='default')",
        "PipelineView(name='summing', stack='team')",
    ]
    for view in views:
        assert {r.stack_key for r in view.runs} == {view.stack_key}
        assert view.runs[0].name == f"on-{view.stack_key}"
    # The default is documented: the active stack first; the view says which one it took.
    chosen = fresh.get_pipeline("summing")
    assert chosen.stack_key == "team" and chosen.latest_run.stack_key == "team"
    other = fresh.get_pipeline("summing", stack_key="default")
    assert other.stack_key == "default" and other.get_run("on-default").stack_key == "default"
    fresh.set_active_stack("default")
    assert Repository().get_pipeline("summing").stack_key == "default"


def test_path_settings_expand_environment_variables(
    repo: Repository, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("RS_DATA", str(tmp_path / "shared"))
    repo.register_component("metadata_store", "env-db", "sqlite", {"path": "${RS_DATA}/m.db"})
    repo.register_component("artifact_store", "env-files", "local", {"path": "${RS_DATA}/art"})
    repo.register_stack(
        "env", orchestrator="local", metadata_store="env-db", artifact_store="env-files"
    )
    assert Repository().get_component("metadata_store", "env-db").settings["path"] == (
        "${RS_DATA}/m.db"  # stored as written, so the file stays portable
    )
    stack = repo.get_stack("env")
    assert stack.metadata_store.url.database == str(tmp_path / "shared" / "m.db")
    assert stack.artifact_store.path == str(tmp_path / "shared" / "art")
    monkeypatch.delenv("RS_DATA")
    with pytest.raises(ConfigError, match="environment variable RS_DATA, which is not set"):
        repo.get_stack("env")
