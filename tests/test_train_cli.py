"""`nlp-tool train` / `nlp-tool evaluate`, toolkit.train / toolkit.evaluate, on a tiny real trainable engine."""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
import textwrap

import pytest
from click.testing import CliRunner

import toolkit.api
from toolkit import hookimpl
from toolkit.cli import make_cli
from toolkit.cli.render import report_lines
from toolkit.engine import DataError, Engine, Option, OptionError, can_evaluate, can_train
from toolkit.plugins import PluginInfo, load_registry
from toolkit.testing import check_training


class WordCount(Engine):
    """Multinomial naive Bayes on whitespace words: small, but a real model in a real model file."""

    task = "tag"
    name = "words"
    description = "Naive Bayes on word counts."
    version = "1.0"
    options = {"uniform": Option(bool, False, "Ignore the class priors.")}
    record_fields = ("text", "label")
    train_options = {"smoothing": Option(float, 1.0, "Add-k smoothing of the word counts.", minimum=0, min_open=True)}

    def __init__(self, model=None, **options):
        super().__init__(model, **options)
        from toolkit.nn.model_file import read_model_file

        config, arrays = read_model_file(self.model) if self.model else ({"metadata": {}}, {})
        meta = config["metadata"]
        self.labels, self.vocab, self.smoothing = meta.get("labels", []), meta.get("vocab", {}), meta.get("smoothing")
        self.counts, self.priors = arrays.get("counts"), arrays.get("priors")

    @classmethod
    def train(cls, records, output, *, valid=None, seed=0, progress=None, smoothing=1.0):
        import numpy as np

        from toolkit.nn import save_arrays

        if not records:
            raise DataError("no records")
        if any(not r["text"].strip() for r in records):
            raise DataError("empty texts in the training data")
        labels = sorted({r["label"] for r in records})
        if len(labels) < 2:
            raise DataError(f"a single class ({labels[0]!r}): at least two are needed")
        vocab = {w: i for i, w in enumerate(sorted({w for r in records for w in r["text"].lower().split()}))}
        counts = np.zeros((len(labels), len(vocab)))
        priors = np.zeros(len(labels))
        for r in records:
            k = labels.index(r["label"])
            priors[k] += 1
            for w in r["text"].lower().split():
                counts[k, vocab[w]] += 1
        save_arrays(output, {"counts": counts, "priors": priors / priors.sum()},
                    {"labels": labels, "vocab": vocab, "smoothing": smoothing})
        report = {"examples": len(records), "valid_texts": [r["text"] for r in valid or []]}
        if valid:
            report["metrics"] = cls(model=output).evaluate(valid)
        return report

    def run(self, inputs):
        if self.counts is None:
            raise ValueError("no model: train one with `nlp-tool train tag`")
        results = []
        for text in inputs:
            scores = []
            for k in range(len(self.labels)):
                row, total = self.counts[k], self.counts[k].sum() + self.smoothing * len(self.vocab)
                score = 0.0 if self.settings["uniform"] else math.log(self.priors[k])
                score += sum(math.log((row[self.vocab[w]] + self.smoothing) / total)
                             for w in text.lower().split() if w in self.vocab)
                scores.append(score)
            best = max(range(len(scores)), key=scores.__getitem__)
            results.append({"label": self.labels[best]})
        return results

    def format_text(self, result):
        return result["label"]

    def evaluate(self, records):
        predicted = [r["label"] for r in self.run([r["text"] for r in records])]
        truth = [r["label"] for r in records]
        matrix = [[sum(t == a and p == b for t, p in zip(truth, predicted)) for b in self.labels] for a in self.labels]
        return {
            "accuracy": sum(t == p for t, p in zip(truth, predicted)) / len(records),
            "per_class": {label: {"support": truth.count(label)} for label in self.labels},
            "confusion_matrix": {"labels": self.labels, "matrix": matrix},
        }


