"""The plugin registry: a pluggy PluginManager and what the plugins registered.

Built-in plugins (``BUILTIN_PLUGINS``) and third-party ones (entry-point
group ``nlp_tool``) go through the same hooks. Each third-party plugin is
imported and each hook is called per plugin inside its own try block, so
one broken plugin is reported as failed and the rest keep working.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import json
import os
import threading
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

import pluggy

from toolkit import __version__, hookspecs
from toolkit.contracts import TaskContract
# RegistryError and UnknownTaskError lived here before toolkit.errors.
from toolkit.errors import ModelMismatchError, RegistryError, UnknownTaskError
from toolkit.files import AtomicFile
from toolkit.registration import check_engine_class, check_task_contract, hold_to_contract

PROJECT = "nlp_tool"
ENTRY_POINT_GROUP = "nlp_tool"
BUILTIN_PLUGINS = (
    "toolkit_plugins.summarization", "toolkit_plugins.classification", "toolkit_plugins.qa",
    "toolkit_plugins.translation", "toolkit_plugins.generation", "toolkit_plugins.chat",
)
ENV_PLUGINS = "NLP_TOOL_PLUGINS"
ENV_HOME = "NLP_TOOL_HOME"


@dataclass
class PluginInfo:
    """One plugin as ``nlp-tool plugins`` lists it."""

    name: str
    version: str | None
    source: str  # "built-in" | "package"
    package: str | None = None
    status: str = "loaded"  # "loaded" | "failed" | "disabled"
    error: str | None = None
    tasks: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {
            "name": self.name,
            "version": self.version,
            "source": self.source,
            "package": self.package,
            "tasks": list(self.tasks),
            "status": self.status,
            "error": self.error,
        }


@dataclass(frozen=True)
class EngineEntry:
    task: str
    name: str
    engine_class: type
    description: str
    plugin: str


def normalize(name: str) -> str:
    """Package and plugin names compare like pip compares them: case and -_. insensitive."""
    return name.lower().replace("_", "-").replace(".", "-")


def config_dir() -> Path:
    """Where the user configuration lives: $NLP_TOOL_HOME, else the platform's user config dir."""
    home = os.environ.get(ENV_HOME)
    if home:
        return Path(home)
    import click  # click knows each platform's user config directory

    return Path(click.get_app_dir("nlp-tool"))


def config_path() -> Path:
    return config_dir() / "config.json"


# The configuration holds only the disabled plugins: removing it loses nothing else.
_CONFIG_FIX = "repair or delete it (it lists the plugins disabled with `nlp-tool plugins disable`)"


def read_config() -> dict:
    path = config_path()
    try:
        with open(path, encoding="utf-8") as f:
            config = json.load(f)
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as error:
        raise RegistryError(f"cannot read the configuration file {path}: {error}; {_CONFIG_FIX}") from error
    if not isinstance(config, dict):
        raise RegistryError(f"the configuration file {path} does not hold a JSON object; {_CONFIG_FIX}")
    disabled = config.get("disabled", [])
    if not isinstance(disabled, list) or not all(isinstance(name, str) for name in disabled):
        raise RegistryError(f"the configuration file {path}: \"disabled\" must be a list of plugin names, not"
                            f" {json.dumps(disabled)[:60]}; {_CONFIG_FIX}")
    return config


def write_config(config: dict) -> None:
    path = config_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    with AtomicFile(path) as f:
        f.write((json.dumps(config, indent=2, sort_keys=True) + "\n").encode("utf-8"))


def disabled_plugins() -> set[str]:
    return {normalize(n) for n in read_config().get("disabled", [])}


def set_disabled(name: str, disabled: bool) -> None:
    """Add ``name`` to, or remove it from, the persisted list of disabled plugins."""
    config = read_config()
    names = [n for n in config.get("disabled", []) if normalize(n) != normalize(name)]
    if disabled:
        names.append(name)
    config["disabled"] = sorted(names)
    write_config(config)


def error_text(error: BaseException) -> str:
    """``error`` in one line, for messages: its type and the first line of its text."""
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0]}" if text else type(error).__name__


