"""The Python API: toolkit.pipeline and toolkit.tasks."""

from __future__ import annotations

import pickle
import subprocess
import sys
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

import pytest

import toolkit
from toolkit.api import Pipeline
from toolkit.engine import OptionError
from toolkit.plugins import UnknownTaskError

DOC = "The council met on Monday. It approved the plan. Work starts in May. Nobody objected."


def test_tasks_maps_tasks_to_engines_with_descriptions():
    tasks = toolkit.tasks()
    assert "lead" in tasks["summarize"]
    assert tasks["summarize"]["lead"].startswith("First N sentences")
    assert next(iter(tasks["summarize"])) == "trained"  # the first registered is the default


def test_string_in_dict_out():
    summarize = toolkit.pipeline("summarize", sentences=2)
    result = summarize(DOC)
    assert summarize.engine.name == "trained"
    assert result["summary"] == "The council met on Monday. It approved the plan."
    # Listed in document order, ranked by the engine's scores (1 = the best).
    sentences = result["sentences"]
    assert sorted(s["rank"] for s in sentences) == [1, 2] and [s["start"] for s in sentences] == [0, 27]
    best_first = sorted(sentences, key=lambda s: -s["score"])
    assert [s["rank"] for s in best_first] == [1, 2]


@pytest.mark.parametrize("container", [list, tuple])
def test_list_or_tuple_in_list_out(container):
    summarize = toolkit.pipeline("summarize", engine="lead", sentences=1)
    results = summarize(container([DOC, "One. Two."]))
    assert isinstance(results, list)
    assert [r["summary"] for r in results] == ["The council met on Monday.", "One."]


def test_generator_in_lazy_iterator_out_pulled_in_batches():
    pulled = []

    def texts():
        for i in range(7):
            pulled.append(i)
            yield f"Text {i}. More."

    summarize = toolkit.pipeline("summarize", engine="lead", sentences=1, batch_size=3)
    results = summarize(texts())
    assert pulled == []
    assert next(results)["summary"] == "Text 0."
    assert pulled == [0, 1, 2]
    assert [r["summary"] for r in results] == [f"Text {i}." for i in range(1, 7)]


def test_empty_list_gives_empty_list():
    assert toolkit.pipeline("summarize")([]) == []


def test_stamp_names_tool_plugin_engine_and_model():
    stamp = toolkit.pipeline("summarize", engine="lead").stamp()
    assert stamp == {
        "tool": "nlp-tool",
        "tool_version": toolkit.__version__,
        "plugin": "summarization",
        "plugin_version": toolkit.__version__,
        "engine": "summarize:lead",
        "engine_version": "1.0",
        "model": None,
        "model_version": None,
    }


def test_run_is_a_pipeline_called_once():
    assert toolkit.run("summarize", DOC, sentences=2) == toolkit.pipeline("summarize", sentences=2)(DOC)
    results = toolkit.run("summarize", [DOC, "One. Two."], engine="lead", sentences=1)
    assert [r["summary"] for r in results] == ["The council met on Monday.", "One."]
    lazy = toolkit.run("summarize", iter([DOC]), "lead", None, sentences=1)
    assert not isinstance(lazy, list) and next(lazy)["summary"] == "The council met on Monday."
    with pytest.raises(OptionError, match="option 'sentences' must be at least 0"):
        toolkit.run("summarize", DOC, sentences=-1)
    with pytest.raises(UnknownTaskError, match="unknown task 'nope'"):
        toolkit.run("nope", DOC)


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"task": "nope"}, UnknownTaskError, "unknown task 'nope'"),
        ({"task": "summarize", "engine": "nope"}, UnknownTaskError, "no engine 'nope'"),
        ({"task": "summarize", "colour": "red"}, OptionError, "no option 'colour'"),
        ({"task": "summarize", "sentences": "2"}, OptionError, "must be of type int"),
        ({"task": "summarize", "sentences": -1}, OptionError, "at least 0"),
        ({"task": "summarize", "engine": "centrality", "model": "x.npz"}, OptionError, "takes no model file"),
        ({"task": "qa", "engine": "window", "model": "x.nlpt"}, OptionError, "qa:window is rule-based and takes no"),
        ({"task": "summarize", "batch_size": 0}, ValueError, "batch_size"),
    ],
)
def test_bad_arguments_raise_clear_errors(kwargs, error, message):
    with pytest.raises(error, match=message):
        toolkit.pipeline(**kwargs)