class Fixed(Engine):
    """A rule-based engine of the same task: it cannot be trained or evaluated."""

    task, name, description, version = "tag", "fixed", "Always 'pos'.", "1"

    def run(self, inputs):
        return [{"label": "pos"} for _ in inputs]


class Interrupted(WordCount):
    """Ctrl-C in the middle of training."""

    name = "ctrl-c"

    @classmethod
    def train(cls, records, output, **kwargs):
        raise KeyboardInterrupt


class Crashing(WordCount):
    name = "crash"

    @classmethod
    def train(cls, records, output, **kwargs):
        raise RuntimeError("out of memory\nsecond line")


class Untrainable(WordCount):
    """Declares its record fields but does not implement train or evaluate."""

    name = "declared"
    train = Engine.train
    evaluate = Engine.evaluate


class Echo(Engine):
    task, name, description, version = "echo", "plain", "Echoes.", "1"

    def run(self, inputs):
        return [{"text": x} for x in inputs]


class TrainPlugin:
    @hookimpl
    def register_engines(self, register):
        for cls in (Fixed, WordCount, Interrupted, Crashing, Untrainable, Echo):
            register(cls.task, cls.name, cls, cls.description)


ROWS = [
    ("a great film, loved it", "pos"),
    ("great acting and a great story", "pos"),
    ("loved the music", "pos"),
    ("wonderful and moving", "pos"),
    ("boring and far too long", "neg"),
    ("a dull, boring plot", "neg"),
    ("terrible acting", "neg"),
    ("awful, just awful", "neg"),
]


@pytest.fixture
def registry(tmp_path, monkeypatch):
    monkeypatch.setenv("NLP_TOOL_HOME", str(tmp_path / "home"))
    registry = load_registry(entry_points=[])
    registry.add_plugin(TrainPlugin(), PluginInfo("train-plugin", "1", "package", package="train-plugin"))
    return registry


@pytest.fixture
def run(tmp_path, monkeypatch, registry):
    """Invoke a fresh nlp-tool group (built-ins + TrainPlugin) in process, from tmp_path."""
    monkeypatch.chdir(tmp_path)
    cli = make_cli(lambda: registry)

    def invoke(*args, input=None):
        return CliRunner().invoke(cli, list(args), input=input)

    return invoke


def write_csv(path, rows=ROWS, header=("review", "sentiment")):
    import csv

    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)


def files(directory):
    return sorted(p.name for p in directory.iterdir() if p.is_file())


def test_capabilities():
    assert can_train(WordCount) and can_evaluate(WordCount)
    assert not can_train(Fixed) and not can_evaluate(Fixed)
    assert not can_train(Untrainable) and not can_evaluate(Untrainable)
    with pytest.raises(NotImplementedError, match="engine tag:fixed cannot be trained"):
        Fixed.train([], "x")


def test_check_training(tmp_path):
    check_training(WordCount, [{"text": t, "label": lab} for t, lab in ROWS], tmp_path, smoothing=0.5)

    class Leaky(WordCount):
        @classmethod
        def train(cls, records, output, **kwargs):
            if records:
                (tmp_path / "leaky" / "leftover.tmp").write_text("")
            return super().train(records, output, **kwargs)

    (tmp_path / "leaky").mkdir()
    with pytest.raises(AssertionError, match=r"wrote \['check-training.nlpt', 'leftover.tmp'\]"):
        check_training(Leaky, [{"text": t, "label": lab} for t, lab in ROWS], tmp_path / "leaky")