class Registry:
    """The plugin manager, the plugins it knows of and the engines they registered."""

    def __init__(self, on_failure: Callable[[PluginInfo], None] | None = None) -> None:
        self.pm = pluggy.PluginManager(PROJECT)
        self.pm.add_hookspecs(hookspecs)
        self.plugins: dict[str, PluginInfo] = {}
        self.engines: dict[tuple[str, str], EngineEntry] = {}
        #: task -> (its contract, the plugin that declared it)
        self.contracts: dict[str, tuple[TaskContract, str]] = {}
        #: tasks whose verb is a command of the plugin that declares them (see add_commands)
        self.own_verbs: set[str] = set()
        self._on_failure = on_failure

    # -- loading -----------------------------------------------------------

    def add_plugin(self, plugin: Any, info: PluginInfo) -> None:
        """Register ``plugin`` (a module or object with hook implementations) and collect its engines."""
        if info.name in self.plugins:
            raise RegistryError(f"two plugins are named {info.name!r}")
        self.plugins[info.name] = info
        try:
            self.pm.register(plugin, name=info.name)
            # Unknown hook names are caught here, per plugin, instead of by a
            # global check_pending() that would stop every plugin at once.
            self.pm.check_pending()
            self._collect(plugin, info)
        except Exception as error:
            self._fail(plugin, info, error)

    def add_entry_point(self, entry_point: importlib.metadata.EntryPoint, blocked: str | None = None) -> None:
        """Import and register a third-party plugin; ``blocked`` is why it is disabled, if it is."""
        dist = getattr(entry_point, "dist", None)
        info = PluginInfo(
            name=entry_point.name,
            version=dist.version if dist is not None else None,
            source="package",
            package=dist.metadata["Name"] if dist is not None else None,
        )
        if info.name in self.plugins:
            taken = info.name
            info.name = f"{info.package}:{taken}"
            self.plugins[info.name] = info
            self._fail(None, info, RegistryError(f"plugin name {taken!r} is already taken"))
            return
        if blocked:
            info.status, info.error = "disabled", blocked
            self.plugins[info.name] = info
            return
        try:
            plugin = entry_point.load()
        except (Exception, SystemExit) as error:
            # A sys.exit() at import time is a plugin bug like any other.
            self.plugins[info.name] = info
            self._fail(None, info, error)
            return
        self.add_plugin(plugin, info)

    def _collect(self, plugin: Any, info: PluginInfo) -> None:
        """The task contracts, then the engines, that ``plugin`` registers; nothing of a hook that failed."""
        declared: dict[str, TaskContract] = {}

        def register_task(contract: TaskContract) -> None:
            check_task_contract(contract)
            owner = self.contracts.get(contract.task, (None, None))[1] or (
                info.name if contract.task in declared else None)
            if owner is not None:
                raise RegistryError(f"task {contract.task!r} is declared by both plugin {owner!r} and plugin"
                                    f" {info.name!r}")
            declared[contract.task] = contract

        claimed: list[EngineEntry] = []

        def register(task: str, engine: str, engine_class: type, description: str = "") -> None:
            siblings = [e.engine_class for e in (*self.engines.values(), *claimed) if e.task == task]
            contract = declared.get(task) or self.contracts.get(task, (None, None))[0]
            if contract is not None:
                hold_to_contract(task, engine, engine_class, contract)
            check_engine_class(task, engine, engine_class, siblings)
            owner = self.engines.get((task, engine)) or next(
                (e for e in claimed if (e.task, e.name) == (task, engine)), None
            )
            if owner is not None:
                raise RegistryError(
                    f"engine {task}:{engine} is registered by both plugin {owner.plugin!r} and plugin {info.name!r}"
                )
            claimed.append(EngineEntry(task, engine, engine_class, description or engine_class.description, info.name))

        others = [p for p in self.pm.get_plugins() if p is not plugin]
        self.pm.subset_hook_caller("register_tasks", remove_plugins=others)(register=register_task)
        self.pm.subset_hook_caller("register_engines", remove_plugins=others)(register=register)
        # Only hooks that finished contribute: a half-run one adds nothing.
        for task, contract in declared.items():
            self.contracts[task] = (contract, info.name)
        for entry in claimed:
            self.engines[(entry.task, entry.name)] = entry
            info.tasks.append(f"{entry.task}:{entry.name}")

    def _fail(self, plugin: Any, info: PluginInfo, error: BaseException) -> None:
        info.status, info.error = "failed", error_text(error)
        info.tasks.clear()
        if plugin is not None and self.pm.is_registered(plugin):
            self.pm.unregister(plugin)
        if self._on_failure is not None:
            self._on_failure(info)

    def add_commands(self, cli: Any) -> None:
        """Let each loaded plugin add its commands to ``cli``; a plugin whose hook raises is failed.

        A failed plugin's engines are removed as well, so call this before
        building anything from :meth:`tasks` (the task verbs): what is built
        after it offers only engines whose plugins loaded. A command may not
        take a task's name, whether or not the task's verb is in ``cli`` yet,
        unless the plugin declares that task (``register_tasks``): its command
        is then the task's verb (an interactive one, say), in place of the one
        built from the engines, and the task is listed in :attr:`own_verbs`.
        """
        for name, info in list(self.plugins.items()):
            plugin = self.pm.get_plugin(name)
            if plugin is None or info.status != "loaded":
                continue
            caller = self.pm.subset_hook_caller(
                "register_commands", remove_plugins=[p for p in self.pm.get_plugins() if p is not plugin]
            )
            before = dict(cli.commands)
            declared = {task for task, (_, owner) in self.contracts.items() if owner == name}
            try:
                caller(cli=cli)
                added = {n for n in {*before, *self.tasks(), *declared} if cli.commands.get(n) is not before.get(n)}
                replaced = sorted(added - (declared - set(before)))
                if replaced:
                    raise RegistryError(f"command(s) {', '.join(replaced)} already exist")
                self.own_verbs |= added & declared
            except Exception as error:
                cli.commands.clear()
                cli.commands.update(before)
                for key in [k for k, e in self.engines.items() if e.plugin == name]:
                    del self.engines[key]
                for task in [t for t, (_, owner) in self.contracts.items() if owner == name]:
                    del self.contracts[task]
                self._fail(plugin, info, error)

    # -- queries -----------------------------------------------------------

    def tasks(self) -> dict[str, dict[str, EngineEntry]]:
        """Task name -> engine name -> entry, in registration order (built-ins first)."""
        out: dict[str, dict[str, EngineEntry]] = {}
        for (task, name), entry in self.engines.items():
            out.setdefault(task, {})[name] = entry
        return out

    def engine(self, task: str, engine: str | None = None, model: str | None = None) -> EngineEntry:
        """The entry for ``task`` and ``engine``. Without an engine: when ``model`` names another tool's checkpoint
        (a folder with config.json, or a model id in the local Hugging Face cache), the task's first engine that
        runs its ``model_type`` (ModelMismatchError when none does); otherwise the task's first registered one."""
        engines = self.tasks().get(task)
        if not engines:
            known = ", ".join(sorted(self.tasks())) or "none"
            raise UnknownTaskError(f"unknown task {task!r} (available: {known}){self.failures_said()}")
        if engine is None and model is not None:
            entry = self.checkpoint_engine(task, model)
            if entry is not None:
                return entry
        if engine is None:
            return next(iter(engines.values()))
        if engine not in engines:
            raise UnknownTaskError(
                f"task {task!r} has no engine {engine!r} (available: {', '.join(engines)}){self.failures_said()}"
            )
        return engines[engine]

    def checkpoint_engine(self, task: str, model: str) -> EngineEntry | None:
        """The engine of ``task`` that runs the checkpoint ``model`` names; None when it names none."""
        from toolkit.nn.pretrained import checkpoint_folder, checkpoint_type

        engines = self.tasks().get(task, {})
        folder = checkpoint_folder(model)
        kind = checkpoint_type(folder) if folder is not None else None
        if kind is None:
            return None  # not a checkpoint, or one whose config the engine's loader will report
        for entry in engines.values():
            if kind in entry.engine_class.checkpoint_types:
                return entry
        runs = sorted({t for entry in engines.values() for t in entry.engine_class.checkpoint_types})
        raise ModelMismatchError(f"{model}: a {kind!r} checkpoint; {task} runs "
                                 + (f"{', '.join(runs)} checkpoints" if runs else "no checkpoints of other tools"))

    def failures_said(self) -> str:
        """The plugins that failed to load and why, as the end of a message about something missing ("" for
        none): what a failed plugin would have provided is unknown, and it is most often what is missing."""
        failed = [info for info in self.plugins.values() if info.status == "failed"]
        return "".join(f"; plugin {info.name!r} failed to load: {info.error}" for info in failed)


