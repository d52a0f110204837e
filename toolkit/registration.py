"""The rules a plugin's registrations are held to: names, options and the flags they become, record fields,
and task contracts. The registry (``toolkit.plugins``) applies them as a plugin registers; breaking one fails
that plugin alone, with the message of the RegistryError raised here."""

from __future__ import annotations

import keyword
import re
from typing import Any

from toolkit.contracts import JSON_TYPES, TaskContract
from toolkit.engine import INPUT_KINDS, OPTION_TYPES, Engine, Option, is_reserved_option
from toolkit.errors import OptionError, RegistryError

# Task names become command-line verbs, engine names --engine values.
NAME = re.compile(r"[a-z][a-z0-9_-]*")
# Record fields become record keys, train() keywords and --<field>-column flags.
FIELD = re.compile(r"[a-z][a-z0-9_]*")


# The one-letter flags of nlp-tool's own commands (toolkit/cli), which an engine's alias may not take.
TOOL_SHORT_FLAGS = frozenset("-c -e -f -h -i -m -o -q -t -y -U".split())
SHORT_FLAG = re.compile(r"-[a-zA-Z]")


def _is_tool_flag(flag: str) -> bool:
    """``flag`` is one of nlp-tool's own: a reserved name's, ``--top-k``, a ``--FIELD-column`` or ``--FIELD-field``,
    or a one-letter flag of its commands."""
    if SHORT_FLAG.fullmatch(flag):
        return flag in TOOL_SHORT_FLAGS
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
        bad = [a for a in option.aliases if not (isinstance(a, str) and (SHORT_FLAG.fullmatch(a) or (
            a.startswith("--") and NAME.fullmatch(a[2:]))))]
        bad += [f for f in option.flags(key)[1:] if f not in bad and _is_tool_flag(f)]
        if bad:
            raise RegistryError(f"{where}: {what} {key!r} has unusable flags {bad} (a flag must be --lower-case-name or -x"
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


def check_task_contract(contract: Any) -> None:
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
    options = engine_class.options if isinstance(engine_class.options, dict) else {}
    problem = contract.engine_problem(engine_class.inputs, options)
    if problem is not None:
        raise RegistryError(f"{where}: {problem}")
    if engine_class.contract not in (None, contract):
        raise RegistryError(f"{where}: the engine keeps another contract than its task's")
    engine_class.contract = contract
    engine_class.options = {**contract.options, **options}