def test_train_then_run_with_the_model_then_evaluate(run, tmp_path):
    write_csv(tmp_path / "train.csv")
    result = run("train", "tag", "train.csv", "-e", "words", "--text-column", "review", "--label-column", "sentiment",
                 "--valid-split", "0.25", "--smoothing", "0.5")
    assert result.exit_code == 0, result.output
    assert files(tmp_path) == ["tag-words.nlpt", "train.csv"]
    lines = result.stdout.splitlines()
    assert lines[:6] == ["task:           tag", "engine:         tag:words", "model:          tag-words.nlpt",
                         "train_records:  6", "valid_records:  2", lines[5]]
    assert lines[5].startswith("seconds:        ")
    assert lines[6:9] == ["examples:       6", lines[7], "metrics:"] and lines[9].startswith("  accuracy:  ")
    # The model answers the task verb ...
    result = run("tag", "-e", "words", "--model", "tag-words.nlpt", "-t", "what a great story", "-t", "so boring")
    assert result.exit_code == 0, result.output
    assert result.stdout == "==> text:1 <==\npos\n\n==> text:2 <==\nneg\n"
    # ... and is scored by evaluate, in text and JSON.
    write_csv(tmp_path / "test.csv", [("great film", "pos"), ("terrible plot", "neg"), ("great acting", "neg")])
    result = run("evaluate", "tag", "test.csv", "-m", "tag-words.nlpt", "--text-column", "review",
                 "--label-column", "sentiment", "-e", "words")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0] == "accuracy:  0.6667"
    assert result.stdout.splitlines()[-3:] == [
        "  true \\ predicted  neg  pos",
        "  neg                 1    1",
        "  pos                 0    1",
    ]
    result = run("evaluate", "tag", "test.csv", "-m", "tag-words.nlpt", "--text-column", "review",
                 "--label-column", "sentiment", "-f", "json", "--uniform")
    metrics = json.loads(result.stdout)
    assert metrics["confusion_matrix"] == {"labels": ["neg", "pos"], "matrix": [[1, 1], [0, 1]]}
    # --<field>-field is the same flag as --<field>-column.
    result = run("evaluate", "tag", "test.csv", "-m", "tag-words.nlpt", "--text-field", "review",
                 "--label-field", "sentiment", "-f", "json", "--uniform")
    assert json.loads(result.stdout) == metrics


def test_json_report_and_valid_file(run, tmp_path):
    write_csv(tmp_path / "train.jsonl.csv", header=("text", "label"))
    (tmp_path / "valid.jsonl").write_text(json.dumps({"text": "great film", "label": "pos"}) + "\n")
    result = run("train", "tag", "train.jsonl.csv", "--valid", "valid.jsonl", "-o", "m.nlpt", "-f", "json", "-q")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["engine"] == "tag:words" and report["model"] == "m.nlpt"
    assert (report["train_records"], report["valid_records"], report["valid_texts"]) == (8, 1, ["great film"])
    assert report["metrics"]["accuracy"] == 1.0
    result = run("train", "tag", "train.jsonl.csv", "--valid", "valid.jsonl", "--valid-split", "0.2", "-o", "n.nlpt")
    assert result.exit_code == 2 and "give --valid or --valid-split, not both" in result.stderr


def test_valid_split_is_deterministic(run, tmp_path):
    write_csv(tmp_path / "d.csv", header=("text", "label"))
    picks = []
    for seed in ("1", "1", "2"):
        result = run("train", "tag", "d.csv", "--seed", seed, "--valid-split", "0.5", "-f", "json", "--force")
        assert result.exit_code == 0, result.output
        picks.append(json.loads(result.stdout)["valid_texts"])
    assert picks[0] == picks[1] != picks[2]
    assert len(picks[0]) == 4


def test_output_is_not_overwritten_without_force(run, tmp_path):
    write_csv(tmp_path / "d.csv", header=("text", "label"))
    (tmp_path / "tag-words.nlpt").write_text("precious")
    result = run("train", "tag", "d.csv")
    assert result.exit_code == 2
    assert "tag-words.nlpt exists; use --force to replace it" in result.stderr
    assert (tmp_path / "tag-words.nlpt").read_text() == "precious"
    assert run("train", "tag", "d.csv", "--force").exit_code == 0
    assert (tmp_path / "tag-words.nlpt").read_bytes()[:2] == b"PK"


