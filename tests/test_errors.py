"""toolkit.errors: one family, each class with its exit code; the command line reports each family the same way."""

from __future__ import annotations

import inspect
import subprocess
import sys

import pytest
from click.testing import CliRunner

import toolkit
import toolkit.datasets
import toolkit.engine
import toolkit.io
import toolkit.nn
import toolkit.nn.model_file
import toolkit.plugins
from toolkit import errors, hookimpl
from toolkit.cli import make_cli
from toolkit.cli.errors import reported
from toolkit.engine import Engine, Option
from toolkit.nn import read_model_file, save_arrays
from toolkit.plugins import PluginInfo, Registry

EXIT_CODES = {
    errors.NlpToolError: 1,
    errors.UsageError: 2,
    errors.OptionError: 2,
    errors.ModelMismatchError: 2,
    errors.InputError: 2,
    errors.UnsupportedError: 2,
    errors.DataError: 2,
    errors.RecordError: 2,
    errors.ColumnError: 2,
    errors.ModelFileError: 1,
    errors.ModelNotFoundError: 2,
    errors.CheckpointError: 2,
    errors.TrainingError: 1,
    errors.WorkerError: 1,
    errors.RegistryError: 1,
    errors.UnknownTaskError: 2,
}


def family() -> list[type]:
    return [value for value in vars(errors).values()
            if inspect.isclass(value) and issubclass(value, errors.NlpToolError)]


def instance(cls: type) -> errors.NlpToolError:
    if cls is errors.RecordError:
        return cls("training data", 3, " has an empty text")
    if cls is errors.ColumnError:
        return cls("d.csv: no column 'text'", "text")
    return cls("what is wrong")


def test_every_class_has_its_exit_code_and_the_cli_exits_with_it():
    assert set(family()) == set(EXIT_CODES)
    for cls, code in EXIT_CODES.items():
        assert cls.exit_code == code, cls
        assert reported(instance(cls)).exit_code == code, cls
    assert reported(KeyError("x"), "running").exit_code == 1


def test_families_and_the_builtin_bases_callers_catch():
    for cls in (errors.OptionError, errors.ModelMismatchError, errors.InputError, errors.UnsupportedError,
                errors.ModelNotFoundError):
        assert issubclass(cls, errors.UsageError)
    for cls in (errors.RecordError, errors.ColumnError):
        assert issubclass(cls, errors.DataError)
    assert issubclass(errors.UnknownTaskError, errors.RegistryError)
    assert issubclass(errors.ModelMismatchError, errors.OptionError)
    # A missing model is a usage error, yet still what each of its two old raisers raised.
    assert issubclass(errors.ModelNotFoundError, errors.OptionError)
    assert issubclass(errors.ModelNotFoundError, errors.ModelFileError)
    for cls in (errors.UsageError, errors.DataError, errors.ModelFileError):
        assert issubclass(cls, ValueError)
    assert issubclass(errors.UnknownTaskError, LookupError)
    assert issubclass(errors.UnsupportedError, NotImplementedError)
    record = instance(errors.RecordError)
    assert (str(record), record.part, record.number) == ("training data: record 3 has an empty text", "training data", 3)
    assert instance(errors.ColumnError).field == "text"


def test_old_import_paths_give_the_same_classes():
    homes = {
        toolkit.engine: ("OptionError", "ModelMismatchError", "DataError", "RecordError"),
        toolkit.datasets: ("ColumnError",),
        toolkit.nn: ("ModelFileError",),
        toolkit.nn.model_file: ("ModelFileError",),
        toolkit.plugins: ("RegistryError", "UnknownTaskError"),
        toolkit.io: ("InputError",),
    }
    for module, names in homes.items():
        for name in names:
            assert getattr(module, name) is getattr(errors, name), f"{module.__name__}.{name}"


def test_errors_module_imports_nothing_of_the_toolkit():
    code = "import sys, toolkit.errors; print(sorted(m for m in sys.modules if m.startswith('toolkit')))"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert loaded.strip() == "['toolkit', 'toolkit.errors']"


# -- the command line, end to end -----------------------------------------------------------


class Direct(Engine):
    """Reads its model file with read_model_file, as an engine may without Engine.model_metadata."""

    task, name, description, version = "tag", "direct", "Labels from read_model_file.", "1"
    record_fields = ("text", "label")

    def __init__(self, model=None, **options):
        super().__init__(model, **options)
        self.label = read_model_file(self.model)[0]["metadata"]["label"]

    @classmethod
    def train(cls, records, output, *, valid=None, seed=0, progress=None):
        save_arrays(output, {}, {"task": cls.task, "engine": cls.name, "label": records[0]["label"]})
        return {}

    def run(self, inputs):
        return [{"label": self.label} for _ in inputs]

    def evaluate(self, records):
        return {"records": len(records)}


class Checked(Direct):
    """Checks its model with Engine.model_metadata, as the built-in engines do; refuses an empty prefix."""

    name, description = "checked", "Labels after model_metadata."
    options = {"prefix": Option(str, "#", "Put before the label.")}

    def __init__(self, model=None, **options):
        Engine.__init__(self, model, **options)
        if not self.settings["prefix"]:
            raise errors.OptionError("option 'prefix' must not be empty; leave --prefix out for '#'")
        self.label = self.settings["prefix"] + self.model_metadata()["label"]


class Fixed(Engine):
    task, name, description, version = "tag", "fixed", "Always 'pos'.", "1"

    def run(self, inputs):
        return [{"label": "pos"} for _ in inputs]


