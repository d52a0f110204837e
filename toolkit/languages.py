"""What a model reads, and the language of each input it is given (issue 24).

A model file's metadata lists the languages it was trained on
(``"languages": ["en"]``; a translation model's ``source`` is its one);
an engine without a model file says what it handles in its class
attribute ``languages`` (``("any",)``, say). Each result then carries its
input's detected language (``toolkit.text.language``: an ISO 639-1 code,
or "und" when it cannot tell) and, when the model does not read that
language, a ``warning``. Results of a model that does not say (another
tool's checkpoint, an old model file, a third-party engine) or of an
engine of any language are left as they are.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

#: The languages of an engine that handles any text.
ANY = "any"
#: The probability below which a text's language is "und": a few words are many languages' (the identifier
#: gave "A dull film." 5 % Maltese, 4 % English), and a warning on them would be noise.
CONFIDENT = 0.5


def _metadata_languages(meta: dict) -> list[str] | None:
    """A model's languages by its metadata: its ``languages``, or a translation model's ``source``."""
    languages = meta.get("languages")
    if languages is None and isinstance(meta.get("source"), str):
        languages = [meta["source"]]
    if isinstance(languages, str):
        languages = [languages]
    return list(languages) if languages else None


def model_languages(engine: Any) -> tuple[str, ...] | None:
    """The languages ``engine`` reads with its model (:func:`_metadata_languages`), else the engine class's
    ``languages``; None when nothing says."""
    languages = _metadata_languages(engine.loaded_metadata() or {}) or getattr(type(engine), "languages", None)
    return tuple(languages) if languages else None


def input_text(item: Any) -> str:
    """The text of an input that tells its language: the text itself, a question's context, a dialogue's
    last turn."""
    if isinstance(item, str):
        return item
    if isinstance(item, Mapping):
        turns = item.get("turns")
        if isinstance(turns, list) and turns:
            last = turns[-1]
            return str(last.get("text", "") if isinstance(last, Mapping) else last)
        for key in ("context", "question", "text"):
            if isinstance(item.get(key), str):
                return item[key]
    return ""


def warning(languages: tuple[str, ...] | None, language: str) -> str | None:
    """What a result says when its input's ``language`` is not among the model's ``languages`` (nothing for an
    undetermined language, a model of any, or one that does not say)."""
    from toolkit.text.language import UNDETERMINED

    if languages is None or ANY in languages or language == UNDETERMINED or language in languages:
        return None
    return f"the input looks like {language}, which the model does not read (it reads {', '.join(languages)})"


def detected(texts: list[str]) -> list[str]:
    """The language of each text where the identifier is confident of it (:data:`CONFIDENT`), else "und"."""
    from toolkit.text.language import UNDETERMINED, ranked_many

    return [code if p >= CONFIDENT else UNDETERMINED for [(code, p)] in ranked_many(texts, 1)]


def training_languages(texts: Sequence[str], sample: int = 2000, share: float = 0.1) -> list[str]:
    """The languages of a model's training texts, as its metadata lists them: those of at least ``share`` of the
    texts whose language the identifier is sure of (:func:`detected`), among ``sample`` of them spread over the
    data, most frequent first; none when it is sure of none."""
    from toolkit.text.language import UNDETERMINED

    step = max(1, len(texts) // sample)
    found = Counter(language for language in detected([str(text) for text in texts[::step][:sample]])
                    if language != UNDETERMINED)
    total = sum(found.values())
    return [language for language, n in found.most_common() if n >= share * total]


def installed_models(engine_class: Any) -> dict[str, str]:
    """Language -> model file, for the models of ``engine_class`` installed beside its default model (the task's
    shipped models, a Chinese sentiment model beside the English one, say), each listed for the languages its
    metadata names; the default model first, then by file name."""
    from pathlib import Path

    from toolkit.model_config import read_metadata

    if engine_class.default_model is None:
        return {}
    default = Path(engine_class.default_model)
    found: dict[str, str] = {}
    for path in [default, *sorted(p for p in default.parent.glob("*.nlpt") if p != default)]:
        try:
            meta = read_metadata(path)
        except Exception:  # a broken or missing file must not hide the good ones
            continue
        if (meta.get("task"), meta.get("engine")) == (engine_class.task, engine_class.name):
            for language in _metadata_languages(meta) or []:
                found.setdefault(language, str(path))
    return found


def covered(engine_class: Any, model: str | None = None) -> list[str] | None:
    """The languages the engine reads (what ``tasks --json`` and ``--explain`` list): ``model``'s, by its
    metadata, else those of its installed models (:func:`installed_models`), else the class's own; None when
    nothing says. Without numpy: the command line's start-up reads it."""
    from toolkit.model_config import read_metadata

    if model is not None:
        try:
            return _metadata_languages(read_metadata(model))
        except Exception:  # not a model file (a checkpoint folder), or not readable: the run says why
            return None
    installed = installed_models(engine_class)
    if installed:
        return list(installed)
    return list(engine_class.languages) if engine_class.languages else None


def annotate(engine: Any, items: list, results: list[dict], found: list[str] | None = None) -> None:
    """Add each result's input ``language``, and a ``warning`` where the model does not read it, in place; for
    a model that says which languages it reads (not one of any, or one that does not say: their results could
    not warn, and an engine without a model would pay the identifier's start, numpy's import included, for
    nothing). ``found``: the inputs' languages when they are known already."""
    languages = model_languages(engine)
    if languages is None or ANY in languages:
        return
    for result, language in zip(results, found or detected([input_text(item) for item in items])):
        result["language"] = language
        said = warning(languages, language)
        if said is not None:
            result["warning"] = said


def unread(results: list) -> Counter:
    """How many of ``results`` carry a warning, by their input's language (what :func:`summary` reports)."""
    return Counter(r.get("language") for r in results if isinstance(r, dict) and "warning" in r)


def summary(counts: Counter, total: int, task: str) -> str | None:
    """One line for a run of ``total`` inputs of which ``counts`` (:func:`unread`, summed over the run) are in
    languages the model does not read, and what to do; None when there are none."""
    if not counts:
        return None
    languages = ", ".join(f"{n} in {language}" for language, n in counts.most_common())
    return (f"{sum(counts.values())} of {total} inputs are in a language the model does not read ({languages}):"
            f" their results are unreliable; pass --model with a {task} model for that language")
