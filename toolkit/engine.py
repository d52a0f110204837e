"""The engine contract: what every task engine, built-in or third-party, provides.

An engine turns a batch of inputs into one result dict per input. The class
attributes describe it to the registry, the command line and the API without
instantiating it, so a plugin module must stay cheap to import: load models
and heavy libraries (numpy, the kernels) in ``__init__``, ``run`` or ``train``.

Engines that learn from data also declare ``record_fields`` and implement
``train`` (a classmethod: fit, write one model file) and ``evaluate`` (metrics
of a loaded model on labelled records). The engines of one task usually share
these through a common base class, since records and metrics are the task's.
"""

from __future__ import annotations

import abc
import json
import sys
import threading
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Iterator

# DataError, ModelMismatchError and RecordError lived here before toolkit.errors; plugins import them from here.
from toolkit.errors import (
    DataError,
    ModelMismatchError,
    ModelNotFoundError,
    OptionError,
    RecordError,
    UnsupportedError,
)

if TYPE_CHECKING:
    from toolkit.contracts import TaskContract

INPUT_KINDS = ("text", "question+context", "dialogue")

# Keywords that pipeline() and the task verbs (and `nlp-tool evaluate`, which
# takes the run options too) use themselves; an engine option with one of
# these names could never be set, so the registry refuses it.
# "top_k" is absent on purpose: an engine that ranks declares it, and the
# common --top-k flag then feeds it.
# The verbs' --text-field and --id-field are covered by the "*_field" rule of is_reserved_option.
RESERVED_OPTION_NAMES = frozenset(
    """task engine model batch_size workers chunk_size language registry inputs text input_format
    format fmt output on_error explain quiet debug question questions context help data data_format encoding
    columns no_header""".split()
)


# Keywords of Engine.train and toolkit.api.train, and flags of `nlp-tool train`
# and `nlp-tool evaluate`; a train option with one of these names could never
# be set. Flags `--<field>-column` and `--<field>-field` are taken too (see is_reserved_option).
RESERVED_TRAIN_OPTION_NAMES = RESERVED_OPTION_NAMES | frozenset(
    "records valid valid_split seed progress force".split()
)


def is_reserved_option(name: str, train: bool = False) -> bool:
    """True for names the command line and the API use themselves, which an option (a train option) cannot take.

    ``*_column`` and ``*_field`` names are the ``--<field>-column`` / ``--<field>-field`` flags
    of ``train`` and ``evaluate`` (and ``--text-field`` / ``--id-field`` of the verbs), for any
    field a plugin may declare.
    """
    return name in (RESERVED_TRAIN_OPTION_NAMES if train else RESERVED_OPTION_NAMES) or name.endswith(
        ("_column", "_field")
    )


def _warn_deprecated(old: str, new: str) -> None:
    # The warning names the caller's line, past nlp-tool's own frames: Python shows a
    # DeprecationWarning by default only when that line is in __main__ (a user's script).
    frame, level = sys._getframe(), 1
    while frame is not None and frame.f_globals.get("__name__", "").partition(".")[0] in ("toolkit", "toolkit_plugins"):
        frame, level = frame.f_back, level + 1
    warnings.warn(f"option {old!r} is deprecated, use {new!r}", DeprecationWarning, stacklevel=level)


def renamed_options(
    options: dict[str, Any],
    declared: dict[str, Option],
    warn: Callable[[str, str], None] = _warn_deprecated,
    spell: Callable[[str], str] = repr,
) -> dict[str, Any]:
    """``options`` with each old name of a ``declared`` option (its ``deprecated``) replaced by the current one.

    ``warn(old, new)`` reports each old name used: a DeprecationWarning for API
    callers, a line on stderr for the command line. Giving an option under
    both names is an OptionError (naming them with ``spell``: as keywords or as flags),
    since neither value can be preferred.
    """
    current = {old: new for new, option in declared.items() for old in option.deprecated}
    renamed: dict[str, Any] = {}
    for key, value in options.items():
        new = current.get(key)
        if new is None:
            renamed[key] = value
            continue
        if new in options:
            raise OptionError(f"give {spell(new)} or its deprecated name {spell(key)}, not both")
        warn(key, new)
        renamed[new] = value
    return renamed


