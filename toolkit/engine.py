"""The engine contract: what every task engine, built-in or third-party, provides.

An engine turns a batch of inputs into one result dict per input. The class
attributes describe it to the registry, the command line and the API without
instantiating it, so a plugin module must stay cheap to import: load models
and heavy libraries (numpy, the kernels) in ``__init__`` or ``run``.
"""

from __future__ import annotations

import abc
import json
from dataclasses import dataclass
from typing import Any, ClassVar

INPUT_KINDS = ("text", "question+context")

# Keywords that pipeline() and the task verbs use themselves; an engine option
# with one of these names could never be set, so the registry refuses it.
# "top_k" is absent on purpose: an engine that ranks declares it, and the
# common --top-k flag then feeds it.
RESERVED_OPTION_NAMES = frozenset(
    """task engine model batch_size registry inputs text input_format text_field id_field
    format output on_error explain quiet debug question help""".split()
)


class OptionError(ValueError):
    """An engine option has a wrong name or value (a usage error, exit code 2 on the command line)."""


@dataclass(frozen=True)
class Option:
    """A task option an engine accepts: a ``--flag`` of the verb and a keyword of ``pipeline()``."""

    type: type
    default: Any
    help: str
    choices: tuple[Any, ...] | None = None

    def convert(self, name: str, value: Any) -> Any:
        """``value`` checked against this option, converted to its type when that is lossless."""
        if self.type is bool:
            if not isinstance(value, bool):
                raise OptionError(f"option {name!r} must be true or false, not {value!r}")
        elif self.type is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        elif not isinstance(value, self.type) or isinstance(value, bool):
            raise OptionError(f"option {name!r} must be of type {self.type.__name__}, not {value!r}")
        if self.choices is not None and value not in self.choices:
            raise OptionError(f"option {name!r} must be one of {', '.join(map(str, self.choices))}, not {value!r}")
        return value


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
    #: mapping with "question" and "context" strings.
    inputs: ClassVar[str] = "text"
    options: ClassVar[dict[str, Option]] = {}
    default_model: ClassVar[str | None] = None

    def __init__(self, model: str | None = None, **options: Any) -> None:
        unknown = sorted(set(options) - set(self.options))
        if unknown:
            accepted = ", ".join(sorted(self.options)) or "none"
            raise OptionError(
                f"engine {self.task}:{self.name} has no option {', '.join(map(repr, unknown))} (accepted: {accepted})"
            )
        self.model = model if model is not None else self.default_model
        self.settings = {
            key: option.convert(key, options[key]) if key in options else option.default
            for key, option in self.options.items()
        }

    @abc.abstractmethod
    def run(self, inputs: list) -> list[dict]:
        """One JSON-serialisable result dict per input, in order."""

    def stamp(self) -> dict:
        """What produced the results: engine, engine version, model and model version."""
        return {
            "engine": f"{self.task}:{self.name}",
            "engine_version": self.version,
            "model": self.model,
            "model_version": self.model_version(),
        }

    def model_version(self) -> str | None:
        """Version of the loaded model; engines with model files override this."""
        return None

    def format_text(self, result: dict) -> str:
        """``result`` as plain text, for ``--format text``; engines override this with the natural reading."""
        return json.dumps(result, ensure_ascii=False)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.task}:{self.name} model={self.model!r} {self.settings}>"
