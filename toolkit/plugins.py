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
import keyword
import os
import re
import threading
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

import pluggy

from toolkit import __version__, hookspecs
from toolkit.contracts import JSON_TYPES, TaskContract
from toolkit.engine import INPUT_KINDS, OPTION_TYPES, Engine, Option, is_reserved_option
# RegistryError and UnknownTaskError lived here before toolkit.errors.
from toolkit.errors import OptionError, RegistryError, UnknownTaskError
from toolkit.files import AtomicFile

PROJECT = "nlp_tool"
ENTRY_POINT_GROUP = "nlp_tool"
BUILTIN_PLUGINS = ("toolkit_plugins.summarization", "toolkit_plugins.classification", "toolkit_plugins.qa", "toolkit_plugins.translation")
ENV_PLUGINS = "NLP_TOOL_PLUGINS"
ENV_HOME = "NLP_TOOL_HOME"
# Task names become command-line verbs, engine names --engine values.
NAME = re.compile(r"[a-z][a-z0-9_-]*")
# Record fields become record keys, train() keywords and --<field>-column flags.
FIELD = re.compile(r"[a-z][a-z0-9_]*")


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


def _is_tool_flag(flag: str) -> bool:
    """``flag`` is one of nlp-tool's own: a reserved name's, ``--top-k``, a ``--FIELD-column`` or ``--FIELD-field``."""
    name = flag[2:].replace("-", "_")
    return name == "top_k" or is_reserved_option(name, train=True)


def _check_options(where: str, engine_class: type[Engine], attribute: str, siblings: list[type[Engine]]) -> None:
    """Refuse options (``attribute``: "options" or "train_options") that the command line could not offer.

    ``siblings`` are the task's engines registered before this one: their
    options become flags of the same commands (the verb and ``evaluate``, or
    ``train``), so a flag may only be shared by options of the same name.
    """
    train = attribute == "train_options"
    what = "train option" if train else "option"
    options = getattr(engine_class, attribute)
    if not isinstance(options, dict):
        raise RegistryError(f"{where}: {attribute} must be a dict of name -> toolkit.engine.Option, not {options!r}")
    # An option is a keyword argument of toolkit.pipeline() (toolkit.train()), and the command line
    # passes each flag's value on under that name.
    bad = [k for k in options if not (isinstance(k, str) and k.isidentifier() and not keyword.iskeyword(k))]
    if bad:
        raise RegistryError(f"{where}: {what} names {bad} are not Python identifiers ('max_words' gives --max-words;"
                            " other spellings go in aliases)")
    reserved = sorted(k for k in options if is_reserved_option(k, train=train))
    if reserved:
        raise RegistryError(f"{where}: {what} names {reserved} are reserved by nlp-tool")
    # An old name is still a keyword and a flag (see toolkit.engine.renamed_options).
    old = [name for option in options.values() if isinstance(option, Option) for name in option.deprecated]
    bad = [name for name in old if not (isinstance(name, str) and name.isidentifier()) or name in options
           or is_reserved_option(name, train=train)]
    if bad:
        raise RegistryError(f"{where}: deprecated {what} names {bad} are not identifiers, are reserved by nlp-tool"
                            " or name an option")
    taken: dict[str, tuple[str, str]] = {}  # flag -> (engine, option) that has it
    for sibling in siblings:
        for key, option in getattr(sibling, attribute).items():
            for flag in option.answers_to(key):
                taken.setdefault(flag, (sibling.name, key))
    for key, option in options.items():
        if not isinstance(option, Option):
            raise RegistryError(f"{where}: {what} {key!r} is {option!r}, not a toolkit.engine.Option")
        if option.type not in OPTION_TYPES:
            type_name = getattr(option.type, "__name__", repr(option.type))
            raise RegistryError(f"{where}: {what} {key!r} has type {type_name};"
                                " an option is an int, float, str or bool")
        bad = [a for a in option.aliases if not (isinstance(a, str) and a.startswith("--") and NAME.fullmatch(a[2:]))]
        bad += [f for f in option.flags(key)[1:] if f not in bad and _is_tool_flag(f)]
        if bad:
            raise RegistryError(f"{where}: {what} {key!r} has unusable flags {bad} (a flag must be --lower-case-name"
                                " and not one of nlp-tool's own)")
        for flag in option.answers_to(key):
            owner = taken.setdefault(flag, (engine_class.name, key))
            if owner[1] != key:
                raise RegistryError(f"{where}: flag {flag} of {what} {key!r} is already the flag of {what}"
                                    f" {owner[1]!r} of engine {engine_class.task}:{owner[0]}")
        if option.range_text() and option.type not in (int, float):
            raise RegistryError(f"{where}: option {key!r} has bounds but is a {option.type.__name__},"
                                " not an int or float")
        try:
            option.convert(key, option.default)
        except OptionError as e:
            raise RegistryError(f"{where}: the default of option {key!r} is not accepted: {e}") from None