@pytest.mark.parametrize(
    "batch_size, error, message",
    [
        ("2", TypeError, "batch_size must be an int, not str ('2')"),
        (2.5, TypeError, "batch_size must be an int, not float (2.5)"),
        (2.0, TypeError, "batch_size must be an int, not float (2.0)"),
        (True, TypeError, "batch_size must be an int, not bool (True)"),
        (None, TypeError, "batch_size must be an int, not NoneType (None)"),
        (0, ValueError, "batch_size must be at least 1, not 0"),
        (-3, ValueError, "batch_size must be at least 1, not -3"),
    ],
)
def test_batch_size_must_be_a_positive_int(batch_size, error, message):
    with pytest.raises(error) as info:
        toolkit.pipeline("classify", batch_size=batch_size)
    assert str(info.value) == message
    with pytest.raises(error):
        toolkit.run("summarize", ["One. Two."], engine="lead", batch_size=batch_size)


@pytest.mark.parametrize("task, fields, options", [
    ("classify", ("text", "label"), {"engine": "ngram"}),
    ("translate", ("source", "target"), {"source": "en", "target": "de"}),
])
def test_train_names_a_bad_record_by_its_place_in_the_data(tmp_path, task, fields, options):
    from toolkit.datasets import split_positions
    from toolkit.engine import DataError

    records = [{fields[0]: f"record {i} is {'good' if i % 2 else 'bad'}", fields[1]: "pos" if i % 2 else "neg"}
               for i in range(1, 41)]
    records[24][fields[0]] = " "  # record 25
    in_validation = set()
    for seed in range(4):
        in_validation.add(24 in split_positions(records, 0.5, seed)[1])
        with pytest.raises(DataError) as info:
            toolkit.train(task, records, output=tmp_path / "m.nlpt", valid_split=0.5, seed=seed, progress=False,
                          **options)
        assert str(info.value) == f"training data: record 25 has an empty {fields[0]}"
    assert in_validation == {True, False}  # the record was held out for some seeds, fitted on for others
    assert not (tmp_path / "m.nlpt").exists()


@pytest.mark.parametrize("bad, name", [(42, "int"), (b"bytes. in.", "bytes"), ({"text": "A b."}, "dict")])
def test_wrong_kind_of_input_is_a_type_error(bad, name):
    with pytest.raises(TypeError, match=f"summarize:lead takes a str or an iterable of them, not {name}"):
        toolkit.pipeline("summarize", engine="lead")(bad)


def test_takes_model_follows_default_model_and_training_unless_set():
    from toolkit.engine import Engine, takes_model

    class RuleBased(Engine):
        task, name = "t", "rules"

        def run(self, inputs):
            return [{} for _ in inputs]

    class Shipped(RuleBased):
        default_model = "shipped.nlpt"

    class ReadsOthers(RuleBased):
        takes_model = True

    assert [takes_model(c) for c in (RuleBased, Shipped, ReadsOthers)] == [False, True, True]
    with pytest.raises(OptionError, match=r"engine t:rules is rule-based and takes no model file \(model=,"
                                          r" --model\)"):
        RuleBased(model="m.nlpt")
    assert ReadsOthers(model="m.nlpt").model == "m.nlpt"


def test_pipeline_pickles_and_runs_in_worker_processes():
    summarize = toolkit.pipeline("summarize", sentences=1)
    copy = pickle.loads(pickle.dumps(summarize))
    assert isinstance(copy, Pipeline) and copy(DOC) == summarize(DOC)
    with ProcessPoolExecutor(max_workers=2) as pool:
        assert list(pool.map(summarize, [DOC, "A b. C d."])) == [summarize(DOC), summarize("A b. C d.")]


def test_pipeline_is_safe_to_call_from_threads():
    summarize = toolkit.pipeline("summarize", sentences=2)
    docs = [f"Doc {i} starts. It goes on. It ends {i}." for i in range(64)]
    expected = [summarize(d) for d in docs]
    with ThreadPoolExecutor(max_workers=8) as pool:
        assert list(pool.map(summarize, docs)) == expected


