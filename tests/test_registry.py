"""The plugin registry: built-in and third-party plugins through the same hooks, failures per plugin."""

from __future__ import annotations

import itertools
import json
import textwrap

import click
import pytest
from click.testing import CliRunner

from toolkit import hookimpl
from toolkit.contracts import TaskContract
from toolkit.engine import Engine, Option
from toolkit.plugins import PluginInfo, PluginWarning, Registry, RegistryError, UnknownTaskError, load_registry, set_disabled

_ids = itertools.count()


class Echo(Engine):
    task = "echo"
    name = "plain"
    description = "Returns its input."
    version = "1"

    def run(self, inputs):
        return [{"text": x} for x in inputs]


class EchoPlugin:
    @hookimpl
    def register_engines(self, register):
        register("echo", "plain", Echo, "Returns its input.")


def fake_dist(root, name: str, body: str, version: str = "1.2") -> str:
    """An installed distribution NAME with an nlp_tool entry point to a module holding BODY.

    A dist-info folder on sys.path is all importlib.metadata needs, so this
    exercises the real entry-point discovery without pip.
    """
    module = f"fake_plugin_{next(_ids)}"
    (root / f"{module}.py").write_text(textwrap.dedent(body))
    info = root / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    (info / "entry_points.txt").write_text(f"[nlp_tool]\n{name} = {module}\n")
    return module


GOOD_PLUGIN = """
    from toolkit import hookimpl
    from toolkit.engine import Engine

    class Shout(Engine):
        task = "shout"
        name = "upper"
        description = "Upper-cases its input."
        version = "2"

        def run(self, inputs):
            return [{"text": x.upper()} for x in inputs]

    @hookimpl
    def register_engines(register):
        register("shout", "upper", Shout, "Upper-cases its input.")
"""


