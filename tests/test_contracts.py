"""Task contracts (toolkit.contracts): declared once per task, held to by every engine of it."""

from __future__ import annotations

import re

import pytest
from click.testing import CliRunner

import toolkit
from toolkit import hookimpl
from toolkit.cli import make_cli
from toolkit.contracts import ContractError, TaskContract, check_result
from toolkit.engine import Engine, Option, OptionError
from toolkit.errors import UnknownTaskError
from toolkit.plugins import PluginInfo, load_registry
from toolkit.testing import check_contract

BUILTINS = ("toolkit_plugins.summarization", "toolkit_plugins.classification", "toolkit_plugins.qa",
            "toolkit_plugins.translation")


def registry_with(*plugins: object):
    registry = load_registry(BUILTINS, entry_points=[])
    for number, plugin in enumerate(plugins):
        registry.add_plugin(plugin, PluginInfo(f"third-{number}", "1", "package"))
    return registry


def first_sentences(text: str, k: int) -> dict:
    from toolkit.text.sentences import split_sentences

    chosen = split_sentences(text)[: k or 1]
    return {"summary": " ".join(s.text for s in chosen),
            "sentences": [{"text": s.text, "start": s.start, "end": s.end} for s in chosen]}


class Firsts(Engine):
    """A third-party summarize engine that declares no option: it gets the task's."""

    task, name, description, version = "summarize", "firsts", "The first sentences.", "1"

    def run(self, inputs):
        return [first_sentences(text, self.settings["sentences"]) for text in inputs]


class FirstsPlugin:
    @hookimpl
    def register_engines(self, register):
        register("summarize", "firsts", Firsts, Firsts.description)


def test_an_engine_added_to_a_task_gets_its_shared_options_and_exclusions():
    registry = registry_with(FirstsPlugin())
    assert registry.plugins["third-0"].status == "loaded", registry.plugins["third-0"].error
    contract = registry.contracts["summarize"][0]
    assert Firsts.contract is contract and list(Firsts.options) == ["sentences", "ratio", "words"]
    summarize = toolkit.pipeline("summarize", engine="firsts", sentences=2, registry=registry)
    assert summarize("One. Two. Three.")["summary"] == "One. Two."
    with pytest.raises(OptionError, match="options 'sentences' and 'words' cannot be used together"):
        toolkit.pipeline("summarize", engine="firsts", sentences=2, words=10, registry=registry)
    result = CliRunner().invoke(make_cli(lambda: registry), ["summarize", "-e", "firsts", "--sentences", "1", "-"],
                                input="One. Two.\n")
    assert result.exit_code == 0 and result.stdout.startswith('{"summary": "One."'), result.output
    check_contract(Firsts)


@pytest.mark.parametrize("options, message", [
    ({"sentences": Option(int, 3, "My own default.", minimum=0)}, r"options \['sentences'\] are shared by every"
                                                                   r" engine of the summarize task"),
    ({}, "the summarize task takes 'text' inputs, not 'question\\+context'"),
])
def test_an_engine_that_breaks_its_tasks_declaration_is_refused(options, message):
    class Other(Firsts):
        name = "other"
        inputs = "question+context" if not options else "text"

    Other.options = options

    class Plugin:
        @hookimpl
        def register_engines(self, register):
            register("summarize", "other", Other, "")

    info = registry_with(Plugin()).plugins["third-0"]
    assert info.status == "failed" and re.search(message, info.error), info.error


class Nonsense(Firsts):
    name = "nonsense"

    def run(self, inputs):
        return [{"nonsense": 3} for _ in inputs]


class Misplaced(Firsts):
    name = "misplaced"

    def run(self, inputs):
        results = super().run(inputs)
        for result in results:
            result["sentences"][0]["start"] += 1
        return results


def test_the_conformance_kit_names_what_a_result_lacks_or_misquotes():
    registry_with()  # the built-in contracts are declared
    with pytest.raises(AssertionError, match=r"^input 'The committee.*: the result has no 'summary'"):
        check_contract(Nonsense)
    with pytest.raises(AssertionError, match=r"sentence 1 .* is not the input's text at 1:"):
        check_contract(Misplaced)


def test_check_result_names_the_engine_and_the_problem():
    contract = TaskContract("t", "text", "A test.", {"value": "number|null"})
    check_result(contract, "t:x", "in", {"value": None})
    check_result(contract, "t:x", "in", {"value": 2.5})
    with pytest.raises(ContractError, match=r"engine t:x broke the t contract: the result's 'value' is bool True,"
                                            r" not number\|null"):
        check_result(contract, "t:x", "in", {"value": True})
    with pytest.raises(ContractError, match="a result is a dict, not list"):
        check_result(contract, "t:x", "in", [])
    assert ContractError.exit_code == 1