def test_hookimpl_import_is_cheap_and_api_is_lazy():
    code = (
        "import sys\n"
        "from toolkit import hookimpl\n"
        "assert 'toolkit.api' not in sys.modules and 'numpy' not in sys.modules\n"
        "import toolkit\n"
        "assert toolkit.pipeline('summarize', engine='lead', sentences=1)('A b. C d.')['summary'] == 'A b.'\n"
        "assert toolkit.Engine.__module__ == 'toolkit.engine'\n"
        "print('numpy' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_unknown_attribute_of_toolkit_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        toolkit.nope


class Touchy(toolkit.Engine):
    """Fails a batch holding an input with BOOM; counts the batches it is given."""

    task, name = "touchy", "picky"
    calls: list = []

    def run(self, inputs):
        Touchy.calls.append(list(inputs))
        if any("BOOM" in x for x in inputs):
            raise ValueError("cannot take BOOM")
        return [{"text": x.upper()} for x in inputs]


class Short(toolkit.Engine):
    """Breaks the contract: one result, whatever the batch; a tuple for two inputs."""

    task, name = "touchy", "short"

    def run(self, inputs):
        return ({"n": 1}, {"n": 2}) if len(inputs) == 2 else [{"n": len(inputs)}]


@pytest.fixture
def registry(tmp_path, monkeypatch):
    from toolkit import hookimpl
    from toolkit.plugins import PluginInfo, load_registry

    class Plugin:
        @hookimpl
        def register_engines(self, register):
            register("touchy", "picky", Touchy, "Refuses BOOM.")
            register("touchy", "short", Short, "Loses results.")

    monkeypatch.setenv("NLP_TOOL_HOME", str(tmp_path))
    registry = load_registry((), entry_points=[])
    registry.add_plugin(Plugin(), PluginInfo("touchy", "1", "package"))
    Touchy.calls = []
    return registry


def test_an_engine_returning_another_count_of_results_is_a_clear_error(registry):
    short = Pipeline("touchy", "short", registry=registry)
    assert short("one") == {"n": 1}
    with pytest.raises(RuntimeError, match=r"^engine touchy:short returned 1 results for 3 inputs$"):
        short(["a", "b", "c"])
    with pytest.raises(RuntimeError, match=r"^engine touchy:short returned a tuple, not a list of 2 results$"):
        short(["a", "b"])
    with pytest.raises(RuntimeError, match="returned 1 results for 3 inputs"):
        list(short(iter(["a", "b", "c"])))


def test_on_error_raise_lets_the_engines_exception_through(registry):
    with pytest.raises(ValueError, match="cannot take BOOM"):
        Pipeline("touchy", "picky", registry=registry)(["fine", "BOOM"])
    assert Touchy.calls == [["fine", "BOOM"]]  # not retried


def test_on_error_skip_gives_error_records_in_input_order_beside_the_good_results(registry):
    from toolkit import ErrorRecord

    picky = Pipeline("touchy", "picky", registry=registry, on_error="skip", batch_size=4)
    results = picky(["a", "BOOM 1", "b", "c", "BOOM 2", "d"])
    assert [r if isinstance(r, dict) else r.error for r in results] == [
        {"text": "A"}, "ValueError: cannot take BOOM", {"text": "B"}, {"text": "C"},
        "ValueError: cannot take BOOM", {"text": "D"},
    ]
    assert isinstance(results[1], ErrorRecord) and isinstance(results[1].exception, ValueError)
    lazy = picky(iter(["BOOM", "e"]))
    assert isinstance(next(lazy), ErrorRecord) and next(lazy) == {"text": "E"}
    assert picky("BOOM").error == "ValueError: cannot take BOOM"
    short = Pipeline("touchy", "short", registry=registry, on_error="skip")
    assert short(["a", "b", "c"]) == [{"n": 1}] * 3  # the batch failed the count check; one at a time, each is fine


def test_a_failing_batch_is_retried_one_input_at_a_time(registry):
    picky = Pipeline("touchy", "picky", registry=registry, on_error="skip", batch_size=3)
    picky(["a", "BOOM", "b", "c", "d"])
    # The first batch fails and is run again input by input; the second batch is fine as it is.
    assert Touchy.calls == [["a", "BOOM", "b"], ["a"], ["BOOM"], ["b"], ["c", "d"]]


def test_on_error_is_raise_or_skip(registry):
    with pytest.raises(ValueError, match="on_error must be 'raise' or 'skip', not 'stop'"):
        Pipeline("touchy", "picky", registry=registry, on_error="stop")
    assert toolkit.pipeline("summarize", engine="lead", on_error="skip").on_error == "skip"
