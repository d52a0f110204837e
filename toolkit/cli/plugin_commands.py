"""What is installed and how to change it: ``nlp-tool tasks``, ``plugins`` (``disable``, ``enable``),
``install`` and ``uninstall``."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import click

from toolkit.cli.errors import Failure, ReportingCommand
from toolkit.cli.group import registry_of
from toolkit.cli.render import table
from toolkit.engine import Option, can_train
from toolkit.languages import covered
from toolkit.plugins import PluginInfo, normalize, set_disabled


def _describe(option: Option) -> dict[str, Any]:
    """An option as ``nlp-tool tasks --json`` lists it."""
    described = {"type": option.type.__name__, "default": option.default, "help": option.help}
    if option.range_text():
        described["range"] = option.range_text()
    if option.deprecated:
        described["deprecated"] = list(option.deprecated)
    return described


@click.command(name="tasks")
@click.option("--json", "as_json", is_flag=True, help="Output JSON.")
@click.pass_context
def tasks_command(ctx: click.Context, as_json: bool) -> None:
    """List the tasks and their engines (the first engine of a task is its default)."""
    registry = registry_of(ctx)
    if as_json:
        rows = [
            {
                "task": task,
                "engine": name,
                "default": i == 0,
                "description": entry.description,
                "plugin": entry.plugin,
                "inputs": entry.engine_class.inputs,
                "default_model": entry.engine_class.default_model,
                "languages": covered(entry.engine_class),
                "options": {key: _describe(o) for key, o in entry.engine_class.options.items()},
                "record_fields": list(entry.engine_class.record_fields),
                "trainable": can_train(entry.engine_class),
                "train_options": {key: _describe(o) for key, o in entry.engine_class.train_options.items()},
            }
            for task, engines in registry.tasks().items()
            for i, (name, entry) in enumerate(engines.items())
        ]
        click.echo(json.dumps(rows, indent=2, ensure_ascii=False))
        return
    rows = [
        (task, name + (" *" if i == 0 else ""), entry.plugin, entry.description)
        for task, engines in registry.tasks().items()
        for i, (name, entry) in enumerate(engines.items())
    ]
    table(["TASK", "ENGINE", "PLUGIN", "DESCRIPTION"], rows)
    click.echo("\n* default engine of the task")


@click.group(name="plugins", invoke_without_command=True)
@click.option("--json", "as_json", is_flag=True, help="Output JSON.")
@click.pass_context
def plugins_command(ctx: click.Context, as_json: bool) -> None:
    """List plugins: name, version, source, tasks and status."""
    if ctx.invoked_subcommand is not None:
        return
    registry = registry_of(ctx)
    infos = list(registry.plugins.values())
    if as_json:
        click.echo(json.dumps([p.as_dict() for p in infos], indent=2, ensure_ascii=False))
        return
    rows = [
        (
            p.name,
            p.version or "-",
            "built-in" if p.source == "built-in" else f"package {p.package}",
            ", ".join(p.tasks) or "-",
            p.status + (f": {p.error}" if p.error else ""),
        )
        for p in infos
    ]
    table(["NAME", "VERSION", "SOURCE", "TASKS", "STATUS"], rows)


def _find_plugin(ctx: click.Context, name: str) -> PluginInfo:
    registry = registry_of(ctx)
    for info in registry.plugins.values():
        if normalize(name) in {normalize(info.name), normalize(info.package or info.name)}:
            if info.source == "built-in":
                raise click.UsageError(f"{info.name!r} is a built-in plugin and cannot be disabled")
            return info
    raise click.UsageError(f"no plugin named {name!r}; `nlp-tool plugins` lists them")


def _switch_command(name: str, disabled: bool, doc: str) -> click.Command:
    """``plugins disable`` / ``plugins enable``: the same command but for the state it saves."""

    @plugins_command.command(name=name, cls=ReportingCommand, help=doc)
    @click.argument("name")
    @click.pass_context
    def switch(ctx: click.Context, name: str) -> None:
        info = _find_plugin(ctx, name)
        set_disabled(info.name, disabled)
        click.echo(f"{'disabled' if disabled else 'enabled'} plugin {info.name!r}")

    return switch


_switch_command("disable", True, "Stop loading plugin NAME (kept installed; saved in the user config).")
_switch_command("enable", False, "Load plugin NAME again after `nlp-tool plugins disable`.")


def _pip(args: list[str]) -> None:
    # The tool's own interpreter, so plugins land where nlp-tool can see them.
    code = subprocess.run([sys.executable, "-m", "pip", *args]).returncode
    if code != 0:
        raise Failure(f"pip {args[0]} failed with exit code {code}")


@click.command(name="install")
@click.argument("packages", nargs=-1)
@click.option("-U", "--upgrade", is_flag=True, help="Upgrade packages to the latest version.")
@click.option("-e", "--editable", help="Install a project in editable mode from this path.")
@click.option("--force-reinstall", is_flag=True, help="Reinstall even if already installed.")
@click.option("--no-cache-dir", is_flag=True, help="Do not use pip's cache.")
def install_command(packages: tuple[str, ...], upgrade: bool, editable: str | None, force_reinstall: bool, no_cache_dir: bool) -> None:
    """Install packages (plugins) with pip into nlp-tool's own environment."""
    if not packages and not editable:
        raise click.UsageError("name at least one package, or -e PATH")
    args = ["install"]
    args += ["--upgrade"] if upgrade else []
    args += ["--force-reinstall"] if force_reinstall else []
    args += ["--no-cache-dir"] if no_cache_dir else []
    args += ["--editable", editable] if editable else []
    _pip(args + list(packages))


@click.command(name="uninstall")
@click.argument("packages", nargs=-1, required=True)
@click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation.")
def uninstall_command(packages: tuple[str, ...], yes: bool) -> None:
    """Uninstall packages (plugins) with pip from nlp-tool's own environment."""
    _pip(["uninstall", *(["--yes"] if yes else []), *packages])

