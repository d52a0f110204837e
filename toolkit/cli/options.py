"""Flags built from the ``Option``s that engines declare: typed, bounded and checked by click."""

from __future__ import annotations

from typing import Any

import click

from toolkit.engine import Option, renamed_options
from toolkit.errors import OptionError
from toolkit.plugins import EngineEntry


def flag_of(name: str) -> str:
    """The flag of the option (or parameter) ``name``: ``top_k`` -> ``--top-k``."""
    return "--" + name.replace("_", "-")


def engine_option(engines: dict[str, EngineEntry], default: str, help: str, takes_model: bool = True) -> click.Option:
    """``--engine``: every engine a choice, so that picking one that cannot do it gets a clear message, not
    click's. On a verb with ``--model``, no engine given lets the model choose (``Registry.engine``): another
    tool's checkpoint goes to the engine that runs its type, or is refused naming what the task runs; anything
    else goes to ``default``."""
    runs_checkpoints = any(entry.engine_class.checkpoint_types for entry in engines.values())
    if not takes_model:
        return click.Option(["--engine", "-e"], type=click.Choice(list(engines)), default=default,
                            show_default=True, help=help)
    said = f"{default}, or the engine that runs --model's checkpoint folder" if runs_checkpoints else default
    return click.Option(["--engine", "-e"], type=click.Choice(list(engines)), default=None,
                        help=f"{help} [default: {said}]")


def _accepts(option: Option) -> tuple:
    return option.type, option.choices, option.minimum, option.maximum, option.min_open, option.max_open


def click_type(options: list[Option]) -> click.ParamType:
    """The click type of a flag that ``options`` (one per engine declaring it) share.

    The Option's choices or bounds (``click.Choice``, ``click.IntRange``,
    ``click.FloatRange``) when the engines agree on what they accept, so that
    click refuses a bad value naming the flag; where they differ, the plain
    type of the first, and the chosen engine checks the value itself (as it
    always does for API callers). click.Choice compares strings, so other
    choices are checked by the engine too.
    """
    first = options[0]
    if any(_accepts(option) != _accepts(first) for option in options[1:]):
        return click.types.convert_type(first.type)
    if first.choices and all(isinstance(choice, str) for choice in first.choices):
        return click.Choice(first.choices)
    if first.type in (int, float) and (first.minimum is not None or first.maximum is not None):
        bounded = click.IntRange if first.type is int else click.FloatRange
        return bounded(first.minimum, first.maximum, min_open=first.min_open, max_open=first.max_open)
    return click.types.convert_type(first.type)


def engine_defaults(engines: dict[str, EngineEntry], attribute: str, key: str) -> str:
    """The defaults of option ``key`` for help texts: ``  [default: X]`` when every engine declares the same
    (a task's shared option), else ``  [default for engine A: X, B: Y]`` for the engines declaring it; "" when
    none has one. An empty default ("" or None) means "none": the option's help says what happens then."""
    declared = {name: option.default for name, entry in engines.items()
                if (option := getattr(entry.engine_class, attribute).get(key)) is not None}
    if len(declared) == len(engines) and len(set(map(repr, declared.values()))) == 1:
        default = next(iter(declared.values()))
        return "" if default in ("", None, ()) else f"  [default: {default}]"
    listed = ", ".join(f"{name}: {default}" for name, default in declared.items()
                       if default not in ("", None, ()))
    return f"  [default for engine {listed}]" if listed else ""


def option_params(
    engines: dict[str, EngineEntry], attribute: str, skip: tuple[str, ...] = ()
) -> tuple[list[click.Parameter], dict[str, list[str]]]:
    """One flag per option (``options`` or ``train_options``) the engines declare, and which engines declare each.

    A flag shared by several engines is made once, from the first; its help
    gives the default (every engine's, where they differ). Options named in ``skip`` have a common
    flag of their own.
    """
    declared: dict[str, list[Option]] = {}
    owners: dict[str, list[str]] = {}
    for name, entry in engines.items():
        for key, option in getattr(entry.engine_class, attribute).items():
            declared.setdefault(key, []).append(option)
            owners.setdefault(key, []).append(name)
    params: list[click.Parameter] = []
    for key, options in declared.items():
        if key in skip:
            continue
        first = options[0]
        defaults = engine_defaults(engines, attribute, key)
        params.append(click.Option(
            [*_spelled(first, first.flags(key)), key],
            type=click_type(options),
            default=None,
            multiple=first.multiple,
            help=first.help + defaults,
        ))
        # An old name keeps its flag, out of --help; given_options maps it to the new name.
        for old in dict.fromkeys(old for option in options for old in option.deprecated):
            params.append(click.Option([*_spelled(first, first.old_flags(old)), old], type=click_type(options),
                                       default=None, multiple=first.multiple, hidden=True))
            owners[old] = owners[key]
    return params, owners


def _spelled(option: Option, flags: tuple[str, ...]) -> list[str]:
    # click spells a bool's pair "--name/--no-name".
    return [f"{flags[0]}/{flags[1]}", *flags[2:]] if option.type is bool else list(flags)


def _warn_deprecated(old: str, new: str) -> None:
    click.echo(f"nlp-tool: warning: {flag_of(old)} is deprecated, use {flag_of(new)}", err=True)


def given_options(engine: str, values: dict[str, Any], accepted: dict[str, Option],
                  owners: dict[str, list[str]]) -> dict[str, Any]:
    """The option flags given (those not None) as ``engine``'s options, deprecated flags renamed
    (with a warning on stderr); a usage error for a flag that ``engine`` does not declare (it
    belongs to another engine of the task) or for an option given under both names."""
    # A repeatable flag that was not given comes as () from click.
    given = {key: value for key, value in values.items() if value is not None and value != ()}
    try:
        given = renamed_options(given, accepted, _warn_deprecated, flag_of)
    except OptionError as error:
        raise click.UsageError(str(error)) from None
    for key in given:
        if key not in accepted:
            belongs = ", ".join(owners.get(key, [])) or "no engine"
            raise click.UsageError(f"engine {engine!r} has no option {flag_of(key)} (it belongs to: {belongs})")
    return given