def _bad_data(tmp_path):
    (tmp_path / "missing-col.csv").write_text("body,label\nx,pos\n")
    (tmp_path / "malformed.csv").write_text('text,label\ngood,pos\n"bad"quote,neg\n')
    (tmp_path / "bad.jsonl").write_text('{"text": "a", "label": "pos"}\n\n{"text": oops}\n')
    (tmp_path / "empty.csv").write_text("")
    (tmp_path / "header.csv").write_text("text,label\n")
    (tmp_path / "latin1.csv").write_bytes("text,label\ncaf\xe9,pos\n".encode("latin-1"))
    write_csv(tmp_path / "one-class.csv", [("good", "pos"), ("fine", "pos")], header=("text", "label"))
    write_csv(tmp_path / "empty-text.csv", [("good", "pos"), ("  ", "neg")], header=("text", "label"))


FILE_ERRORS = [
    ("nope.csv", "nope.csv: no such file"),
    ("missing-col.csv", "missing-col.csv: no column 'text' for the 'text' field (CSV columns: 'body', 'label')"
                        "; choose the column with --text-column"),
    ("malformed.csv", "malformed.csv: line 3: malformed CSV: ',' expected after '\"'"),
    ("bad.jsonl", "bad.jsonl: line 3: invalid JSON: Expecting value (column 10)"),
    ("empty.csv", "empty.csv: the file is empty"),
    ("header.csv", "header.csv: no records (only a header?)"),
    ("latin1.csv", "latin1.csv: line 2: not valid utf-8 (byte 0xe9 at offset 14); convert the file or give its encoding"),
]
# Raised by the engine's train, as DataError.
TRAINING_ERRORS = [
    ("one-class.csv", "a single class ('pos'): at least two are needed"),
    ("empty-text.csv", "empty texts in the training data"),
]


def _check_bad_data(result, tmp_path, message):
    assert result.exit_code == 2, result.output
    assert result.stderr == f"nlp-tool: error: {message}\n"
    assert result.stdout == ""
    assert "tag-words.nlpt" not in files(tmp_path)


@pytest.mark.parametrize("data, message", FILE_ERRORS + TRAINING_ERRORS)
def test_bad_training_data_is_one_line_and_exit_2(run, tmp_path, data, message):
    _bad_data(tmp_path)
    _check_bad_data(run("train", "tag", data, "--valid-split", "0"), tmp_path, message)


@pytest.mark.parametrize("data, message", FILE_ERRORS)
def test_bad_evaluation_data_is_one_line_and_exit_2(run, tmp_path, data, message):
    _bad_data(tmp_path)
    write_csv(tmp_path / "good.csv", header=("text", "label"))
    assert run("train", "tag", "good.csv", "-o", "m.nlpt").exit_code == 0
    _check_bad_data(run("evaluate", "tag", data, "-m", "m.nlpt"), tmp_path, message)


def test_record_numbers_in_data_errors_are_places_in_the_file(run, tmp_path):
    rows = [(f"review {i} was {'great' if i % 2 else 'awful'}", "pos" if i % 2 else "neg") for i in range(1, 121)]
    rows[100] = ("", rows[100][1])  # record 101, on line 102 below the header
    write_csv(tmp_path / "emptymid.csv", rows)
    for split in ([], ["--valid-split", "0"], ["--valid-split", "0.5", "--seed", "3"]):
        result = run("train", "classify", "emptymid.csv", "--text-column", "review", "--label-column", "sentiment",
                     "-e", "ngram", "-q", "-o", "h.nlpt", *split)
        assert result.exit_code == 2, (split, result.output)
        assert result.stderr == "nlp-tool: error: training data: record 101 has an empty text\n", split
    assert "h.nlpt" not in files(tmp_path)