@pytest.fixture
def site(tmp_path, monkeypatch):
    """A directory on sys.path for fake distributions, and a clean environment."""
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("NLP_TOOL_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("NLP_TOOL_PLUGINS", raising=False)
    return tmp_path


def test_builtin_plugins_are_registered_through_the_hooks(site):
    registry = load_registry(entry_points=[])
    assert registry.plugins["summarization"].as_dict() == {
        "name": "summarization",
        "version": registry.plugins["summarization"].version,
        "source": "built-in",
        "package": None,
        "tasks": ["summarize:trained", "summarize:centrality", "summarize:lead"],
        "status": "loaded",
        "error": None,
    }
    assert registry.engine("summarize").name == "trained"
    assert registry.pm.get_plugin("summarization") is not None


def test_hook_register_engines():
    registry = Registry()
    registry.add_plugin(EchoPlugin(), PluginInfo("echo", "1", "package"))
    entry = registry.engine("echo", "plain")
    assert (entry.engine_class, entry.description, entry.plugin) == (Echo, "Returns its input.", "echo")
    assert registry.plugins["echo"].tasks == ["echo:plain"]


def test_hook_register_commands():
    class Commands:
        @hookimpl
        def register_commands(self, cli):
            @cli.command()
            def hello():
                click.echo("hello")

    registry = Registry()
    registry.add_plugin(Commands(), PluginInfo("commands", "1", "package"))
    group = click.Group()
    registry.add_commands(group)
    assert "hello" in group.commands


def test_same_task_and_engine_twice_names_both_plugins():
    failures = []
    registry = Registry(on_failure=failures.append)
    registry.add_plugin(EchoPlugin(), PluginInfo("first", "1", "package"))
    registry.add_plugin(EchoPlugin(), PluginInfo("second", "1", "package"))
    second = registry.plugins["second"]
    assert second.status == "failed"
    assert "'first'" in second.error and "'second'" in second.error and "echo:plain" in second.error
    assert failures == [second]
    assert registry.engine("echo").plugin == "first"


def test_a_hook_that_raises_halfway_registers_nothing():
    class HalfBroken:
        @hookimpl
        def register_engines(self, register):
            register("echo", "plain", Echo, "")
            raise RuntimeError("model index unreachable")

    registry = Registry()
    registry.add_plugin(HalfBroken(), PluginInfo("half", "1", "package"))
    assert registry.plugins["half"].status == "failed"
    assert registry.plugins["half"].error == "RuntimeError: model index unreachable"
    assert registry.plugins["half"].tasks == []
    assert registry.tasks() == {}
    assert not registry.pm.is_registered(registry.pm.get_plugin("half"))


def test_a_command_hook_that_raises_leaves_the_group_as_it_was():
    class BadCommands:
        @hookimpl
        def register_engines(self, register):
            register("echo", "plain", Echo, "")

        @hookimpl
        def register_commands(self, cli):
            cli.add_command(click.Command("half-added"))
            raise ValueError("no")

    registry = Registry()
    registry.add_plugin(BadCommands(), PluginInfo("bad", "1", "package"))
    group = click.Group(commands=[click.Command("tasks")])
    registry.add_commands(group)
    assert list(group.commands) == ["tasks"]
    assert registry.plugins["bad"].status == "failed"
    assert registry.tasks() == {}


def test_a_command_hook_may_not_replace_existing_commands():
    class Clobber:
        @hookimpl
        def register_commands(self, cli):
            cli.add_command(click.Command("tasks"))

    registry = Registry()
    registry.add_plugin(Clobber(), PluginInfo("clobber", "1", "package"))
    tasks = click.Command("tasks")
    group = click.Group(commands=[tasks])
    registry.add_commands(group)
    assert group.commands == {"tasks": tasks}
    assert registry.plugins["clobber"].error == "RegistryError: command(s) tasks already exist"


def test_a_command_may_not_take_a_task_name_before_its_verb_is_built():
    # The command line adds the plugins' commands before it builds the verbs from the tasks,
    # so that the verbs offer no engine of a plugin that failed here.
    class Takes:
        @hookimpl
        def register_engines(self, register):
            register("echo", "loud", type("Loud", (Echo,), {"name": "loud"}), "")

        @hookimpl
        def register_commands(self, cli):
            cli.add_command(click.Command("echo"))

    registry = Registry()
    registry.add_plugin(EchoPlugin(), PluginInfo("echo", "1", "package"))
    registry.add_plugin(Takes(), PluginInfo("takes", "1", "package"))
    group = click.Group(commands=[click.Command("tasks")])
    registry.add_commands(group)
    assert list(group.commands) == ["tasks"]
    assert registry.plugins["takes"].error == "RegistryError: command(s) echo already exist"
    assert registry.tasks() == {"echo": {"plain": registry.engine("echo", "plain")}}


def test_the_plugin_that_declares_a_task_may_give_it_its_own_verb():
    from toolkit.cli.group import NlpToolGroup

    class Talk:
        contract = TaskContract(task="talk", inputs="text", description="Talk.", results={"text": "str"})

        @hookimpl
        def register_tasks(self, register):
            register(self.contract)

        @hookimpl
        def register_engines(self, register):
            register("talk", "plain", type("Plain", (Echo,), {"task": "talk"}), "")

        @hookimpl
        def register_commands(self, cli):
            cli.add_command(click.Command("talk", callback=lambda: click.echo("own verb")))

    class Intruder:
        @hookimpl
        def register_commands(self, cli):
            cli.add_command(click.Command("talk"))

    def registry() -> Registry:
        made = Registry()
        made.add_plugin(Talk(), PluginInfo("talk", "1", "package"))
        return made

    group = NlpToolGroup(name="nlp-tool", registry_factory=registry)
    result = CliRunner().invoke(group, ["talk"])
    assert result.exit_code == 0 and result.output == "own verb\n" and "warning" not in result.output
    assert group.registry.own_verbs == {"talk"}
    # Another plugin may not take the task's name, even before its owner gives the verb.
    other = Registry()
    other.add_plugin(Intruder(), PluginInfo("intruder", "1", "package"))
    other.add_plugin(Talk(), PluginInfo("talk", "1", "package"))
    commands = click.Group()
    other.add_commands(commands)
    assert other.plugins["intruder"].error == "RegistryError: command(s) talk already exist"
    assert other.plugins["talk"].status == "loaded" and list(commands.commands) == ["talk"]


def test_a_plugin_whose_commands_fail_leaves_no_verb_or_engine_choice_behind():
    from click.testing import CliRunner

    from toolkit.cli import make_cli

    class Breaks:
        @hookimpl
        def register_engines(self, register):
            register("echo", "loud", type("Loud", (Echo,), {"name": "loud"}), "")
            register("shout", "upper", type("Upper", (Echo,), {"task": "shout", "name": "upper"}), "")

        @hookimpl
        def register_commands(self, cli):
            raise RuntimeError("no commands today")

    registry = Registry()
    registry.add_plugin(EchoPlugin(), PluginInfo("echo", "1", "package"))
    registry.add_plugin(Breaks(), PluginInfo("breaks", "1", "package"))
    cli = make_cli(lambda: registry)
    result = CliRunner().invoke(cli, ["shout", "--text", "x"])
    assert result.exit_code == 2 and "No such command 'shout'" in result.output
    result = CliRunner().invoke(cli, ["echo", "--text", "x", "-e", "loud"])
    assert result.exit_code == 2 and "'loud' is not 'plain'" in result.output
    assert CliRunner().invoke(cli, ["echo", "--text", "x"]).exit_code == 0


def test_unknown_hook_name_is_reported():
    class Typo:
        @hookimpl
        def register_engine(self, register):
            pass

    registry = Registry()
    registry.add_plugin(Typo(), PluginInfo("typo", "1", "package"))
    assert registry.plugins["typo"].status == "failed"
    assert "register_engine" in registry.plugins["typo"].error


@pytest.mark.parametrize(
    "task, engine, engine_class, message",
    [
        ("echo", "plain", dict, "not a subclass"),
        ("echo", "plain", type("Reserved", (Echo,), {"options": {"model": Option(str, "", "clash")}}), "reserved"),
        (
            "echo",
            "plain",
            type("Alias", (Echo,), {"options": {"size": Option(int, 1, "n", aliases=("--model",))}}),
            "unusable flags ['--model']",
        ),
        (
            "echo",
            "plain",
            type("Alias", (Echo,), {"options": {"size": Option(int, 1, "n", aliases=("-t",))}}),
            "unusable flags ['-t']",  # one-letter flags are free, but -t is the verbs' --text
        ),
        (
            "echo",
            "plain",
            type("Alias", (Echo,), {"options": {"size": Option(int, 1, "n", aliases=("-size",))}}),
            "unusable flags ['-size']",
        ),
        (
            "echo",
            "plain",
            type("Files", (Echo,), {"record_fields": ("text", "label"), "line_file_flags": {"texts": "text"}}),
            "line_file_flags must map one free flag name to each record field",
        ),
        (
            "echo",
            "plain",
            type("Files", (Echo,), {"record_fields": ("text",), "line_file_flags": {"model": "text"}}),
            "line_file_flags must map one free flag name",
        ),
        (
            "echo",
            "plain",
            type("Bounded", (Echo,), {"options": {"tag": Option(str, "a", "t", minimum=1)}}),
            "option 'tag' has bounds but is a str, not an int or float",
        ),
        (
            "echo",
            "plain",
            type("Bounded", (Echo,), {"train_options": {"size": Option(int, 0, "n", minimum=1)}}),
            "the default of option 'size' is not accepted: option 'size' must be at least 1, not 0",
        ),
        (
            "echo",
            "plain",
            type("Typed", (Echo,), {"options": {"size": Option(int, "1", "n")}}),
            "the default of option 'size' is not accepted: option 'size' must be of type int",
        ),
        # Option names are keyword arguments of pipeline() / train() and name the flag's value.
        (
            "echo",
            "plain",
            type("Dash", (Echo,), {"options": {"max-words": Option(int, 3, "n")}}),
            "option names ['max-words'] are not Python identifiers",
        ),
        (
            "echo",
            "plain",
            type("Keyword", (Echo,), {"train_options": {"class": Option(str, "", "c")}}),
            "train option names ['class'] are not Python identifiers",
        ),
        # Flags of nlp-tool's own: --top-k, --FIELD-column / --FIELD-field, --no-header (a bool's --no-NAME).
        (
            "echo",
            "plain",
            type("TopK", (Echo,), {"options": {"k": Option(int, 1, "n", aliases=("--top-k",))}}),
            "option 'k' has unusable flags ['--top-k']",
        ),
        (
            "echo",
            "plain",
            type("Field", (Echo,), {"train_options": {"label_field": Option(str, "", "n")}}),
            "train option names ['label_field'] are reserved",
        ),
        (
            "echo",
            "plain",
            type("Field", (Echo,), {"options": {"target": Option(str, "", "n", aliases=("--label-field",))}}),
            "option 'target' has unusable flags ['--label-field']",
        ),
        (
            "echo",
            "plain",
            type("Header", (Echo,), {"options": {"header": Option(bool, False, "h")}}),
            "option 'header' has unusable flags ['--no-header']",
        ),
        (
            "echo",
            "plain",
            type("Twice", (Echo,), {"options": {"size": Option(int, 1, "n", aliases=("--length",)),
                                                "length": Option(int, 1, "n")}}),
            "flag --length of option 'length' is already the flag of option 'size' of engine echo:plain",
        ),
        (
            "echo",
            "plain",
            type("Typed", (Echo,), {"options": {"words": Option(list, [], "n")}}),
            "option 'words' has type list; an option is an int, float, str or bool",
        ),
        (
            "echo",
            "plain",
            type("NotOption", (Echo,), {"options": {"words": 3}}),
            "option 'words' is 3, not a toolkit.engine.Option",
        ),
        ("echo", "plain", type("Image", (Echo,), {"inputs": "image"}), "inputs must be one of text, question+context"),
        ("echo", "plain", type("Numbered", (Echo,), {"version": 1}), "version must be a str"),
        ("echo", "other", Echo, "Echo declares echo:plain but is registered as echo:other"),
        ("Echo Task", "plain", Echo, "task name 'Echo Task' must be lower-case"),
    ],
)
def test_bad_registrations_are_refused(task, engine, engine_class, message):
    class Bad:
        @hookimpl
        def register_engines(self, register):
            register(task, engine, engine_class, "")

    registry = Registry()
    registry.add_plugin(Bad(), PluginInfo("bad", "1", "package"))
    assert registry.plugins["bad"].status == "failed"
    assert message in registry.plugins["bad"].error


def _engine(name: str, **options: Option) -> type[Engine]:
    return type(name.title(), (Echo,), {"name": name, "options": options})


def _plugin(*engine_classes: type[Engine]) -> object:
    class Plugin:
        @hookimpl
        def register_engines(self, register):
            for engine_class in engine_classes:
                register(engine_class.task, engine_class.name, engine_class, "")

    return Plugin()


def test_an_alias_may_not_take_the_flag_of_a_builtin_engine(site):
    registry = load_registry(("toolkit_plugins.summarization",), entry_points=[])
    hijack = type("Hijack", (Echo,), {"task": "summarize", "name": "hijack",
                                      "options": {"n": Option(int, 0, "n", aliases=("--sentences",))}})
    registry.add_plugin(_plugin(hijack), PluginInfo("hijack", "1", "package"))
    assert registry.plugins["hijack"].status == "failed"
    assert registry.plugins["hijack"].error == (
        "RegistryError: summarize:hijack: flag --sentences of option 'n' is already the flag of option"
        " 'sentences' of engine summarize:trained"
    )
    assert list(registry.tasks()["summarize"]) == ["trained", "centrality", "lead"]


@pytest.mark.parametrize(
    "first, second, error",
    [
        # Engines of one task share a flag when they declare the same option.
        (_engine("a", size=Option(int, 1, "n", aliases=("--length",))), _engine("b", size=Option(int, 2, "n")), None),
        (
            _engine("a", size=Option(int, 1, "n", aliases=("--length",))),
            _engine("b", length=Option(int, 2, "n")),
            "flag --length of option 'length' is already the flag of option 'size' of engine echo:a",
        ),
        (
            _engine("a", length=Option(int, 1, "n")),
            _engine("b", size=Option(int, 2, "n", aliases=("--length",))),
            "flag --length of option 'size' is already the flag of option 'length' of engine echo:a",
        ),
        (
            _engine("a", lower=Option(bool, False, "n")),
            _engine("b", no_lower=Option(bool, False, "n")),
            "flag --no-lower of option 'no_lower' is already the flag of option 'lower' of engine echo:a",
        ),
    ],
)
def test_engines_of_a_task_share_a_flag_only_for_the_same_option(first, second, error):
    for plugins in ([_plugin(first), _plugin(second)], [_plugin(first, second)]):
        registry = Registry()
        for number, plugin in enumerate(plugins):
            registry.add_plugin(plugin, PluginInfo(f"p{number}", "1", "package"))
        failed = [info.error for info in registry.plugins.values() if info.status == "failed"]
        assert failed == ([] if error is None else [f"RegistryError: echo:b: {error}"])
        # A plugin whose hook registers both engines keeps neither when the second is refused.
        expected = {"a", "b"} if error is None else {"a"} if len(plugins) == 2 else set()
        assert set(registry.tasks().get("echo", {})) == expected


def test_unknown_task_and_engine_errors_list_what_exists():
    registry = load_registry(("toolkit_plugins.summarization",), entry_points=[])
    with pytest.raises(UnknownTaskError, match=r"unknown task 'nope' \(available: summarize\)"):
        registry.engine("nope")
    with pytest.raises(UnknownTaskError, match=r"no engine 'x' \(available: trained, centrality, lead\)"):
        registry.engine("summarize", "x")


def test_installed_plugin_is_found_through_its_entry_point(site):
    fake_dist(site, "nlp-tool-shout", GOOD_PLUGIN)
    registry = load_registry()
    info = registry.plugins["nlp-tool-shout"]
    assert (info.status, info.source, info.version, info.package, info.tasks) == (
        "loaded", "package", "1.2", "nlp-tool-shout", ["shout:upper"]
    )
    assert registry.engine("shout").engine_class().run(["a"]) == [{"text": "A"}]


def test_plugin_that_fails_to_import_is_listed_failed_and_others_load(site):
    fake_dist(site, "nlp-tool-shout", GOOD_PLUGIN)
    fake_dist(site, "nlp-tool-broken", "import not_a_module_anywhere\n")
    failures = []
    registry = load_registry(on_failure=failures.append)
    broken = registry.plugins["nlp-tool-broken"]
    assert broken.status == "failed"
    assert broken.error == "ModuleNotFoundError: No module named 'not_a_module_anywhere'"
    assert failures == [broken]
    assert registry.plugins["nlp-tool-shout"].status == "loaded"
    assert {"summarize", "shout"} <= set(registry.tasks())


def test_plugin_calling_sys_exit_on_import_is_caught(site):
    fake_dist(site, "nlp-tool-exit", "import sys\nsys.exit(3)\n")
    assert load_registry().plugins["nlp-tool-exit"].status == "failed"


@pytest.mark.parametrize("selection, loaded", [("", False), ("nlp-tool-shout", True), ("NLP_Tool_Shout,other", True), ("other", False)])
def test_env_var_selects_third_party_plugins(site, monkeypatch, selection, loaded):
    fake_dist(site, "nlp-tool-shout", GOOD_PLUGIN)
    monkeypatch.setenv("NLP_TOOL_PLUGINS", selection)
    registry = load_registry()
    info = registry.plugins["nlp-tool-shout"]
    assert (info.status == "loaded") is loaded
    assert ("shout" in registry.tasks()) is loaded
    assert registry.plugins["summarization"].status == "loaded"
    if not loaded:
        assert info.status == "disabled" and "NLP_TOOL_PLUGINS" in info.error


def test_disabled_plugin_is_not_imported_and_can_be_enabled_again(site):
    module = fake_dist(site, "nlp-tool-shout", GOOD_PLUGIN)
    set_disabled("nlp-tool-shout", True)
    assert json.loads((site / "home" / "config.json").read_text()) == {"disabled": ["nlp-tool-shout"]}
    registry = load_registry()
    assert registry.plugins["nlp-tool-shout"].status == "disabled"
    assert "shout" not in registry.tasks()
    import sys

    assert module not in sys.modules
    set_disabled("nlp-tool-shout", False)
    assert load_registry().plugins["nlp-tool-shout"].status == "loaded"


def test_damaged_config_file_warns_and_loads_everything(site):
    fake_dist(site, "nlp-tool-shout", GOOD_PLUGIN)
    (site / "home").mkdir()
    (site / "home" / "config.json").write_text("{not json")
    with pytest.warns(PluginWarning, match="cannot read the configuration file"):
        registry = load_registry()
    assert registry.plugins["nlp-tool-shout"].status == "loaded"


@pytest.mark.parametrize("config", ['{"disabled": 5}', '{"disabled": "nlp-tool-shout"}', '{"disabled": [1]}'])
def test_a_config_of_wrong_types_warns_and_loads_everything(site, config):
    # Issue 18: `echo '{"disabled": 5}' > $NLP_TOOL_HOME/config.json` took every command down with a TypeError.
    fake_dist(site, "nlp-tool-shout", GOOD_PLUGIN)
    (site / "home").mkdir()
    (site / "home" / "config.json").write_text(config)
    with pytest.warns(PluginWarning, match='"disabled" must be a list of plugin names'):
        registry = load_registry()
    assert registry.plugins["nlp-tool-shout"].status == "loaded"
    with pytest.raises(RegistryError, match="must be a list of plugin names"):
        set_disabled("nlp-tool-shout", True)
    assert (site / "home" / "config.json").read_text() == config
