"""Conformance checks every engine must pass, for plugin authors' test suites.

    from toolkit.testing import check_engine
    from my_plugin import MyEngine

    def test_my_engine_conforms():
        check_engine(MyEngine)

or one pytest test per check (in the spirit of scikit-learn's
``parametrize_with_checks``)::

    @pytest.mark.parametrize("check", engine_checks(MyEngine), ids=lambda c: c.__name__)
    def test_my_engine(check):
        check()

Each check raises ``AssertionError`` with a message naming what broke; an
exception of another kind from the engine becomes an ``AssertionError``
naming the check and that exception. Engines that can be trained also pass
:func:`check_training`.
"""

from __future__ import annotations

import functools
import json
import os
import pickle
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable

from toolkit.contracts import TaskContract
from toolkit.engine import DataError, Engine, can_train, train_settings

TEXTS = [
    "The committee approved the budget on Tuesday. Members debated for hours. A final vote is due in May.",
    "Short one.",
    "No end punctuation here",
    "Dr. Smith paid $3.50 for coffee in the U.S. on Jan. 5. She liked it!\n\nA new paragraph starts here.",
]
UNICODE_TEXTS = [
    "今天天气很好。我们去公园吧！你来吗？",
    "Ça coûte 5 €, n’est-ce pas ? Très cher ! Здравствуйте, мир.",
    "مرحبا بالعالم. هذه جملة ثانية.",
    "Emoji 🙂👍🏽 and combining e\u0301 letters. Zero\u200bwidth space.",
]
LONG_TEXT = " ".join(f"Sentence number {i} talks about topic {i % 17} at some length." for i in range(4000))


def _names_failures(check: Callable[..., None]) -> Callable[..., None]:
    """``check``, with any exception other than AssertionError turned into one naming the check and the exception.

    A check reports a broken contract as AssertionError; an engine that
    raises something else (ValueError, TypeError, ...) is broken too, and the
    plugin author should read which check met it, not a bare traceback.
    """

    @functools.wraps(check)
    def checked(*args: Any, **kwargs: Any) -> None:
        try:
            check(*args, **kwargs)
        except AssertionError:
            raise
        except Exception as error:
            raise AssertionError(f"{check.__name__}: unexpected {type(error).__name__}: {error}") from error

    return checked


def _as_inputs(engine_class: type[Engine], texts: list[str]) -> list:
    if engine_class.inputs == "question+context":
        return [{"question": "What is this about?", "context": text} for text in texts]
    if engine_class.inputs == "dialogue":
        return [{"turns": ["Hello, can you help me?", text]} for text in texts]
    return list(texts)


def _check_results(engine: Engine, inputs: list, results: Any, what: str) -> None:
    assert isinstance(results, list), f"{what}: run() returned {type(results).__name__}, not a list"
    assert len(results) == len(inputs), f"{what}: {len(inputs)} inputs gave {len(results)} results"
    for i, result in enumerate(results):
        assert isinstance(result, dict), f"{what}: result {i} is a {type(result).__name__}, not a dict"
        try:
            json.dumps(result, allow_nan=False)
        except (TypeError, ValueError) as error:
            raise AssertionError(f"{what}: result {i} is not JSON-serialisable: {error}") from error
        assert isinstance(engine.format_text(result), str), f"{what}: format_text() must return a str"


@_names_failures
def check_attributes(engine_class: type[Engine]) -> None:
    """Class attributes describe the engine without instantiating it, as the registry requires them."""
    from toolkit.errors import RegistryError
    from toolkit.registration import check_engine_class

    assert isinstance(engine_class, type) and issubclass(engine_class, Engine), "not a toolkit.engine.Engine subclass"
    try:
        # The rules registration applies (names, options, flags, record fields), on the engine alone.
        check_engine_class(engine_class.task, engine_class.name, engine_class, [])
    except RegistryError as error:
        raise AssertionError(f"registration would refuse it: {error}") from None
    for attribute in ("description", "version"):
        value = getattr(engine_class, attribute)
        assert isinstance(value, str) and value.strip(), f"class attribute {attribute!r} must be a non-empty str"
    assert engine_class.default_model is None or isinstance(engine_class.default_model, str)