def test_only_a_record_error_is_renumbered_to_the_place_in_the_data(tmp_path, monkeypatch, registry):
    import toolkit
    from toolkit.datasets import read_records, split_positions
    from toolkit.engine import RecordError

    write_csv(tmp_path / "d.csv", header=("text", "label"))
    # The first held-out record's place in the file (from 1): what "validation data: record 1" means there.
    records = read_records(str(tmp_path / "d.csv"), {"text": "text", "label": "label"})
    held_out_place = split_positions(records, 0.25, seed=0)[1][0] + 1
    assert held_out_place != 1
    for raised, expected in ((RecordError("validation data", 1, " is odd"), "training data: record {} is odd"),
                             (DataError("validation data: record 1 is odd"), "validation data: record 1 is odd")):
        def train(cls, records, output, valid=None, error=raised, **kwargs):
            raise error

        monkeypatch.setattr(WordCount, "train", classmethod(train))
        with pytest.raises(DataError) as caught:
            toolkit.train("tag", str(tmp_path / "d.csv"), engine="words", output=str(tmp_path / "m.nlpt"),
                          valid_split=0.25, registry=registry)
        assert str(caught.value) == expected.format(held_out_place)


def test_debug_shows_the_traceback(run, tmp_path):
    result = run("train", "tag", "nope.csv", "--debug")
    assert isinstance(result.exception, DataError)


def test_runtime_failure_is_exit_1(run, tmp_path):
    write_csv(tmp_path / "d.csv", header=("text", "label"))
    result = run("train", "tag", "d.csv", "-e", "crash")
    assert result.exit_code == 1
    assert result.stderr == "nlp-tool: error: training tag:crash failed: RuntimeError: out of memory\n"
    (tmp_path / "damaged.nlpt").write_bytes(b"PK\x03\x04 cut short")
    result = run("evaluate", "tag", "d.csv", "-m", "damaged.nlpt")
    assert result.exit_code == 1
    assert result.stderr.startswith("nlp-tool: error: evaluating tag:words failed: ModelFileError: damaged.nlpt:"
                                    " not a readable nlp-tool model file (BadZipFile: ")


def test_engines_that_cannot_train_or_evaluate(run, tmp_path):
    write_csv(tmp_path / "d.csv", header=("text", "label"))
    for command, verb in (("train", "trained"), ("evaluate", "evaluated")):
        for engine in ("fixed", "declared"):
            result = run(command, "tag", "d.csv", "-e", engine)
            assert result.exit_code == 2
            assert f"engine tag:{engine} cannot be {verb} (engines that can: words" in result.stderr
        result = run(command, "echo", "d.csv")
        assert result.exit_code == 2
        assert f"no engine of task 'echo' can be {verb} (engines: plain)" in result.stderr
        result = run(command, "--help")
        assert result.exit_code == 0 and "tag " in result.stdout and "echo" not in result.stdout


def test_options_are_checked_against_the_chosen_engine(run, tmp_path):
    write_csv(tmp_path / "d.csv", header=("text", "label"))
    result = run("train", "tag", "d.csv", "--smoothing", "x")
    assert result.exit_code == 2 and "'x' is not a valid float" in result.stderr
    help_text = run("train", "tag", "--help").stdout
    # The only trainable engine's default, said once.
    assert "--smoothing FLOAT RANGE" in help_text and "[default: 1.0] [x>0]" in " ".join(help_text.split())
    assert "--text-column, --text-field NAME" in help_text and "words (default)" in help_text
    assert "--uniform" in run("evaluate", "tag", "--help").stdout


def test_train_option_bounds_are_click_ranges_whose_errors_name_the_flag(run, tmp_path):
    write_csv(tmp_path / "d.csv", header=("text", "label"))
    assert "[x>0]" in run("train", "tag", "--help").stdout
    result = run("train", "tag", "d.csv", "--smoothing", "0")
    assert result.exit_code == 2
    assert "Invalid value for '--smoothing': 0.0 is not in the range x>0." in result.stderr
    assert files(tmp_path) == ["d.csv"]