def check_input(engine_class: type[Engine], item: Any) -> None:
    """TypeError unless ``item`` is one input of the kind ``engine_class.inputs`` names.

    ``toolkit.api.Pipeline`` checks every input with it before an engine's
    ``run``, so engines may assume their inputs' kind.
    """
    where = f"{engine_class.task}:{engine_class.name}"
    if engine_class.inputs == "text":
        if not isinstance(item, str):
            raise TypeError(f"{where} takes str inputs, not {type(item).__name__}")
        return
    if engine_class.inputs == "dialogue":
        if not isinstance(item, Mapping):
            raise TypeError(f"{where} takes {{'turns': [...]}} mappings (a conversation), not {type(item).__name__}")
        turns = item.get("turns")
        if not isinstance(turns, list) or not all(isinstance(turn, str) for turn in turns):
            raise TypeError(f"{where}: an input's 'turns' must be a list of strings, not {turns!r:.60}")
        return
    if not isinstance(item, Mapping):
        raise TypeError(f"{where} takes {{'question', 'context'}} mappings, not {type(item).__name__}")
    for field in ("question", "context"):
        if not isinstance(item.get(field), str):
            raise TypeError(f"{where}: an input's {field!r} must be a string, not {type(item.get(field)).__name__}")


def checked_settings(engine_class: type[Engine], options: dict[str, Any], declared: dict[str, Option],
                     kind: str = "option") -> dict[str, Any]:
    """``options`` checked against the ``declared`` options of ``engine_class`` (OptionError naming the ``kind``
    otherwise), defaults filled in; deprecated names are accepted with a DeprecationWarning."""
    options = renamed_options(options, declared)
    unknown = sorted(set(options) - set(declared))
    if unknown:
        accepted = ", ".join(sorted(declared)) or "none"
        raise OptionError(f"engine {engine_class.task}:{engine_class.name} has no {kind}"
                          f" {', '.join(map(repr, unknown))} (accepted: {accepted})")
    return {key: option.convert(key, options[key]) if key in options else option.default
            for key, option in declared.items()}


def train_settings(engine_class: type[Engine], options: dict[str, Any]) -> dict[str, Any]:
    """The training ``options`` checked and completed (:func:`checked_settings` of ``train_options``)."""
    return checked_settings(engine_class, options, engine_class.train_options, "training option")


def parse_settings(declared: dict[str, Option], pairs: list[str]) -> dict[str, Any]:
    """``NAME=VALUE`` texts (a script's ``--set``) as option values, each parsed by its ``declared`` Option;
    OptionError for an unknown name or a bad value."""
    settings = {}
    for pair in pairs:
        name, sep, text = pair.partition("=")
        name = name.strip().replace("-", "_")
        if not sep or name not in declared:
            raise OptionError(f"{pair!r}: give NAME=VALUE with NAME one of {', '.join(sorted(declared))}")
        settings[name] = declared[name].parse(name, text)
    return settings


def can_train(engine_class: type[Engine]) -> bool:
    """The engine declares its record fields and implements :meth:`Engine.train`."""
    return bool(engine_class.record_fields) and engine_class.train.__func__ is not Engine.train.__func__


def takes_model(engine_class: type[Engine]) -> bool:
    """The engine reads a model file: ``takes_model`` when set, else it has a default model or can be trained."""
    if engine_class.takes_model is not None:
        return engine_class.takes_model
    return engine_class.default_model is not None or can_train(engine_class)


def can_stream(engine_class: type[Engine]) -> bool:
    return engine_class.stream is not Engine.stream


def can_evaluate(engine_class: type[Engine]) -> bool:
    """The engine declares its record fields and implements :meth:`Engine.evaluate`."""
    return bool(engine_class.record_fields) and engine_class.evaluate is not Engine.evaluate


#: The types an Option may have: the command line parses a flag's value as one of these.
OPTION_TYPES = (int, float, str, bool)


