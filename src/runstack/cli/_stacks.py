"""``runstack stack ...`` and ``runstack <component-type> ...``: the repository's config."""

from __future__ import annotations

from typing import Any

import click

from runstack.cli._common import (
    echo_json,
    get_repo,
    json_option,
    parse_settings,
    print_fields,
    print_table,
    warn,
)

# CLI name -> config name, in the order a stack lists them.
COMPONENT_COMMANDS = {
    "orchestrator": "orchestrator",
    "metadata-store": "metadata_store",
    "artifact-store": "artifact_store",
}


def _masked(component_type: str, flavor: str, settings: dict[str, Any]) -> dict[str, Any]:
    from runstack.stack._flavors import masked_settings

    return masked_settings(component_type, flavor, settings)


def _settings_text(settings: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in settings.items())


# -- stacks ----------------------------------------------------------------------------------


@click.group()
def stack() -> None:
    """Register, list, inspect and switch stacks.

    A stack is one orchestrator, one metadata store and one artifact store, each a registered
    component. Runs use the active stack.
    """


@stack.command("register", short_help="Register a stack from registered components.")
@click.argument("name")
@click.option(
    "--orchestrator", "-o", required=True, metavar="NAME", help="A registered orchestrator."
)
@click.option(
    "--metadata-store", "-m", required=True, metavar="NAME", help="A registered metadata store."
)
@click.option(
    "--artifact-store", "-a", required=True, metavar="NAME", help="A registered artifact store."
)
@click.option("--set", "activate", is_flag=True, help="Also make it the active stack.")
def stack_register(
    name: str, orchestrator: str, metadata_store: str, artifact_store: str, activate: bool
) -> None:
    """Register a stack NAME from registered components.

    \b
    Example:
      runstack metadata-store register team-db --flavor postgresql host=db.internal
      runstack stack register team -o local -m team-db -a local --set
    """
    repo = get_repo()
    repo.register_stack(
        name,
        orchestrator=orchestrator,
        metadata_store=metadata_store,
        artifact_store=artifact_store,
        activate=activate,
    )
    click.echo(f"Registered stack {name!r}" + (" and made it active." if activate else "."))


@stack.command("list", short_help="List the stacks; the active one is marked.")
@json_option
def stack_list(as_json: bool) -> None:
    """List the stacks; the active one is marked."""
    repo = get_repo()
    active = repo.active_stack_key
    rows = [
        {
            "name": key,
            "active": key == active,
            "orchestrator": sc.orchestrator,
            "metadata_store": sc.metadata_store,
            "artifact_store": sc.artifact_store,
        }
        for key, sc in repo.stacks.items()
    ]
    if as_json:
        echo_json(rows)
        return
    print_table(
        ["", "stack", "orchestrator", "metadata store", "artifact store"],
        [
            [
                "*" if r["active"] else "",
                r["name"],
                r["orchestrator"],
                r["metadata_store"],
                r["artifact_store"],
            ]
            for r in rows
        ],
        title="Stacks (* active)",
        styles={"": "bold green"},
    )


@stack.command("describe", short_help="Show a stack's components and settings.")
@click.argument("name", required=False)
@json_option
def stack_describe(name: str | None, as_json: bool) -> None:
    """Show a stack's components with their flavors and settings (default: the active stack).

    Passwords and other secrets are masked.
    """
    repo = get_repo()
    key = name or repo.active_stack_key
    sc = repo.get_stack_config(key)
    components = {}
    for ctype in COMPONENT_COMMANDS.values():
        cname = getattr(sc, ctype)
        comp = repo.get_component(ctype, cname)
        components[ctype] = {
            "name": cname,
            "flavor": comp.flavor,
            "settings": _masked(ctype, comp.flavor, comp.settings),
        }
    data = {"name": key, "active": key == repo.active_stack_key, "components": components}
    if as_json:
        echo_json(data)
        return
    title = f"Stack {key}" + (" (active)" if data["active"] else "")
    print_table(
        ["component", "name", "flavor", "settings"],
        [
            [ctype.replace("_", " "), c["name"], c["flavor"], _settings_text(c["settings"])]
            for ctype, c in components.items()
        ],
        title=title,
    )


@stack.command("set", short_help="Make a stack the active one.")
@click.argument("name")
def stack_set(name: str) -> None:
    """Make stack NAME the active stack."""
    get_repo().set_active_stack(name)
    click.echo(f"Active stack: {name}")


@stack.command("get", short_help="Print the active stack's name.")
def stack_get() -> None:
    """Print the name of the active stack."""
    click.echo(get_repo().active_stack_key)


@stack.command("delete", short_help="Delete a stack (not the active one).")
@click.argument("name")
def stack_delete(name: str) -> None:
    """Delete stack NAME (not the active one).

    Its components and the runs recorded with it stay.
    """
    get_repo().delete_stack(name)
    click.echo(f"Deleted stack {name!r}.")


# -- components ------------------------------------------------------------------------------