def test_ctrl_c_exits_130_and_leaves_no_model_file(run, tmp_path, monkeypatch):
    write_csv(tmp_path / "d.csv", header=("text", "label"))
    result = run("train", "tag", "d.csv", "-e", "ctrl-c")
    assert result.exit_code == 130
    assert result.stderr == "nlp-tool: interrupted\n"
    assert files(tmp_path) == ["d.csv"]

    # Ctrl-C while the model file is being written: the atomic write leaves nothing behind either.
    def interrupt(fd):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "fsync", interrupt)
    result = run("train", "tag", "d.csv", "-e", "words")
    assert result.exit_code == 130
    assert files(tmp_path) == ["d.csv"]


def test_report_lines_formats_nested_metrics_and_tables():
    report = {
        "accuracy": 0.5,
        "n": 4,
        "labels": ["a", "b"],
        "macro": {"f1": 0.25, "precision": None},
        "per_class": {"a": {"precision": 1.0, "support": 3}, "bb": {"precision": 0.0, "support": 1}},
        "confusion_matrix": {"labels": ["a", "bb"], "matrix": [[1, 2], [10, 0]]},
        "history": [{"epoch": 1}, {"epoch": 2, "loss": 0.5}],
        "odd": [{"x": [1]}],
    }
    assert report_lines(report) == [
        "accuracy:  0.5000",
        "n:         4",
        "labels:    a, b",
        "macro:",
        "  f1:         0.2500",
        "  precision:  -",
        "per_class:",
        "      precision  support",
        "  a      1.0000        3",
        "  bb     0.0000        1",
        "confusion_matrix:",
        "  true \\ predicted   a  bb",
        "  a                  1   2",
        "  bb                10   0",
        "history:",
        "  epoch    loss",
        "  1           -",
        "  2      0.5000",
        'odd:  [{"x": [1]}]',
    ]


def test_api_train_and_evaluate_on_lists(registry, tmp_path):
    records = [{"review": text, "label": label} for text, label in ROWS]
    report = toolkit.api.train("tag", records, output=tmp_path / "m.nlpt", columns={"text": "review"},
                               valid_split=0, registry=registry, smoothing=2.0)
    assert report["model"] == str(tmp_path / "m.nlpt") and report["valid_records"] == 0
    metrics = toolkit.api.evaluate("tag", [{"text": t, "label": lab} for t, lab in ROWS], model=str(tmp_path / "m.nlpt"),
                                   registry=registry)
    assert metrics["accuracy"] == 1.0
    with pytest.raises(OptionError, match="no training option 'epochs'"):
        toolkit.api.train("tag", records, registry=registry, epochs=3)
    with pytest.raises(OptionError, match="option 'smoothing' must be of type float"):
        toolkit.api.train("tag", records, registry=registry, smoothing="x")
    with pytest.raises(DataError, match="record 2: no field 'text'"):
        toolkit.api.train("tag", [{"text": "a", "label": "x"}, {"label": "y"}], registry=registry)
    with pytest.raises(DataError, match="no record field 'txt'"):
        toolkit.api.train("tag", records, columns={"txt": "review"}, registry=registry)
    with pytest.raises(NotImplementedError, match="no engine of task 'echo' can be trained"):
        toolkit.api.train("echo", records, registry=registry)
    assert not (tmp_path / "tag-words.nlpt").exists()


@pytest.mark.parametrize(
    "option, value, message",
    [
        (Option(int, 1, "", minimum=1), 0, "option 'x' must be at least 1, not 0"),
        (Option(float, 0.5, "", minimum=0, maximum=1), 1.5, "must be between 0 and 1, not 1.5"),
        (Option(float, 0.5, "", minimum=0, maximum=1), float("nan"), "must be between 0 and 1, not nan"),
        (Option(float, 0.1, "", minimum=0, maximum=1, max_open=True), 1.0, "must be at least 0 and less than 1"),
        (Option(float, 1e-3, "", minimum=0, min_open=True), 0.0, "must be greater than 0, not 0.0"),
        (Option(float, 1e-3, "", minimum=0, min_open=True), -1, "must be greater than 0, not -1.0"),
        (Option(float, -1.0, "", maximum=1), 2, "must be at most 1, not 2.0"),
        (Option(int, 4, "", minimum=2, maximum=8, min_open=True, max_open=True), 8,
         "must be greater than 2 and less than 8, not 8"),
    ],
)
def test_option_bounds_refuse_values_outside(option, value, message):
    with pytest.raises(OptionError, match=re.escape(message)):
        option.convert("x", value)