@dataclass(frozen=True)
class Option:
    """A task option an engine accepts: a ``--flag`` of the verb and a keyword of ``pipeline()``."""

    type: type
    default: Any
    help: str
    choices: tuple[Any, ...] | None = None
    #: Extra command-line flags for the option, e.g. ("--from",) for an option
    #: named "source" (a Python keyword cannot be an option name).
    aliases: tuple[str, ...] = ()
    #: Former names of the option, still accepted for one release with a deprecation warning
    #: (see renamed_options); models trained under them keep them in their metadata.
    deprecated: tuple[str, ...] = ()
    #: Bounds of an int or float option (None: unbounded); ``min_open`` / ``max_open``
    #: exclude the bound itself, as in click.FloatRange.
    minimum: float | None = None
    maximum: float | None = None
    min_open: bool = False
    max_open: bool = False
    #: A repeatable option (``--stop A --stop B``): its value is a tuple of ``type`` values, default ().
    multiple: bool = False

    def flags(self, name: str) -> tuple[str, ...]:
        """The command-line flags of this option when named ``name``: ``--name`` (and
        ``--no-name`` for a bool), then its aliases."""
        flag = name.replace("_", "-")
        return (f"--{flag}", *((f"--no-{flag}",) if self.type is bool else ()), *self.aliases)

    def old_flags(self, old: str) -> tuple[str, ...]:
        """The flags of the deprecated name ``old``: ``--old`` (and ``--no-old`` for a bool), no aliases."""
        return replace(self, aliases=()).flags(old)

    def answers_to(self, name: str) -> tuple[str, ...]:
        """Every flag of this option when named ``name``: its :meth:`flags`, then its deprecated names'."""
        return (*self.flags(name), *(flag for old in self.deprecated for flag in self.old_flags(old)))

    def convert(self, name: str, value: Any) -> Any:
        """``value`` checked against this option, converted to its type when that is lossless (a repeatable
        option's: a tuple of such values, or one value that becomes a tuple of one)."""
        if self.multiple:
            values = value if isinstance(value, (list, tuple)) else (value,)
            return tuple(replace(self, multiple=False).convert(name, item) for item in values)
        if self.type is bool:
            if not isinstance(value, bool):
                raise OptionError(f"option {name!r} must be true or false, not {value!r}")
        elif self.type is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        elif not isinstance(value, self.type) or isinstance(value, bool):
            raise OptionError(f"option {name!r} must be of type {self.type.__name__}, not {value!r}")
        if self.choices is not None and value not in self.choices:
            raise OptionError(f"option {name!r} must be one of {', '.join(map(str, self.choices))}, not {value!r}")
        if not self._in_range(value):
            raise OptionError(f"option {name!r} must be {self.range_text()}, not {value!r}")
        return value

    def parse(self, name: str, text: str) -> Any:
        """The value a ``NAME=VALUE`` setting's text gives this option (true/false, yes/no, 1/0 for a bool),
        checked by :meth:`convert`; OptionError for text that is not one."""
        if self.multiple:
            return (replace(self, multiple=False).parse(name, text),)
        if self.type is bool:
            value: Any = {"true": True, "yes": True, "1": True, "false": False, "no": False, "0": False}.get(
                text.strip().lower(), text)
        elif self.type is str:
            value = text
        else:
            try:
                value = self.type(text)
            except ValueError:
                raise OptionError(f"option {name!r} must be of type {self.type.__name__}, not {text!r}") from None
        return self.convert(name, value)

    def _in_range(self, value: Any) -> bool:
        # Written as "not inside" so that NaN, which compares false with everything, is out of range.
        lo, hi = self.minimum, self.maximum
        if lo is not None and not (value > lo if self.min_open else value >= lo):
            return False
        return hi is None or bool(value < hi if self.max_open else value <= hi)

    def range_text(self) -> str:
        """The bounds in words ("at least 1", "between 0 and 1", "at least 0 and less than 1"); "" for none."""
        lo, hi = self.minimum, self.maximum
        low = None if lo is None else f"greater than {lo}" if self.min_open else f"at least {lo}"
        high = None if hi is None else f"less than {hi}" if self.max_open else f"at most {hi}"
        if low and high and not (self.min_open or self.max_open):
            return f"between {lo} and {hi}"
        return " and ".join(text for text in (low, high) if text)


