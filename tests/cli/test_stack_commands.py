"""``runstack init|version|stack ...|<component-type> ...`` through click's runner."""

from __future__ import annotations

import json

import pytest

from runstack import __version__
from runstack.repository import Repository


def test_init_creates_a_repository_once(cli, isolated):
    first = cli("init")
    assert "Created a runstack repository" in first.stdout
    assert (isolated / ".runstack" / "config.yaml").is_file()
    again = cli("init")
    assert "already a runstack repository" in again.stdout


def test_init_where_a_file_is_in_the_way_is_a_clear_error(cli, isolated):
    (isolated / "plain").write_text("")
    result = cli("init", str(isolated / "plain" / "sub"), code=1)
    assert result.stderr.startswith("Error: Not a directory") and "Traceback" not in result.output


def test_version_command_and_flag(cli):
    assert cli("version").stdout.strip() == f"runstack {__version__}"
    assert __version__ in cli("--version").stdout


def test_stack_lifecycle(cli, repo):
    cli("metadata-store", "register", "team-db", "--flavor", "sqlite", "path=team.db")
    cli("artifact-store", "register", "team-files", "-f", "local", "path=team-art")
    out = cli(
        "stack", "register", "team", "-o", "local", "-m", "team-db", "-a", "team-files", "--set"
    )
    assert "made it active" in out.stdout
    assert cli("stack", "get").stdout.strip() == "team"

    listed = json.loads(cli("stack", "list", "--json").stdout)
    assert {s["name"]: s["active"] for s in listed} == {"default": False, "team": True}
    table = cli("stack", "list").stdout
    assert "team-db" in table and "team-files" in table

    described = json.loads(cli("stack", "describe", "--json").stdout)
    assert described["name"] == "team"
    assert described["components"]["metadata_store"] == {
        "name": "team-db",
        "flavor": "sqlite",
        "settings": {"path": "team.db"},
    }
    assert "team-art" in cli("stack", "describe", "team").stdout

    cli("stack", "set", "default")
    cli("stack", "delete", "team")
    cli("metadata-store", "delete", "team-db")
    assert Repository().stacks.keys() == {"default"}
    assert "team-db" not in Repository().list_components("metadata_store")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("stack", "set", "nope"), "No stack named 'nope'"),
        (("stack", "describe", "nope"), "No stack named 'nope'"),
        (("stack", "delete", "default"), "is active; activate another one first"),
        (
            ("stack", "register", "s", "-o", "local", "-m", "nope", "-a", "local"),
            "No metadata_store named 'nope'",
        ),
        (("metadata-store", "register", "x", "-f", "oracle"), "Unknown metadata_store flavor"),
        (("metadata-store", "register", "x", "-f", "sqlite", "paht=a"), "Its settings are: path"),
        (("metadata-store", "register", "x", "-f", "sqlite", "path"), "key=value"),
        (("metadata-store", "register", "x", "-f", "postgresql", "port=abc"), "port"),
        (("metadata-store", "delete", "local"), "used by stack(s)"),
        (("artifact-store", "describe", "nope"), "No artifact_store named 'nope'"),
        (("orchestrator", "register", "a b", "-f", "local"), "Invalid orchestrator name"),
    ],
)
def test_mistakes_get_a_message_and_exit_1_without_traceback(cli, repo, args, message):
    result = cli(*args, code=1)
    assert message in result.stderr
    assert result.stderr.startswith("Error: ")
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_a_command_without_repository_uses_the_user_default(cli, isolated):
    assert cli("stack", "get").stdout.strip() == "default"
    assert (isolated / "xdg-data" / "runstack" / "config.yaml").is_file()
    assert not (isolated / ".runstack").exists()


def test_repository_option_points_at_another_folder(cli, isolated):
    Repository.init(isolated / "elsewhere")
    cli("-R", str(isolated / "elsewhere"), "orchestrator", "register", "other", "-f", "local")
    assert "other" in Repository(isolated / "elsewhere").list_components("orchestrator")
    result = cli("-R", str(isolated / "missing"), "stack", "list", code=1)
    assert "runstack init" in result.stderr