class TagPlugin:
    @hookimpl
    def register_engines(self, register):
        for engine in (Direct, Checked, Fixed):
            register("tag", engine.name, engine, engine.description)


@pytest.fixture
def registry() -> Registry:
    registry = Registry()
    registry.add_plugin(TagPlugin(), PluginInfo("tag-plugin", "1.0", "package", package="tag-plugin"))
    return registry


@pytest.fixture
def run(tmp_path, monkeypatch, registry):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("NLP_TOOL_HOME", str(tmp_path / "home"))
    cli = make_cli(lambda: registry)
    return lambda *args: CliRunner().invoke(cli, list(args))


def one_error_line(result) -> str:
    assert "Traceback" not in result.output
    return result.stderr.strip().splitlines()[-1]


@pytest.fixture
def models(tmp_path):
    for engine in ("direct", "checked"):
        save_arrays(tmp_path / f"{engine}.nlpt", {}, {"task": "tag", "engine": engine, "label": "pos"})
    (tmp_path / "damaged.nlpt").write_bytes(b"PK\x03\x04 cut short")
    (tmp_path / "d.csv").write_text("text,label\ngood,pos\nbad,neg\n")
    (tmp_path / "empty.csv").write_text("")


@pytest.mark.parametrize("args, line", [
    (["tag", "-t", "x", "-e", "checked", "-m", "checked.nlpt", "--prefix", ""],
     "Error: option 'prefix' must not be empty; leave --prefix out for '#'"),
    (["tag", "-t", "x", "-e", "checked", "-m", "direct.nlpt"],
     "Error: direct.nlpt: a model for tag:direct, not tag:checked; use --engine direct"),
    (["tag", "nope.txt", "-e", "checked"], "Error: no such file: nope.txt"),
    (["train", "tag", "d.csv", "-e", "fixed"], "Error: engine tag:fixed cannot be trained (engines that can: direct, checked)"),
])
def test_usage_errors_exit_2_with_click_usage_message(run, models, args, line):
    result = run(*args)
    assert result.exit_code == 2
    assert result.stderr.startswith("Usage: ")
    assert one_error_line(result) == line


def test_data_errors_exit_2_with_one_line(run, models):
    result = run("train", "tag", "empty.csv", "-e", "direct")
    assert result.exit_code == 2
    assert result.stderr == "nlp-tool: error: empty.csv: the file is empty\n"
    result = run("evaluate", "tag", "d.csv", "-e", "checked", "-m", "checked.nlpt", "--text-column", "review")
    assert result.exit_code == 2
    assert one_error_line(result) == ("nlp-tool: error: d.csv: no column 'review' for the 'text' field (CSV columns:"
                                      " 'text', 'label'); choose the column with --text-column")


@pytest.mark.parametrize("engine", ["direct", "checked"])
def test_a_missing_model_exits_2_and_a_damaged_one_1_whichever_way_the_engine_reads_it(run, models, engine):
    for args in (["tag", "-t", "x"], ["evaluate", "tag", "d.csv"]):
        result = run(*args, "-e", engine, "-m", "nope.nlpt")
        assert (result.exit_code, one_error_line(result)) == (2, "Error: nope.nlpt: no such model file")
        assert result.stderr.startswith(f"Usage: nlp-tool {' '.join(args[:-2])}")
        result = run(*args, "-e", engine, "-m", "damaged.nlpt")
        what = "cannot start engine tag:" if args[0] == "tag" else "evaluating tag:"
        assert result.exit_code == 1
        assert one_error_line(result).startswith(
            f"nlp-tool: error: {what}{engine}{' failed' if args[0] == 'evaluate' else ''}: ModelFileError:"
            " damaged.nlpt: not a readable nlp-tool model file (BadZipFile: ")


def test_registry_error_exits_1_with_one_line(run, tmp_path):
    (tmp_path / "home").mkdir()
    (tmp_path / "home" / "config.json").write_text("{damaged")
    result = run("plugins", "disable", "tag-plugin")
    assert result.exit_code == 1
    line = one_error_line(result)
    assert line.startswith(
        f"nlp-tool: error: RegistryError: cannot read the configuration file {tmp_path / 'home' / 'config.json'}:")
    assert line.endswith("; repair or delete it (it lists the plugins disabled with `nlp-tool plugins disable`)")
    assert result.stderr.count("\n") == 1


def test_unknown_task_is_a_usage_error_in_the_api_and_on_the_command_line(run, registry):
    with pytest.raises(errors.UnknownTaskError, match=r"unknown task 'nope' \(available: tag\)") as caught:
        toolkit.pipeline("nope", registry=registry)
    assert reported(caught.value).exit_code == 2
    result = run("nope", "-t", "x")
    assert result.exit_code == 2 and "No such command 'nope'" in result.stderr


def test_debug_shows_the_error_itself(run, models):
    for args in (["tag", "nope.txt", "-e", "checked"], ["evaluate", "tag", "d.csv", "-e", "direct", "-m", "nope.nlpt"]):
        result = run(*args, "--debug")
        assert isinstance(result.exception, errors.NlpToolError), result.output


def test_the_same_missing_model_is_the_same_class_in_every_reader(tmp_path):
    with pytest.raises(errors.ModelNotFoundError) as by_reader:
        read_model_file(tmp_path / "nope.nlpt")
    with pytest.raises(errors.ModelNotFoundError) as by_engine:
        Checked(model=str(tmp_path / "nope.nlpt"))
    assert str(by_reader.value) == str(by_engine.value) == f"{tmp_path / 'nope.nlpt'}: no such model file"
