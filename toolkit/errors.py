"""nlp-tool's own errors: one family under :class:`NlpToolError`, each class with its exit code.

Six branches, by who can put the problem right:

- :class:`UsageError` (exit 2): the call is wrong: an option, an argument,
  a file name, a model made for another task or engine, an engine asked to
  do what it cannot;
- :class:`DataError` (exit 2): training or evaluation data that cannot be used;
- :class:`ModelFileError` (exit 1): a model file that cannot be read
  (damaged, foreign, from a newer version); a *missing* one is
  :class:`ModelNotFoundError`, a usage error like any missing file;
- :class:`TrainingError` (exit 1): training that cannot go on (its loss
  became NaN or infinite);
- :class:`WorkerError` (exit 1): a worker process of ``--workers N`` died
  (killed, out of memory) before finishing its chunk;
- :class:`RegistryError` (exit 1): a plugin, or the plugin configuration,
  broke the registry's rules; :class:`UnknownTaskError` (exit 2) asks for a
  task or engine that no plugin provides.

``exit_code`` is what ``nlp-tool`` exits with when the error ends a command;
errors outside the family end it with 1. The classes keep the built-in bases
callers caught before the family existed (``ValueError``, ``LookupError``,
``NotImplementedError``), and their old homes (``toolkit.engine``,
``toolkit.datasets``, ``toolkit.io``, ``toolkit.nn``, ``toolkit.plugins``)
still export them. This module imports nothing of the toolkit, so that every
layer may raise them.
"""

from __future__ import annotations

from typing import ClassVar

RUNTIME_FAILURE = 1
USAGE_ERROR = 2


class NlpToolError(Exception):
    """Base of nlp-tool's errors; the message is one line that says what is wrong and, where it can, what to do."""

    exit_code: ClassVar[int] = RUNTIME_FAILURE


class UsageError(NlpToolError, ValueError):
    """The call is wrong in a way its author can correct: an option, an argument, a file name."""

    exit_code = USAGE_ERROR


class OptionError(UsageError):
    """An engine option has a wrong name or value, or options that do not go together."""


class ModelMismatchError(OptionError):
    """A model file (or training checkpoint) made for another task, engine or setting."""


class InputError(UsageError):
    """The inputs named on the command line cannot be used: no such file, a directory, an empty question file."""


class UnsupportedError(UsageError, NotImplementedError):
    """An engine asked to do what it cannot: be trained, or be evaluated."""


class DataError(NlpToolError, ValueError):
    """Training or evaluation data that cannot be used: unreadable, malformed, or unfit to learn from.

    The message is one line that says what is wrong and where (file, line, column).
    """

    exit_code = USAGE_ERROR


class RecordError(DataError):
    """A DataError about one record of the list an engine was given (``Engine.train``'s ``records`` or ``valid``).

    ``part`` names the list ("training data", "validation data"), ``number``
    counts from 1 in it and ``problem`` is the rest of the message: the
    message reads "training data: record 7 has an empty text". When
    ``toolkit.train`` held part of the user's data out for validation, it
    renumbers the error to the record's place in the user's data.
    """

    def __init__(self, part: str, number: int, problem: str) -> None:
        super().__init__(f"{part}: record {number}{problem}")
        self.part, self.number, self.problem = part, number, problem


class ColumnError(DataError):
    """The column (or JSON key) mapped to a record field is not in the data; ``field`` names the field."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.field = field


class ModelFileError(NlpToolError, ValueError):
    """A model file that cannot be read: truncated, altered, foreign, from a newer version, or unfit for its engine."""


class ModelNotFoundError(OptionError, ModelFileError):
    """No model file where one was named: a usage error (exit 2), like any missing file.

    Both an OptionError (what ``Engine.model_metadata`` raised for it) and a
    ModelFileError (what ``toolkit.nn.read_model_file`` raised for it).
    """

    exit_code = USAGE_ERROR


class CheckpointError(ModelFileError):
    """Another tool's checkpoint folder that nlp-tool cannot run: weights stored as a pickle, a tensor missing or
    not of the config's shape, an architecture or setting it does not run, a damaged file. A usage error (exit 2):
    the folder named is not one to give it, as a missing file is not."""

    exit_code = USAGE_ERROR


class WorkerError(NlpToolError):
    """A worker process of ``--workers N`` (``toolkit.workers``) ended without finishing its chunk (killed, out of
    memory), or the pipeline cannot be sent to one."""


class TrainingError(NlpToolError, ArithmeticError):
    """Training cannot go on: its loss stopped being a finite number (too high a learning rate, most often)."""


class RegistryError(NlpToolError):
    """A plugin broke the registry's rules (for instance, claimed a task+engine already taken),
    or the plugin configuration file cannot be read."""


class UnknownTaskError(RegistryError, LookupError):
    """No engine is registered for the requested task or task+engine."""

    exit_code = USAGE_ERROR