class Engine(abc.ABC):
    """Base class of task engines.

    Subclasses set the class attributes and implement :meth:`run`. Instances
    must be picklable (pipelines are shipped to worker processes) and
    :meth:`run` must not mutate the instance (pipelines are called from
    several threads at once).
    """

    task: ClassVar[str] = ""
    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    version: ClassVar[str] = "0"
    #: "text": each input is a str; "question+context": each input is a
    #: mapping with "question" and "context" strings; "dialogue": each input is a
    #: mapping with "turns", the list of a conversation's turns so far (str).
    inputs: ClassVar[str] = "text"
    options: ClassVar[dict[str, Option]] = {}
    default_model: ClassVar[str | None] = None
    #: What to do when ``default_model`` is not installed, for the error that says so
    #: (e.g. "train it with `python scripts/train_default_x.py` or pass --model FILE").
    default_model_hint: ClassVar[str] = "pass --model FILE"
    #: Whether the engine reads a model file (``--model`` / ``model=``). None: it does when
    #: it has a ``default_model`` or can be trained; the others are rule-based and refuse one,
    #: rather than stamp on their results a model they never read. An engine that reads
    #: model files made elsewhere sets True.
    takes_model: ClassVar[bool | None] = None
    #: Fields of one training / evaluation record, e.g. ("text", "label") for classify,
    #: ("article", "summary") for summarize. Empty: the engine cannot be trained or evaluated.
    record_fields: ClassVar[tuple[str, ...]] = ()
    #: Options of `nlp-tool train TASK --engine NAME` (flags) and of Engine.train (keywords).
    train_options: ClassVar[dict[str, Option]] = {}
    #: Flags of `nlp-tool evaluate TASK` that name one plain-text file per record field, in place
    #: of DATA, in the spelling users know from the task's usual tools: {"src": "source", "ref": "target"}
    #: gives `--src test.en --ref test.de`. Empty, or one flag for each record field.
    line_file_flags: ClassVar[dict[str, str]] = {}
    #: The task's contract (toolkit.contracts.TaskContract): set by the task's base class, or by the
    #: registry when the engine is registered for a task that declares one.
    contract: ClassVar[TaskContract | None] = None
    #: The ``model_type`` values (config.json) of other tools' checkpoints the engine runs, given as the model:
    #: a folder, or a model id in the local Hugging Face cache. With no engine named, a task's checkpoint
    #: goes to the engine that lists its type (``Registry.engine``).
    checkpoint_types: ClassVar[tuple[str, ...]] = ()
    #: The languages an engine without a model file handles (``("any",)``); a model file lists its own in its
    #: metadata. Results warn where an input is in another (toolkit.languages); None: not said, no warning.
    languages: ClassVar[tuple[str, ...] | None] = None

    def __init__(self, model: str | None = None, **options: Any) -> None:
        self.settings = checked_settings(type(self), options, self.options)
        problem = self.contract.settings_problem(self.settings) if self.contract is not None else None
        if problem is not None:
            raise OptionError(problem)
        if model is not None and not takes_model(type(self)):
            raise OptionError(f"engine {self.task}:{self.name} is rule-based and takes no model file"
                              " (model=, --model)")
        self.model = model if model is not None else self.default_model

    @abc.abstractmethod
    def run(self, inputs: list) -> list[dict]:
        """One JSON-serialisable result dict per input, in order."""

    @classmethod
    def train(
        cls,
        records: list[dict],
        output: str,
        *,
        valid: list[dict] | None = None,
        seed: int = 0,
        progress: bool | None = None,
        **options: Any,
    ) -> dict:
        """Fit a model on records (dicts keyed by record_fields), write ONE model file to
        `output` atomically, return a JSON-serialisable report (e.g. {"metrics": {...} on valid,
        "seconds": ..., "examples": ...}). Raise toolkit.engine.DataError for bad data
        (one clear message: e.g. a single class, empty texts).

        ``options`` are the engine's ``train_options``, checked and completed
        with their defaults by :func:`train_settings` before the call (the API
        and the command line do this); ``progress`` None means: show progress
        on stderr when it is a terminal. ``valid`` records are only scored,
        never fitted on.
        """
        raise UnsupportedError(f"engine {cls.task}:{cls.name} cannot be trained")

    @classmethod
    def read_data(cls, path: str, encoding: str = "utf-8") -> list[dict] | None:
        """Records of a training/evaluation file in a format of the task's own (SQuAD JSON for QA),
        or None to let the CSV/TSV/JSONL reader read ``path``. Raise DataError for a damaged file."""
        return None

    def evaluate(self, records: list[dict]) -> dict:
        """Metrics of this engine (with its loaded model) on labelled records; JSON-serialisable."""
        raise UnsupportedError(f"engine {self.task}:{self.name} cannot be evaluated")

    def stamp(self) -> dict:
        """What produced the results: engine, engine version, model and model version, and the model's
        name for an engine with a model file (:meth:`loaded_metadata`)."""
        stamp = {
            "engine": f"{self.task}:{self.name}",
            "engine_version": self.version,
            "model": self.model,
            "model_version": self.model_version(),
        }
        meta = self.loaded_metadata()
        if meta is not None:
            stamp["model_name"] = meta.get("name")
            if "checkpoint" in meta:  # another tool's checkpoint: the folder and the architecture that ran
                stamp["model_checkpoint"], stamp["model_architecture"] = meta["checkpoint"], meta.get("architecture")
        return stamp

    def loaded_metadata(self) -> dict | None:
        """The metadata of the model file the engine runs with (loading it if need be); None for an engine
        without one. Engines with model files override this; the stamp reads the model's version and name."""
        return None

    def model_version(self) -> str | None:
        """Version of the loaded model (its metadata's "version")."""
        meta = self.loaded_metadata()
        return None if meta is None else meta.get("version")

    def model_metadata(self) -> dict:
        """The metadata of ``self.model``, read without its arrays, for engines with model files.

        Refuses, before anything slow happens, no model at all (OptionError),
        a missing one (ModelNotFoundError, an OptionError; for the default
        model, with ``default_model_hint``) and a model file
        written by another task or engine (ModelMismatchError, naming the
        engine to use when the task is the same). A damaged file raises
        ``toolkit.nn.ModelFileError``.
        """
        from toolkit.nn import read_metadata

        model = self.model
        if model is None:
            raise OptionError(f"engine {self.task}:{self.name} has no default model; pass --model FILE"
                              f" (train one with `nlp-tool train {self.task} DATA --engine {self.name}`)")
        if not Path(model).is_file():
            if self.default_model is not None and Path(model) == Path(self.default_model):
                raise ModelNotFoundError(f"the default model {model} of engine {self.task}:{self.name} is not"
                                         f" installed; {self.default_model_hint}")
            raise ModelNotFoundError(
                f"{model}: {'a directory, not a model file' if Path(model).is_dir() else 'no such model file'}")
        meta = read_metadata(model)
        task, engine = meta.get("task"), meta.get("engine")
        if (task, engine) != (self.task, self.name):
            hint = f"; use --engine {engine}" if task == self.task and engine else ""
            raise ModelMismatchError(f"{model}: a model for {task}:{engine}, not {self.task}:{self.name}{hint}")
        return meta

    def checkpoint_folder(self) -> Path | None:
        """The checkpoint folder ``model`` names (see :attr:`checkpoint_types`), or None when it names none (a
        model file, say); ModelMismatchError, before any weight is read, for a checkpoint of a type the engine
        does not run."""
        from toolkit.nn.pretrained import checkpoint_folder, checkpoint_type

        folder = checkpoint_folder(self.model) if self.model is not None and self.checkpoint_types else None
        if folder is None:
            return None
        kind = checkpoint_type(folder)
        if kind is not None and kind not in self.checkpoint_types:
            raise ModelMismatchError(f"{self.model}: a {kind!r} checkpoint; {self.task}:{self.name} runs"
                                     f" {', '.join(self.checkpoint_types)} checkpoints")
        return folder

    def stream(self, item: Any) -> Iterator[str]:
        """The text of ``item``'s result in pieces as they are made (a generated text token by token);
        joined, they are ``format_text`` of its result. Engines that write text as they go override this."""
        raise UnsupportedError(f"engine {self.task}:{self.name} does not stream its results")

    def format_text(self, result: dict) -> str:
        """``result`` as plain text, for ``--format text``; engines override this with the natural reading."""
        return json.dumps(result, ensure_ascii=False)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.task}:{self.name} model={self.model!r} {self.settings}>"


# One lock for all lazily loaded models: loading is rare, and a lock per
# engine would have to be left out of pickles and remade after.
_LOAD_LOCK = threading.Lock()


class LoadsModel:
    """Mixin for engines with a model file: ``_loaded()`` is what ``_load()`` returns, loaded on first use.

    Loaded once, from whichever thread asks first; a pickled engine carries
    its options and model path, not what was loaded, so a worker process
    reloads the file on first use. Put it before ``Engine`` in the bases.
    """

    _model_state: Any = None

    def _load(self) -> Any:
        """Read ``self.model`` (called once, under a lock)."""
        raise NotImplementedError

    def _loaded(self) -> Any:
        state = self._model_state
        if state is None:
            with _LOAD_LOCK:
                if self._model_state is None:
                    self._model_state = self._load()
                state = self._model_state
        return state

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state.pop("_model_state", None)
        return state