def load_registry(
    builtin: Iterable[str] = BUILTIN_PLUGINS,
    entry_points: Iterable[importlib.metadata.EntryPoint] | None = None,
    on_failure: Callable[[PluginInfo], None] | None = None,
) -> Registry:
    """A registry with the built-in plugins, then the installed third-party ones.

    ``$NLP_TOOL_PLUGINS`` (comma-separated names; empty for none) limits
    which third-party plugins load; the user configuration can disable some.
    A name matches a plugin's entry-point name or its package name.
    """
    registry = Registry(on_failure)
    for module_name in builtin:
        module = importlib.import_module(module_name)
        registry.add_plugin(
            module, PluginInfo(name=module_name.rsplit(".", 1)[-1], version=__version__, source="built-in")
        )
    if entry_points is None:
        entry_points = importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)
    selected = os.environ.get(ENV_PLUGINS)
    wanted = None if selected is None else {normalize(n) for n in selected.split(",") if n.strip()}
    try:
        disabled = disabled_plugins()
    except RegistryError as error:
        # A damaged config file must not take the tool down with it.
        warnings.warn(str(error), PluginWarning, stacklevel=2)
        disabled = set()
    for entry_point in sorted(entry_points, key=lambda ep: ep.name):
        dist = getattr(entry_point, "dist", None)
        names = {normalize(entry_point.name)}
        if dist is not None:
            names.add(normalize(dist.metadata["Name"]))
        blocked = None
        if names & disabled:
            blocked = "disabled with `nlp-tool plugins disable`"
        elif wanted is not None and not names & wanted:
            blocked = f"not in {ENV_PLUGINS}"
        registry.add_entry_point(entry_point, blocked)
    return registry


_default: Registry | None = None
_default_lock = threading.Lock()


class PluginWarning(UserWarning):
    """A plugin failed to load, or the plugin configuration is damaged: the rest of the tool works on.

    Reported through :mod:`warnings`, so that a program can filter or record
    it (``warnings.simplefilter("error", PluginWarning)`` makes it fatal);
    the command line shows it as one ``nlp-tool: warning:`` line.
    """


def warn_failure(info: PluginInfo) -> None:
    warnings.warn(f"plugin {info.name!r} failed to load: {info.error}", PluginWarning, stacklevel=2)


def get_registry() -> Registry:
    """The process-wide registry, loaded on first use."""
    global _default
    with _default_lock:
        if _default is None:
            _default = load_registry(on_failure=warn_failure)
        return _default