def _component_group(cli_name: str, ctype: str) -> click.Group:
    label = cli_name.replace("-", " ")

    @click.group(
        cli_name,
        short_help=f"Manage {label}s, one part of a stack.",
        help=f"Register, list, inspect and delete {label}s (a part of a stack).\n\n"
        f"See the flavors and their settings with `runstack {cli_name} flavors`.",
    )
    def group() -> None:
        pass

    @group.command(
        "register",
        help=f"Register {label} NAME of a flavor with key=value SETTINGS.\n\n"
        "Settings are checked against the flavor before anything is saved. Write secrets as "
        "environment variables, e.g. password='${PGPASSWORD}', so the config file holds no "
        "secret.\n\n" + _register_example(cli_name),
    )
    @click.argument("name")
    @click.option(
        "--flavor",
        "-f",
        required=True,
        metavar="FLAVOR",
        help=f"The kind of {label}; see `runstack {cli_name} flavors`.",
    )
    @click.argument("settings", nargs=-1, metavar="[KEY=VALUE]...")
    def register(name: str, flavor: str, settings: tuple[str, ...]) -> None:
        repo = get_repo()
        parsed = parse_settings(settings)
        repo.register_component(ctype, name, flavor, parsed)
        from runstack.stack._flavors import MASK

        masked = _masked(ctype, flavor, parsed)
        literal = [k for k, v in masked.items() if v == MASK or MASK in str(v)]
        if literal:
            warn(
                f"Setting(s) {literal} hold a secret and are stored as written in "
                f"{repo.config_path}; prefer an environment variable, e.g. "
                f"{literal[0]}='${{MY_SECRET}}'."
            )
        click.echo(f"Registered {label} {name!r} ({flavor}).")

    @group.command("list", help=f"List the registered {label}s and the stacks using them.")
    @json_option
    def list_(as_json: bool) -> None:
        repo = get_repo()
        rows: list[dict[str, Any]] = []
        for name, comp in repo.list_components(ctype).items():
            users = [k for k, s in repo.stacks.items() if getattr(s, ctype) == name]
            rows.append(
                {
                    "name": name,
                    "flavor": comp.flavor,
                    "settings": _masked(ctype, comp.flavor, comp.settings),
                    "stacks": users,
                }
            )
        if as_json:
            echo_json(rows)
            return
        print_table(
            ["name", "flavor", "settings", "used by stacks"],
            [
                [r["name"], r["flavor"], _settings_text(r["settings"]), ", ".join(r["stacks"])]
                for r in rows
            ],
            title=f"{label.capitalize()}s",
            empty=f"No {label}s. Register one with `runstack {cli_name} register NAME -f FLAVOR`.",
        )

    @group.command("describe", help=f"Show {label} NAME: its flavor and (masked) settings.")
    @click.argument("name")
    @json_option
    def describe(name: str, as_json: bool) -> None:
        repo = get_repo()
        comp = repo.get_component(ctype, name)
        settings = _masked(ctype, comp.flavor, comp.settings)
        users = [k for k, s in repo.stacks.items() if getattr(s, ctype) == name]
        if as_json:
            echo_json({"name": name, "flavor": comp.flavor, "settings": settings, "stacks": users})
            return
        print_fields(
            [
                ("flavor", comp.flavor),
                *((f"  {k}", v) for k, v in settings.items()),
                ("used by stacks", ", ".join(users) or "none"),
            ],
            title=f"{label.capitalize()} {name}",
        )

    @group.command("delete", help=f"Delete {label} NAME (no stack may use it).")
    @click.argument("name")
    def delete(name: str) -> None:
        get_repo().delete_component(ctype, name)
        click.echo(f"Deleted {label} {name!r}.")

    @group.command("flavors", help=f"List the {label} flavors and their settings.")
    @json_option
    def flavors(as_json: bool) -> None:
        from runstack.exceptions import ConfigError
        from runstack.stack._flavors import available_flavors, flavor_class, flavor_fields

        rows: list[dict[str, Any]] = []
        for flavor, path in available_flavors(ctype).items():
            try:
                klass = flavor_class(ctype, flavor)
                doc = (klass.__doc__ or "").strip().split("\n\n")[0] if klass.__doc__ else ""
                doc = " ".join(doc.split())
                fields = flavor_fields(klass)
                missing = klass.missing_extra()
            except ConfigError as e:
                doc, fields, missing = f"(cannot load: {e})", {}, None
            rows.append(
                {
                    "flavor": flavor,
                    "source": path,
                    "description": doc,
                    "settings": fields,
                    "installed": missing is None,
                    "install": missing,
                }
            )
        if as_json:
            echo_json(rows)
            return
        print_table(
            ["flavor", "settings", "description"],
            [
                [
                    r["flavor"],
                    "\n".join(f"{k}: {v}" for k, v in r["settings"].items()),
                    r["description"] + (f"\nNot installed: {r['install']}" if r["install"] else ""),
                ]
                for r in rows
            ],
            title=f"{label.capitalize()} flavors",
        )

    return group


def _register_example(cli_name: str) -> str:
    examples = {
        "orchestrator": "runstack orchestrator register laptop --flavor local",
        "metadata-store": "runstack metadata-store register team-db --flavor postgresql \\\n"
        "      host=db.internal username=ml password='${PGPASSWORD}'",
        "artifact-store": "runstack artifact-store register s3 --flavor fsspec "
        "url=s3://bucket/runstack",
    }
    return f"\b\nExample:\n  {examples[cli_name]}"


def component_group(cli_name: str) -> click.Group:
    """The group of commands for one component type, e.g. ``metadata-store``."""
    return _component_group(cli_name, COMPONENT_COMMANDS[cli_name])