def test_passwords_are_stored_but_never_printed(cli, repo):
    result = cli(
        "metadata-store",
        "register",
        "pg",
        "-f",
        "postgresql",
        "host=db.internal",
        "username=ml",
        "password=hunter2",
    )
    assert "prefer an environment variable" in result.stderr
    cli(
        "metadata-store",
        "register",
        "pg-url",
        "-f",
        "postgresql",
        "url=postgresql://ml:s3cret@db/x",
    )
    cli("metadata-store", "register", "pg-env", "-f", "postgresql", "password=${PGPASSWORD}")
    cli("stack", "register", "pg", "-o", "local", "-m", "pg", "-a", "local")
    assert Repository().get_component("metadata_store", "pg").settings["password"] == "hunter2"
    outputs = [
        cli("metadata-store", "list").output,
        cli("metadata-store", "list", "--json").output,
        cli("metadata-store", "describe", "pg").output,
        cli("metadata-store", "describe", "pg-url", "--json").output,
        cli("stack", "describe", "pg").output,
        cli("stack", "describe", "pg", "--json").output,
    ]
    for text in outputs:
        assert "hunter2" not in text and "s3cret" not in text
    assert "********" in outputs[2]
    env = json.loads(cli("metadata-store", "describe", "pg-env", "--json").stdout)
    assert env["settings"]["password"] == "${PGPASSWORD}"


def test_component_list_shows_which_stacks_use_each(cli, repo):
    cli("orchestrator", "register", "spare", "-f", "local")
    rows = json.loads(cli("orchestrator", "list", "--json").stdout)
    assert {r["name"]: r["stacks"] for r in rows} == {"local": ["default"], "spare": []}


def test_flavors_are_listed_with_their_settings(cli, repo):
    rows = json.loads(cli("metadata-store", "flavors", "--json").stdout)
    by_name = {r["flavor"]: r for r in rows}
    assert set(by_name) >= {"sqlite", "postgresql", "mysql"}
    assert "password" in by_name["postgresql"]["settings"]
    assert "path" in cli("metadata-store", "flavors").stdout


def test_help_texts_read_well(cli):
    top = cli("--help").stdout
    for group in ("stack", "metadata-store", "artifact-store", "orchestrator", "pipeline", "run"):
        assert group in top
    assert "..." not in top.split("Commands:")[1]  # no cut-off one-line summaries
    for args in (
        ("stack", "--help"),
        ("stack", "register", "--help"),
        ("metadata-store", "register", "--help"),
        ("run", "list", "--help"),
        ("pipeline", "run", "--help"),
        ("artifact", "read", "--help"),
    ):
        text = cli(*args).stdout
        assert text.startswith("Usage: runstack ")
        assert "\n  \n" not in text
    assert "${PGPASSWORD}" in cli("metadata-store", "register", "--help").stdout


def test_passwords_holding_at_signs_are_masked_whole_everywhere(cli, repo):
    """A password with '@', ':' or '/' is hidden whole: masking parses the URL (issue 11: 15)."""
    secret = "ss@ss-Sup3r-S3cret:x/y"
    cli("metadata-store", "register", "pg", "-f", "postgresql",
        f"url=postgresql://ml:{secret}@127.0.0.1:1/x")  # fmt: skip
    cli("metadata-store", "register", "pg2", "-f", "postgresql",
        "host=127.0.0.1", "port=1", "username=ml", f"password={secret}")  # fmt: skip
    cli("stack", "register", "pg", "-o", "local", "-m", "pg", "-a", "local")
    cli("stack", "register", "pg2", "-o", "local", "-m", "pg2", "-a", "local")
    outputs = [
        cli("metadata-store", "list").output,
        cli("metadata-store", "list", "--json").output,
        cli("metadata-store", "describe", "pg").output,
        cli("metadata-store", "describe", "pg", "--json").output,
        cli("stack", "describe", "pg").output,
        cli("stack", "describe", "pg", "--json").output,
        cli("stack", "describe", "pg2", "--json").output,
        # Connection errors (nothing listens on port 1) name the server, not the password.
        cli("run", "list", "--stack", "pg", code=None).output,
        cli("run", "list", "--stack", "pg2", code=None).output,
    ]
    for text in outputs:
        for part in ("Sup3r", "S3cret", "ss@ss", "x/y"):
            assert part not in text, text
    described = json.loads(outputs[3])["settings"]["url"]
    assert described == "postgresql://ml:********@127.0.0.1:1/x"
    assert "127.0.0.1" in outputs[8]  # the unparseable url of pg says only that