def check_engine_class(task: str, engine: str, engine_class: type, siblings: list[type[Engine]]) -> None:
    """Refuse, with RegistryError, an engine the command line or the API could not use as registered.

    ``siblings`` are the engine classes already registered for ``task``.
    """
    if not (isinstance(engine_class, type) and issubclass(engine_class, Engine)):
        raise RegistryError(f"{task}:{engine}: {engine_class!r} is not a subclass of toolkit.engine.Engine")
    for kind, value in (("task", task), ("engine", engine)):
        if not isinstance(value, str) or not NAME.fullmatch(value):
            raise RegistryError(f"{kind} name {value!r} must be lower-case letters, digits, '-' or '_'")
    if (engine_class.task, engine_class.name) != (task, engine):
        # Results are stamped from the class attributes, so they must say what was registered.
        raise RegistryError(
            f"{engine_class.__name__} declares {engine_class.task}:{engine_class.name}"
            f" but is registered as {task}:{engine}"
        )
    where = f"{task}:{engine}"
    if not isinstance(engine_class.version, str):
        raise RegistryError(f"{where}: version must be a str (it is stamped on results), not {engine_class.version!r}")
    if engine_class.inputs not in INPUT_KINDS:
        raise RegistryError(f"{where}: inputs must be one of {', '.join(INPUT_KINDS)}, not {engine_class.inputs!r}")
    _check_options(where, engine_class, "options", siblings)
    _check_options(where, engine_class, "train_options", siblings)
    fields = engine_class.record_fields
    # Each field becomes a --<field>-column flag and a key of every record.
    if not isinstance(fields, tuple) or not all(isinstance(f, str) and FIELD.fullmatch(f) for f in fields):
        raise RegistryError(f"{where}: record_fields must be a tuple of lower-case names, not {fields!r}")
    flags = engine_class.line_file_flags
    option_flags = {f for key, option in engine_class.options.items() for f in option.flags(key)}
    if flags and (
        sorted(flags.values()) != sorted(fields)
        or any(not FIELD.fullmatch(f) or is_reserved_option(f, train=True) or "--" + f.replace("_", "-") in option_flags
               for f in flags)
    ):
        raise RegistryError(f"{where}: line_file_flags must map one free flag name to each record"
                            f" field {fields}, not {flags!r}")


