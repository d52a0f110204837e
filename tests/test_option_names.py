"""Renamed options (issue 17): the new name works, the old one still does with a warning, both is an error."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
from click.testing import CliRunner

import toolkit
import toolkit.api
from toolkit.cli import make_cli
from toolkit.engine import Engine, Option, OptionError, train_settings
from toolkit.errors import RegistryError
from toolkit.nn import read_model_file
from toolkit import hookimpl
from toolkit.plugins import PluginInfo, load_registry
from toolkit.registration import check_engine_class
from toolkit_plugins.classification.cnn import CnnClassifier
from toolkit_plugins.classification.ensemble import EnsembleClassifier
from toolkit_plugins.summarization.trained import TrainedSummarizer
from toolkit_plugins.translation.engine import TransformerTranslator

# (engine class, old name, new name, a value other than the default)
RENAMED = [
    (CnnClassifier, "lr", "learning_rate", 0.01),
    (CnnClassifier, "maxlen", "max_len", 16),
    (CnnClassifier, "num_words", "vocab_size", 100),
    (EnsembleClassifier, "lr", "learning_rate", 0.01),
    (EnsembleClassifier, "maxlen", "max_len", 16),
    (EnsembleClassifier, "num_words", "vocab_size", 100),
    (TrainedSummarizer, "lr", "learning_rate", 0.01),
    (TrainedSummarizer, "maxlen", "max_len", 16),
    (TrainedSummarizer, "num_words", "vocab_size", 100),
    (TransformerTranslator, "lr", "learning_rate", 0.01),
    (TransformerTranslator, "src", "source", "fr"),
    (TransformerTranslator, "tgt", "target", "fr"),
]
IDS = [f"{cls.task}:{cls.name}:{old}" for cls, old, _, _ in RENAMED]


@pytest.mark.parametrize("cls, old, new, value", RENAMED, ids=IDS)
def test_old_training_keyword_warns_and_means_the_new_one(cls, old, new, value):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        current = train_settings(cls, {new: value})
    assert current[new] == value and old not in current
    with pytest.warns(DeprecationWarning, match=f"option '{old}' is deprecated, use '{new}'") as caught:
        assert train_settings(cls, {old: value}) == current
    assert caught[0].filename == __file__  # the caller's line, so that Python shows it in a script
    with pytest.raises(OptionError, match=f"give '{new}' or its deprecated name '{old}', not both"):
        train_settings(cls, {old: value, new: value})


@pytest.fixture
def train_calls(monkeypatch) -> list[dict]:
    """The keywords `nlp-tool train` passes to toolkit.api.train (which does not run)."""
    calls: list[dict] = []
    monkeypatch.setattr(toolkit.api, "train", lambda *args, **kwargs: calls.append(kwargs) or {})
    return calls


@pytest.fixture(scope="module")
def cli():
    registry = load_registry(entry_points=[])
    return make_cli(lambda: registry)


def cli_train(cli, task: str, engine: str, *flags: str):
    return CliRunner().invoke(cli, ["train", task, "data.tsv", "--engine", engine, "-o", "m.nlpt", *flags])


@pytest.mark.parametrize("cls, old, new, value", RENAMED, ids=IDS)
def test_old_training_flag_warns_on_stderr_and_means_the_new_one(cls, old, new, value, train_calls, cli, tmp_path,
                                                                  monkeypatch):
    monkeypatch.chdir(tmp_path)
    old_flag, new_flag = "--" + old.replace("_", "-"), "--" + new.replace("_", "-")
    current = cli_train(cli, cls.task, cls.name, new_flag, str(value))
    assert current.exit_code == 0 and current.stderr == "", current.output
    deprecated = cli_train(cli, cls.task, cls.name, old_flag, str(value))
    assert deprecated.exit_code == 0, deprecated.output
    assert deprecated.stderr == f"nlp-tool: warning: {old_flag} is deprecated, use {new_flag}\n"
    assert train_calls[0] == train_calls[1] and train_calls[0][new] == value
    both = cli_train(cli, cls.task, cls.name, old_flag, str(value), new_flag, str(value))
    assert both.exit_code == 2 and f"give {new_flag} or its deprecated name {old_flag}, not both" in both.stderr
    assert len(train_calls) == 2


def test_help_shows_the_new_names_only(cli):
    shown = CliRunner().invoke(cli, ["train", "translate", "--help"]).output
    assert "--source, --from" in shown and "--learning-rate" in shown
    assert "--src" not in shown and "--lr " not in shown
    shown = CliRunner().invoke(cli, ["train", "classify", "--help"]).output
    assert "--max-len" in shown and "--vocab-size" in shown and "--maxlen" not in shown and "--num-words" not in shown


def test_tasks_json_lists_the_old_names(cli):
    listed = {(t["task"], t["engine"]): t for t in json.loads(CliRunner().invoke(cli, ["tasks", "--json"]).output)}
    options = listed["translate", "transformer"]["train_options"]
    assert (options["source"]["deprecated"], options["learning_rate"]["deprecated"]) == (["src"], ["lr"])
    assert "deprecated" not in options["epochs"]


class Renamed(Engine):
    task, name = "t", "renamed"
    options = {"max_len": Option(int, 5, "Longest.", minimum=1, deprecated=("maxlen",))}

    def run(self, inputs):
        return [{"max_len": self.settings["max_len"]} for _ in inputs]


def test_old_run_keyword_warns_and_means_the_new_one():
    assert Renamed(max_len=3).settings == {"max_len": 3}
    with pytest.warns(DeprecationWarning, match="option 'maxlen' is deprecated, use 'max_len'"):
        assert Renamed(maxlen=3).settings == {"max_len": 3}
    with pytest.raises(OptionError, match="give 'max_len' or its deprecated name 'maxlen', not both"):
        Renamed(maxlen=3, max_len=4)


def test_the_warning_names_the_callers_line_past_the_toolkit(tmp_path):
    with pytest.warns(DeprecationWarning) as caught:
        toolkit.train("classify", classify_records(20), "cnn", tmp_path / "m.nlpt", valid_split=0, epochs=1,
                      dim=4, filters=4, hidden=4, maxlen=8, progress=False)
    assert [(w.filename, str(w.message)) for w in caught] == [
        (__file__, "option 'maxlen' is deprecated, use 'max_len'")]


class RenamedPlugin:
    @hookimpl
    def register_engines(self, register):
        register(Renamed.task, Renamed.name, Renamed, "An engine with a renamed option.")


def test_old_flag_of_a_task_verb_warns_and_means_the_new_one(tmp_path, monkeypatch):
    monkeypatch.setenv("NLP_TOOL_HOME", str(tmp_path))
    registry = load_registry(builtin=(), entry_points=[])
    registry.add_plugin(RenamedPlugin(), PluginInfo("renamed", "1", "package", package="renamed"))
    cli = make_cli(lambda: registry)
    current = CliRunner().invoke(cli, ["t", "-f", "json", "--max-len", "3"], input="x\n")
    deprecated = CliRunner().invoke(cli, ["t", "-f", "json", "--maxlen", "3"], input="x\n")
    assert current.exit_code == deprecated.exit_code == 0, deprecated.output
    assert json.loads(current.stdout)[0]["result"] == {"max_len": 3} and current.stdout == deprecated.stdout
    assert deprecated.stderr == "nlp-tool: warning: --maxlen is deprecated, use --max-len\n"
    both = CliRunner().invoke(cli, ["t", "--maxlen", "3", "--max-len", "3"], input="x\n")
    assert both.exit_code == 2 and "give --max-len or its deprecated name --maxlen, not both" in both.stderr


@pytest.mark.parametrize("old", ["max_len", "text", "not a name"])
def test_registry_refuses_an_old_name_that_is_an_option_reserved_or_no_identifier(old):
    engine_class = type("Bad", (Renamed,), {
        "options": {"max_len": Option(int, 5, "Longest.", deprecated=(old,))}, "name": "bad"})
    with pytest.raises(RegistryError, match=rf"t:bad: deprecated option names \['{old}'\]"):
        check_engine_class("t", "bad", engine_class, [])


def test_registry_refuses_an_old_name_whose_flag_is_a_sibling_engines_option():
    sibling = type("Sibling", (Renamed,), {"options": {"maxlen": Option(int, 5, "Longest.")}, "name": "sibling"})
    with pytest.raises(RegistryError, match="t:renamed: flag --maxlen of option 'max_len' is already the flag of"
                                            " option 'maxlen' of engine t:sibling"):
        check_engine_class("t", "renamed", Renamed, [sibling])
    check_engine_class("t", "renamed", Renamed, [])


def classify_records(n: int) -> list[dict]:
    words = {"pos": "good great fine".split(), "neg": "bad awful poor".split()}
    return [{"text": f"the {words[label][i % 3]} film {i}", "label": label}
            for i in range(n) for label in ("pos", "neg")]


def test_a_model_trained_under_the_old_names_is_the_model_of_the_new_ones(tmp_path):
    small = {"epochs": 2, "dim": 8, "filters": 8, "hidden": 8, "batch": 16}
    records = classify_records(40)
    CnnClassifier.train(records, str(tmp_path / "new.nlpt"), progress=False, learning_rate=0.01, max_len=8,
                        vocab_size=30, **small)
    with pytest.warns(DeprecationWarning):
        CnnClassifier.train(records, str(tmp_path / "old.nlpt"), progress=False, lr=0.01, maxlen=8, num_words=30,
                            **small)
    (new_config, new_arrays), (old_config, old_arrays) = (read_model_file(tmp_path / f"{n}.nlpt")
                                                          for n in ("new", "old"))
    assert old_config["metadata"]["training"]["options"] == new_config["metadata"]["training"]["options"]
    assert old_arrays.keys() == new_arrays.keys()
    assert all(np.array_equal(old_arrays[k], new_arrays[k]) for k in new_arrays)
    texts = ["a good film", "an awful one"]
    assert (CnnClassifier(model=str(tmp_path / "old.nlpt")).run(texts)
            == CnnClassifier(model=str(tmp_path / "new.nlpt")).run(texts))


def test_translation_languages_under_the_old_names(tmp_path):
    pairs = [{"source": f"a {w} b.", "target": f"x {w[::-1]} y."} for w in ("cat", "dog", "man", "sun")] * 5
    tiny = {"epochs": 1, "dim": 16, "heads": 2, "encoder_layers": 1, "decoder_layers": 1, "ffn": 16,
            "vocab_size": 30, "max_len": 16}
    with pytest.warns(DeprecationWarning):  # src and tgt: two warnings
        report = TransformerTranslator.train(pairs, str(tmp_path / "m.nlpt"), progress=False, src="en", tgt="fr",
                                             **tiny)
    assert (report["source"], report["target"]) == ("en", "fr")
    meta = read_model_file(tmp_path / "m.nlpt")[0]["metadata"]
    assert (meta["source"], meta["target"]) == ("en", "fr")
    assert len(TransformerTranslator(model=str(tmp_path / "m.nlpt"), beam=1).run(["a cat b."])) == 1


# The English sentiment model was trained again after the renaming (issue 24): the renamed options of its engine
# are tested on a model trained under the old names (test_a_model_trained_under_the_old_names_is_the_model_...).
@pytest.mark.parametrize("engine_class, old", [
    (TrainedSummarizer, ("lr", "maxlen", "num_words")),
    (TransformerTranslator, ("lr", "src", "tgt")),
])
def test_shipped_models_keep_their_old_option_names_and_still_run(engine_class, old):
    config = read_model_file(engine_class.default_model)[0]
    assert set(old) <= set(config["metadata"]["training"]["options"])  # trained before the renaming
    engine = engine_class()
    text = "The cat sat on the mat. It was a good day for the cat. Then it rained."
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(engine.run([text])) == 1