@pytest.mark.parametrize(
    "option, values",
    [
        (Option(int, 1, "", minimum=1), [1, 2, 10**9]),
        (Option(float, 0.5, "", minimum=0, maximum=1), [0, 0.0, 1.0, 0.25]),
        (Option(float, 0.1, "", minimum=0, maximum=1, max_open=True), [0.0, 0.999]),
        (Option(float, -1.0, "", maximum=1), [-5.0, 1]),
        (Option(float, 1.0, ""), [float("nan"), -1e300]),  # no bounds: any number
    ],
)
def test_option_bounds_accept_values_inside(option, values):
    for value in values:
        assert option.convert("x", value) == value or value != value


def test_reserved_train_option_names_are_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("NLP_TOOL_HOME", str(tmp_path))

    class Bad(WordCount):
        name = "bad"
        train_options = {"seed": Option(int, 0, "clash"), "text_column": Option(str, "", "clash")}

    class BadPlugin:
        @hookimpl
        def register_engines(self, register):
            register("tag", "bad", Bad, "bad")

    registry = load_registry(entry_points=[])
    info = PluginInfo("bad", "1", "package")
    registry.add_plugin(BadPlugin(), info)
    assert info.status == "failed" and "['seed', 'text_column'] are reserved" in info.error


PLUGIN = """
from toolkit import hookimpl
from toolkit.engine import Engine, Option


class Learner(Engine):
    task, name, description, version = "tag", "learner", "Learns.", "1"
    record_fields = ("text", "label")
    train_options = {"epochs": Option(int, 1, "Epochs.")}

    @classmethod
    def train(cls, records, output, **options):
        import numpy
        return {}

    def evaluate(self, records):
        return {}

    def run(self, inputs):
        return [{} for _ in inputs]


@hookimpl
def register_engines(register):
    register("tag", "learner", Learner, "Learns.")
"""


@pytest.mark.parametrize("args", [["train", "--help"], ["evaluate", "--help"], ["train", "tag", "--help"],
                                  ["evaluate", "tag", "--help"]])