@_names_failures
def check_result_shape(engine_class: type[Engine]) -> None:
    """run() returns one JSON-serialisable dict per input, and stamp() says what ran."""
    engine = engine_class()
    inputs = _as_inputs(engine_class, TEXTS)
    _check_results(engine, inputs, engine.run(inputs), "batch")
    stamp = engine.stamp()
    for key in ("engine", "engine_version", "model", "model_version"):
        assert key in stamp, f"stamp() lacks {key!r}"
    json.dumps(stamp)


def task_contract(engine_class: type[Engine]) -> TaskContract | None:
    """The contract of the engine's task: its own, else the one a loaded plugin declared for the task."""
    if engine_class.contract is not None:
        return engine_class.contract
    from toolkit.plugins import get_registry

    found = get_registry().contracts.get(engine_class.task)
    return found[0] if found else None


@_names_failures
def check_contract(engine_class: type[Engine]) -> None:
    """Results keep the task's contract (toolkit.contracts): its keys and types, and offsets that quote the input;
    the engine takes the task's inputs and its shared options as the task declares them."""
    contract = task_contract(engine_class)
    if contract is None:
        return  # a task that declares no contract holds its engines to none
    problem = contract.engine_problem(engine_class.inputs, engine_class.options)
    assert problem is None, problem
    engine = engine_class()
    inputs = _as_inputs(engine_class, [*TEXTS, *UNICODE_TEXTS])
    for item, result in zip(inputs, engine.run(inputs)):
        problem = contract.problem(item, result)
        assert problem is None, f"input {item!r:.50}: {problem}"


@_names_failures
def check_batch_equals_one_by_one(engine_class: type[Engine]) -> None:
    """A result does not depend on the other inputs of its batch or on the batch size."""
    engine = engine_class()
    inputs = _as_inputs(engine_class, TEXTS + UNICODE_TEXTS)
    batch = engine.run(inputs)
    single = [engine.run([x])[0] for x in inputs]
    assert batch == single, "run(batch) differs from run([x]) one input at a time"
    assert engine.run(inputs[::-1]) == batch[::-1], "results depend on the order of the batch"


@_names_failures
def check_empty_input(engine_class: type[Engine]) -> None:
    """An empty batch gives no results; an empty or blank input gives a result, or a ValueError whose message
    is one line saying the input is empty (an engine whose answer would be a guess about nothing: a classifier,
    or extractive question answering from an empty context), never another exception."""
    engine = engine_class()
    assert engine.run([]) == [], "run([]) must return []"
    what = {"question+context": "context", "dialogue": "turn"}.get(engine_class.inputs, "text")
    for item in _as_inputs(engine_class, ["", "   \n\t "]):
        try:
            results = engine.run([item])
        except ValueError as error:
            message = str(error)
            assert message.strip() and "\n" not in message and "empty" in message.lower(), (
                f"empty {what} {item!r}: a ValueError must say in one line that the {what} is empty, not {message!r}"
            )
        else:
            _check_results(engine, [item], results, f"empty {what}")


@_names_failures
def check_long_input(engine_class: type[Engine]) -> None:
    """A very long text (about 250,000 characters) is handled, not rejected or crashed on."""
    engine = engine_class()
    inputs = _as_inputs(engine_class, [LONG_TEXT])
    _check_results(engine, inputs, engine.run(inputs), "long text")


@_names_failures
def check_unicode(engine_class: type[Engine]) -> None:
    """Non-Latin scripts, emoji, combining and zero-width characters."""
    engine = engine_class()
    inputs = _as_inputs(engine_class, UNICODE_TEXTS)
    _check_results(engine, inputs, engine.run(inputs), "unicode")