class Shout(Engine):
    task, name, description, version = "shout", "upper", "Upper-cases the text.", "1"

    def run(self, inputs):
        return [{"text": text.upper(), "length": len(text)} for text in inputs]


SHOUT = TaskContract("shout", "text", "Loud text.", {"text": "str", "length": "int"},
                     options={"times": Option(int, 1, "How many times.", minimum=1)})


class ShoutPlugin:
    @hookimpl
    def register_tasks(self, register):
        register(SHOUT)

    @hookimpl
    def register_engines(self, register):
        register("shout", "upper", Shout, Shout.description)


def test_hook_register_tasks():
    registry = registry_with(ShoutPlugin(), ShoutPlugin())
    assert registry.plugins["third-0"].status == "loaded"
    assert registry.contracts["shout"] == (SHOUT, "third-0") and Shout.contract is SHOUT
    assert toolkit.pipeline("shout", times=2, registry=registry)("hey") == {"text": "HEY", "length": 3}
    # A task is declared once: the second plugin that declares it fails, alone.
    second = registry.plugins["third-1"]
    assert second.status == "failed" and "task 'shout' is declared by both plugin 'third-0' and plugin 'third-1'" \
        in second.error
    check_contract(Shout)


@pytest.mark.parametrize("contract, message", [
    ("shout", "register_tasks takes a toolkit.contracts.TaskContract"),
    (TaskContract("Bad Name", "text", "", {}), "a task name is lower-case"),
    (TaskContract("t", "images", "", {}), "inputs must be one of"),
    (TaskContract("t", "text", "", {"x": "float"}), r"the types of result keys \['x'\] are not among"),
    (TaskContract("t", "text", "", {}, exclusive=(("a", "b"),)), r"exclusive names \['a', 'b'\] are not"),
])
def test_a_contract_the_registry_cannot_hold_engines_to_fails_its_plugin(contract, message):
    class Plugin:
        @hookimpl
        def register_tasks(self, register):
            register(contract)

    info = registry_with(Plugin()).plugins["third-0"]
    assert info.status == "failed" and re.search(message, info.error), info.error


class Broken:
    @hookimpl
    def register_engines(self, register):
        raise ImportError("No module named 'lexicon_data'")


def test_a_missing_task_or_engine_names_the_plugins_that_failed_to_load():
    registry = registry_with(Broken())
    with pytest.raises(UnknownTaskError, match=r"unknown task 'sentiment-lexicon' \(available: .*\);"
                                                       r" plugin 'third-0' failed to load: ImportError: No module"
                                                       r" named 'lexicon_data'$"):
        toolkit.pipeline("sentiment-lexicon", registry=registry)
    with pytest.raises(UnknownTaskError, match=r"task 'classify' has no engine 'lexicon' .*; plugin 'third-0'"):
        toolkit.pipeline("classify", engine="lexicon", registry=registry)
    with pytest.raises(UnknownTaskError, match=r"\(available: [a-z, ]+\)$"):
        toolkit.pipeline("sentiment-lexicon", registry=registry_with())


def test_the_command_line_names_the_failed_plugin_where_its_verb_is_missing():
    registry = registry_with(Broken())
    result = CliRunner().invoke(make_cli(lambda: registry), ["sentiment-lexicon", "-t", "good"])
    assert result.exit_code == 2
    assert ("No such command 'sentiment-lexicon'; plugin 'third-0' failed to load: ImportError: No module named"
            " 'lexicon_data'") in result.stderr
    # Without a failed plugin, click's message alone.
    result = CliRunner().invoke(make_cli(lambda: registry_with()), ["sentiment-lexicon"])
    assert result.exit_code == 2 and result.stderr.rstrip().endswith("No such command 'sentiment-lexicon'.")


def test_a_failed_plugin_is_a_plugin_warning_a_program_can_filter():
    import warnings

    from toolkit.plugins import PluginWarning, Registry, warn_failure

    with pytest.warns(PluginWarning, match="plugin 'broken' failed to load: ImportError: No module named"):
        Registry(on_failure=warn_failure).add_plugin(Broken(), PluginInfo("broken", "1", "package"))
    with warnings.catch_warnings():
        warnings.simplefilter("error", PluginWarning)
        with pytest.raises(PluginWarning):
            Registry(on_failure=warn_failure).add_plugin(Broken(), PluginInfo("broken", "1", "package"))