def test_help_does_not_import_numpy(tmp_path, args):
    (tmp_path / "learner_plugin.py").write_text(textwrap.dedent(PLUGIN))
    info = tmp_path / "learner_plugin-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: learner-plugin\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[nlp_tool]\nlearner-plugin = learner_plugin\n")
    env = {k: v for k, v in os.environ.items() if k != "NLP_TOOL_PLUGINS"}
    env.update(PYTHONPATH=str(tmp_path), NLP_TOOL_HOME=str(tmp_path / "home"))
    code = (
        "import sys\n"
        "from toolkit.cli import cli\n"
        "try:\n"
        f"    cli({args!r})\n"
        "except SystemExit as e:\n"
        "    assert not e.code, e.code\n"
        "assert 'numpy' not in sys.modules, 'numpy was imported'\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "tag" in proc.stdout


def test_reports_print_numpy_numbers_and_nan_as_json_and_refuse_other_values(run, tmp_path, monkeypatch):
    import numpy as np

    write_csv(tmp_path / "train.csv", header=("text", "label"))
    assert run("train", "tag", "train.csv", "-e", "words", "-o", "m.nlpt", "-q").exit_code == 0
    monkeypatch.setattr(WordCount, "evaluate", lambda self, records: {"accuracy": np.float32(0.5), "f1": float("nan")})
    result = run("evaluate", "tag", "train.csv", "-m", "m.nlpt", "-f", "json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["accuracy"] == 0.5 and report["f1"] is None
    monkeypatch.setattr(WordCount, "evaluate", lambda self, records: {"labels": {"pos"}})
    for fmt in ("json", "text"):
        result = run("evaluate", "tag", "train.csv", "-m", "m.nlpt", "-f", fmt)
        assert result.exit_code == 1 and "Traceback" not in result.output
        assert result.stderr == ("nlp-tool: error: evaluating tag:words failed: the engine's report cannot be"
                                 " printed: a set is not a JSON value\n")


def _reviews(n: int) -> str:
    import random

    rng = random.Random(0)
    rows = ["text,label"]
    for _ in range(n):
        label = rng.choice(["pos", "neg"])
        words = rng.sample("good great fine nice".split() if label == "pos" else "bad awful poor dull".split(), 2)
        rows.append(" ".join(words + rng.sample("the movie plot was a film".split(), 4)) + f",{label}")
    return "\n".join(rows) + "\n"


CNN_FLAGS = ["-e", "cnn", "--epochs", "3", "--patience", "0", "--batch", "32", "--max-len", "8", "--dim", "8", "--filters", "8", "--hidden", "8", "-q"]


def test_a_time_limit_says_how_to_go_on_and_resume_replaces_its_model(tmp_path, monkeypatch):
    from toolkit.nn import read_model_file

    monkeypatch.chdir(tmp_path)
    (tmp_path / "d.csv").write_text(_reviews(60))
    cli = make_cli(lambda: load_registry(("toolkit_plugins.classification",), entry_points=[]))
    first = CliRunner().invoke(cli, ["train", "classify", "d.csv", *CNN_FLAGS, "--max-minutes", "1e-9"])
    assert first.exit_code == 0, first.output
    assert ("nlp-tool: stopped at the time limit with the best model so far in classify-cnn.nlpt; the checkpoint"
            " classify-cnn.nlpt.ckpt holds the run: continue it with the same command and --resume") in first.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["classify-cnn.nlpt", "classify-cnn.nlpt.ckpt", "d.csv"]
    # The history is a table in the text report.
    assert re.search(r"epochs:\n  epoch\s+batches\s+loss\s+steps\s+val_accuracy\s+seconds\n  1\s+1/2", first.stdout)
    second = CliRunner().invoke(cli, ["train", "classify", "d.csv", *CNN_FLAGS, "--resume"])  # no --force needed
    assert second.exit_code == 0, second.output
    assert "time limit" not in second.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["classify-cnn.nlpt", "d.csv"]
    training = read_model_file(tmp_path / "classify-cnn.nlpt")[0]["metadata"]["training"]
    assert training["stopped"] == "completed" and training["steps"] == 6
    third = CliRunner().invoke(cli, ["train", "classify", "d.csv", *CNN_FLAGS, "--resume", "--dim", "4"])
    assert third.exit_code == 2 and "no checkpoint classify-cnn.nlpt.ckpt to resume from" in third.stderr


def test_ctrl_c_in_training_exits_130_and_names_the_checkpoint_to_resume_from(tmp_path, monkeypatch):
    import signal

    import toolkit.nn as nn

    real = nn.softmax_cross_entropy

    def interrupted(*args, **kwargs):
        signal.raise_signal(signal.SIGINT)
        return real(*args, **kwargs)

    monkeypatch.setattr(nn, "softmax_cross_entropy", interrupted)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "d.csv").write_text(_reviews(60))
    cli = make_cli(lambda: load_registry(("toolkit_plugins.classification",), entry_points=[]))
    result = CliRunner().invoke(cli, ["train", "classify", "d.csv", *CNN_FLAGS])
    assert result.exit_code == 130
    assert result.stderr == ("nlp-tool: interrupted; the checkpoint classify-cnn.nlpt.ckpt holds the run: continue it"
                             " with the same command and --resume\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["classify-cnn.nlpt.ckpt", "d.csv"]