@_names_failures
def check_picklable(engine_class: type[Engine]) -> None:
    """An engine survives pickling (to reach worker processes) and gives the same results after."""
    engine = engine_class()
    inputs = _as_inputs(engine_class, TEXTS)
    try:
        copy = pickle.loads(pickle.dumps(engine))
    except Exception as error:
        raise AssertionError(f"the engine is not picklable: {error}") from error
    assert copy.run(inputs) == engine.run(inputs), "a pickled copy gives different results"


@_names_failures
def check_thread_safe(engine_class: type[Engine]) -> None:
    """Concurrent run() calls on one instance give the same results as sequential ones."""
    engine = engine_class()
    inputs = _as_inputs(engine_class, TEXTS + UNICODE_TEXTS)
    expected = [engine.run([x]) for x in inputs] * 4
    with ThreadPoolExecutor(max_workers=4) as pool:
        got = list(pool.map(lambda x: engine.run([x]), inputs * 4))
    assert got == expected, "concurrent calls give different results"


CHECKS: tuple[Callable[[type[Engine]], None], ...] = (
    check_attributes,
    check_result_shape,
    check_contract,
    check_batch_equals_one_by_one,
    check_empty_input,
    check_long_input,
    check_unicode,
    check_picklable,
    check_thread_safe,
)


def engine_checks(engine_class: type[Engine]) -> list[Callable[[], None]]:
    """Every check bound to ``engine_class``, each named after its check, for pytest parametrization."""
    checks = []
    for check in CHECKS:
        bound = functools.partial(check, engine_class)
        functools.update_wrapper(bound, check)
        checks.append(bound)
    return checks


def check_engine(engine_class: type[Engine]) -> None:
    """Run every conformance check on ``engine_class`` (instantiated with its defaults)."""
    for check in engine_checks(engine_class):
        check()


@_names_failures
def check_training(
    engine_class: type[Engine], records: list[dict], directory: str | os.PathLike, **options: Any
) -> None:
    """``train`` and ``evaluate`` keep their contract, on ``records`` (a few labelled records) in ``directory``.

    Checks: no records is a DataError; ``train`` (with ``options``, its
    ``train_options``) returns a JSON-serialisable dict and writes exactly
    one file, at ``output``, with no temporary files left beside it; the
    engine loads that file as its ``model`` and ``evaluate`` returns
    JSON-serialisable metrics; ``valid`` records are accepted.
    """
    assert can_train(engine_class), "the engine declares no record_fields or does not implement train"
    for field in engine_class.record_fields:
        assert all(field in r for r in records), f"every record needs the field {field!r}"
    directory = os.fspath(directory)
    settings = train_settings(engine_class, options)
    output = os.path.join(directory, "check-training.nlpt")
    try:
        engine_class.train([], output, **settings)
    except DataError:
        pass
    else:
        raise AssertionError("train([]) must raise toolkit.engine.DataError")
    before = set(os.listdir(directory))
    report = engine_class.train(records, output, valid=records[:2], seed=0, progress=False, **settings)
    assert isinstance(report, dict), f"train returned {type(report).__name__}, not a dict"
    try:
        json.dumps(report, allow_nan=False)
    except (TypeError, ValueError) as error:
        raise AssertionError(f"the train report is not JSON-serialisable: {error}") from error
    written = set(os.listdir(directory)) - before
    assert written == {"check-training.nlpt"}, f"train must write one file at output, wrote {sorted(written)}"
    metrics = engine_class(model=output).evaluate(records)
    assert isinstance(metrics, dict), f"evaluate returned {type(metrics).__name__}, not a dict"
    try:
        json.dumps(metrics, allow_nan=False)
    except (TypeError, ValueError) as error:
        raise AssertionError(f"the metrics of evaluate are not JSON-serialisable: {error}") from error