def check_contract(contract: Any) -> None:
    """Refuse, with RegistryError, a task contract the registry could not hold engines to."""
    if not isinstance(contract, TaskContract):
        raise RegistryError(f"register_tasks takes a toolkit.contracts.TaskContract, not {contract!r}")
    where = f"task {contract.task!r}"
    if not isinstance(contract.task, str) or not NAME.fullmatch(contract.task):
        raise RegistryError(f"{where}: a task name is lower-case letters, digits, '-' or '_'")
    if contract.inputs not in INPUT_KINDS:
        raise RegistryError(f"{where}: inputs must be one of {', '.join(INPUT_KINDS)}, not {contract.inputs!r}")
    bad = [key for key, kinds in contract.results.items()
           if not isinstance(kinds, str) or not set(kinds.split("|")) <= set(JSON_TYPES)]
    if bad:
        raise RegistryError(f"{where}: the types of result keys {bad} are not among {', '.join(JSON_TYPES)}"
                            " (joined by '|')")
    if not all(isinstance(option, Option) for option in contract.options.values()):
        raise RegistryError(f"{where}: shared options must be toolkit.engine.Option values")
    unknown = sorted({name for group in contract.exclusive for name in group} - set(contract.options))
    if unknown:
        raise RegistryError(f"{where}: exclusive names {unknown} are not its shared options")


def hold_to_contract(task: str, engine: str, engine_class: type, contract: TaskContract) -> None:
    """Give ``engine_class`` its task's contract and shared options; RegistryError when it takes other inputs,
    re-declares a shared option otherwise, or keeps another contract."""
    where = f"{task}:{engine}"
    if not (isinstance(engine_class, type) and issubclass(engine_class, Engine)):
        raise RegistryError(f"{where}: {engine_class!r} is not a subclass of toolkit.engine.Engine")
    if engine_class.inputs != contract.inputs:
        raise RegistryError(f"{where}: the {task} task takes {contract.inputs!r} inputs, not {engine_class.inputs!r}")
    if engine_class.contract not in (None, contract):
        raise RegistryError(f"{where}: the engine keeps another contract than its task's")
    options = engine_class.options if isinstance(engine_class.options, dict) else {}
    differ = sorted(name for name, option in contract.options.items() if options.get(name, option) != option)
    if differ:
        raise RegistryError(f"{where}: options {differ} are shared by every engine of the {task} task; leave them"
                            " out of the engine's options (it gets the task's) or declare them as the task does")
    engine_class.contract = contract
    engine_class.options = {**contract.options, **options}


class Registry:
    """The plugin manager, the plugins it knows of and the engines they registered."""

    def __init__(self, on_failure: Callable[[PluginInfo], None] | None = None) -> None:
        self.pm = pluggy.PluginManager(PROJECT)
        self.pm.add_hookspecs(hookspecs)
        self.plugins: dict[str, PluginInfo] = {}
        self.engines: dict[tuple[str, str], EngineEntry] = {}
        #: task -> (its contract, the plugin that declared it)
        self.contracts: dict[str, tuple[TaskContract, str]] = {}
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
            check_contract(contract)
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
        take a task's name, whether or not the task's verb is in ``cli`` yet.
        """
        for name, info in list(self.plugins.items()):
            plugin = self.pm.get_plugin(name)
            if plugin is None or info.status != "loaded":
                continue
            caller = self.pm.subset_hook_caller(
                "register_commands", remove_plugins=[p for p in self.pm.get_plugins() if p is not plugin]
            )
            before = dict(cli.commands)
            try:
                caller(cli=cli)
                replaced = sorted(n for n in {*before, *self.tasks()} if cli.commands.get(n) is not before.get(n))
                if replaced:
                    raise RegistryError(f"command(s) {', '.join(replaced)} already exist")
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

    def engine(self, task: str, engine: str | None = None) -> EngineEntry:
        """The entry for ``task`` and ``engine``; without an engine, the task's first registered one."""
        engines = self.tasks().get(task)
        if not engines:
            known = ", ".join(sorted(self.tasks())) or "none"
            raise UnknownTaskError(f"unknown task {task!r} (available: {known}){self.failures_said()}")
        if engine is None:
            return next(iter(engines.values()))
        if engine not in engines:
            raise UnknownTaskError(
                f"task {task!r} has no engine {engine!r} (available: {', '.join(engines)}){self.failures_said()}"
            )
        return engines[engine]

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
