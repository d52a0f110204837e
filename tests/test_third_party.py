"""Third-party plugins installed with pip, in a fresh virtual environment.

One virtual environment per test session (no system site-packages), with
nlp-tool installed the way a user installs it (a real, non-editable ``pip
install`` of the wheel built from this checkout: ``wheel_venv_bin`` in
tests/conftest.py, shared with the packaging test), gets the two example
plugins under ``examples/``:

- ``nlp-tool-keywords`` adds a ``keywords`` task: ``nlp-tool plugins`` lists
  it, its verb runs, ``toolkit.pipeline("keywords")`` finds it, and after
  ``pip uninstall`` it is gone, verb included;
- ``nlp-tool-broken`` fails to import: every built-in verb still works with
  exit code 0, one warning line names it on stderr, and ``nlp-tool plugins``
  lists it as failed with its error.

Every command runs from a scratch directory outside the repository, with a
scratch home and config directory, so neither the checkout, an editable
install nor the user's plugin settings can leak in. Each test puts the venv
into the plugin state it needs (install/uninstall from prebuilt wheels, about
a second each), so the tests pass in any order.

Needs a package index (build isolation fetches setuptools, Cython, numpy,
scipy; the install fetches the runtime dependencies). About one to three
minutes, most of it the first install.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from typing import Callable
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"
PIP_TIMEOUT = 1200  # seconds; a hung index should fail the test, not the CI job
RUN_TIMEOUT = 120

# The example distributions. Each names its entry point after itself, and the
# entry-point name is the plugin's name in `nlp-tool plugins`.
KEYWORDS = "nlp-tool-keywords"
BROKEN = "nlp-tool-broken"

TEXT = (
    "Keyword extraction finds the phrases that say what a document is about. "
    "RAKE splits text at stopwords and punctuation, then scores candidate phrases "
    "by word degree and word frequency. Keyword extraction needs no training data."
)


@dataclass
class Venv:
    python: Path
    tool: Path  # the venv's `nlp-tool` console script
    wheelhouse: Path  # wheels of the example plugins
    work: Path  # scratch working directory, outside the repository
    pip_env: dict  # environment for pip (keeps the user's pip cache)
    run_env: dict  # environment for nlp-tool (scratch home and config)
    run_checked: Callable[..., str]  # the suite's checked subprocess runner

    def pip(self, *args: str) -> str:
        return self.run_checked([self.python, "-m", "pip", *args], cwd=self.work, env=self.pip_env, timeout=PIP_TIMEOUT)

    def installed(self) -> set[str]:
        listing = json.loads(self.pip("list", "--format", "json", "--disable-pip-version-check"))
        return {row["name"].lower() for row in listing}

    def plugins_state(self, **wanted: bool) -> None:
        """Install or uninstall example plugins: ``plugins_state(keywords=True, broken=False)``."""
        have = self.installed()
        for key, want in wanted.items():
            dist = {"keywords": KEYWORDS, "broken": BROKEN}[key]
            if want and dist not in have:
                # No index: the plugin's dependency on nlp-tool must be met
                # by the nlp-tool already installed in the venv.
                self.pip("install", "--no-index", "--find-links", str(self.wheelhouse), dist)
            elif not want and dist in have:
                self.pip("uninstall", "-y", dist)

    def nlp_tool(self, *args: str, input: str | None = None) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(self.tool), *args],
            cwd=self.work,
            env=self.run_env,
            input=input,
            stdin=None if input is not None else subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=RUN_TIMEOUT,
        )

    def python_code(self, code: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(self.python), "-c", textwrap.dedent(code)],
            cwd=self.work,
            env=self.run_env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=RUN_TIMEOUT,
        )

    def plugins(self) -> dict[str, dict]:
        """`nlp-tool plugins --json`, by plugin name."""
        proc = self.nlp_tool("plugins", "--json")
        assert proc.returncode == 0, proc.stderr
        return {p["name"]: p for p in json.loads(proc.stdout)}


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory, h, wheel_venv_bin: Path) -> Venv:
    root = tmp_path_factory.mktemp("third_party")
    work, home = root / "work", root / "home"
    work.mkdir()
    home.mkdir()
    pip_env = h.outside_checkout(dict(os.environ))
    # nlp-tool keeps its settings (disabled plugins) in $NLP_TOOL_HOME, else
    # the user's config directory; scratch ones keep the developer's out.
    run_env = dict(
        pip_env,
        NLP_TOOL_HOME=str(home / "nlp-tool"),
        HOME=str(home),
        USERPROFILE=str(home),
        XDG_CONFIG_HOME=str(home / ".config"),
        APPDATA=str(home / "AppData"),
    )

    exe = ".exe" if sys.platform == "win32" else ""
    env = Venv(wheel_venv_bin / f"python{exe}", wheel_venv_bin / f"nlp-tool{exe}", root / "wheels", work, pip_env, run_env,
               h.run_checked)

    # Build the example plugins once; tests then install and uninstall the
    # wheels without touching the index. pip builds a local folder in place,
    # so build copies: no build/ or egg-info left in the checkout, and no
    # stale build/ of an earlier run slipping into the wheels.
    sources = [root / "src" / name for name in (KEYWORDS, BROKEN)]
    for name, copy in zip((KEYWORDS, BROKEN), sources):
        shutil.copytree(EXAMPLES / name, copy, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    env.pip("wheel", "--no-deps", "--wheel-dir", str(env.wheelhouse), *map(str, sources))
    return env


def test_nlp_tool_comes_from_the_venv(venv):
    proc = venv.python_code(
        """
        import sys, toolkit
        print(toolkit.__file__)
        print(sys.prefix)
        """
    )
    assert proc.returncode == 0, proc.stderr
    module, prefix = proc.stdout.split()
    assert Path(prefix).resolve() in Path(module).resolve().parents
    assert Path(REPO) not in Path(module).resolve().parents


def test_installed_plugin_is_listed_with_its_task(venv):
    venv.plugins_state(keywords=True, broken=False)
    plugins = venv.plugins()
    assert KEYWORDS in plugins, sorted(plugins)
    entry = plugins[KEYWORDS]
    assert entry["status"] == "loaded", entry
    assert entry["source"] == "package"
    assert entry["package"] == KEYWORDS
    assert entry["version"] == "0.1.0"
    assert entry["tasks"] == ["keywords:rake"]
    assert not entry["error"]
    # The built-ins are listed beside it, registered the same way.
    assert any(p["source"] == "built-in" and "summarize:lead" in p["tasks"] for p in plugins.values())


def test_plugin_verb_runs_with_its_declared_options(venv):
    venv.plugins_state(keywords=True, broken=False)

    help_text = venv.nlp_tool("keywords", "--help")
    assert help_text.returncode == 0, help_text.stderr
    assert "--top-k" in help_text.stdout and "--max-words" in help_text.stdout

    proc = venv.nlp_tool("keywords", "--text", TEXT, "--top-k", "3")
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    for keyword in ("RAKE splits text", "scores candidate phrases", "Keyword extraction"):
        assert keyword in proc.stdout
    assert "word frequency" not in proc.stdout  # fourth best: cut by --top-k 3

    # JSON output: real offsets into the input, best first, --top-k honoured,
    # and a stamp naming the plugin that ran.
    proc = venv.nlp_tool("keywords", "--text", TEXT, "--format", "json", "--top-k", "4")
    assert proc.returncode == 0, proc.stderr
    [record] = json.loads(proc.stdout)
    assert record["id"] == "text"
    assert record["stamp"]["plugin"] == KEYWORDS
    assert record["stamp"]["engine"] == "keywords:rake"
    keywords = record["result"]["keywords"]
    assert len(keywords) == 4
    for k in keywords:
        assert TEXT[k["start"] : k["end"]] == k["text"]
    assert [k["score"] for k in keywords] == sorted((k["score"] for k in keywords), reverse=True)

    # Stdin, one text per line, and an engine option of the plugin's own.
    lines = "Vector stores keep embeddings of sentences.\nGraph databases and vector stores.\n"
    proc = venv.nlp_tool("keywords", "--input-format", "lines", "--format", "jsonl", "--max-words", "1", input=lines)
    assert proc.returncode == 0, proc.stderr
    records = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [r["id"] for r in records] == ["-:1", "-:2"]
    assert [[k["text"] for k in r["result"]["keywords"]] for r in records] == [
        ["embeddings", "sentences"],
        [],
    ]


def test_pipeline_finds_the_plugin(venv):
    venv.plugins_state(keywords=True, broken=False)
    proc = venv.python_code(
        f"""
        import json, toolkit
        extract = toolkit.pipeline("keywords", top_k=2)
        one = extract({TEXT!r})
        many = extract(["Vector stores keep embeddings of sentences.", "Graph databases and vector stores."])
        print(json.dumps({{"tasks": toolkit.tasks(), "one": one, "many": many}}, default=str))
        """
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert "keywords" in json.dumps(out["tasks"])
    assert [k["text"] for k in out["one"]["keywords"]] == ["RAKE splits text", "scores candidate phrases"]
    assert [[k["text"] for k in r["keywords"]] for r in out["many"]] == [
        ["Vector stores", "embeddings"],
        ["Graph databases", "vector stores"],
    ]


def test_plugin_own_test_suite_passes_against_the_installed_copy(venv):
    # What the plugin's CI runs: its unit tests and toolkit.testing's
    # conformance checks, importing the installed plugin and nlp-tool (the
    # test folder has no package on it, and the cwd is outside the checkout).
    venv.plugins_state(keywords=True, broken=False)
    venv.pip("install", "pytest")
    proc = subprocess.run(
        [str(venv.python), "-m", "pytest", "-q", "-p", "no:cacheprovider", str(EXAMPLES / KEYWORDS / "tests")],
        cwd=venv.work,
        env=dict(venv.run_env, PYTHONDONTWRITEBYTECODE="1"),  # no __pycache__ in the checkout
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert " passed" in proc.stdout and "failed" not in proc.stdout


def test_uninstalled_plugin_is_gone(venv):
    venv.plugins_state(keywords=True, broken=False)
    assert KEYWORDS in venv.plugins()
    venv.pip("uninstall", "-y", KEYWORDS)

    plugins = venv.plugins()
    assert KEYWORDS not in plugins, plugins[KEYWORDS]
    assert not any("keywords:rake" in p["tasks"] for p in plugins.values())

    proc = venv.nlp_tool("keywords", "--text", TEXT)
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    assert "keywords" in proc.stderr

    proc = venv.python_code('import toolkit; toolkit.pipeline("keywords")')
    assert proc.returncode != 0
    assert "keywords" in proc.stderr.strip().splitlines()[-1]

    # The built-in verbs do not depend on it.
    proc = venv.nlp_tool("summarize", "--text", "One sentence here. And a second one.")
    assert proc.returncode == 0, proc.stderr


def test_broken_plugin_is_reported_and_the_tool_keeps_working(venv):
    venv.plugins_state(keywords=True, broken=True)
    doc = (
        "The council approved the new budget on Monday. It raises school funding by "
        "four percent. Critics said the plan leaves roads underfunded."
    )
    proc = venv.nlp_tool("summarize", "--text", doc)
    assert proc.returncode == 0, proc.stderr
    assert "The council approved the new budget on Monday." in proc.stdout
    warnings = proc.stderr.splitlines()
    assert len(warnings) == 1, proc.stderr
    warning = warnings[0]
    assert warning.startswith(f"nlp-tool: warning: plugin '{BROKEN}' failed to load: "), warning
    assert "nlp_tool_missing_dependency" in warning

    # Every other command answers too, with the same single warning.
    for args in (["--help"], ["tasks"], ["summarize", "--text", doc, "--format", "json"]):
        proc = venv.nlp_tool(*args)
        assert proc.returncode == 0, (args, proc.stderr)
        assert proc.stderr.splitlines() == [warning], (args, proc.stderr)

    # The healthy third-party plugin is unaffected by its broken neighbour.
    proc = venv.nlp_tool("keywords", "--text", TEXT, "--top-k", "1")
    assert proc.returncode == 0, proc.stderr
    assert "RAKE splits text" in proc.stdout

    listing = venv.nlp_tool("plugins", "--json")
    assert listing.returncode == 0, listing.stderr
    assert listing.stderr.splitlines() == [warning]
    plugins = {p["name"]: p for p in json.loads(listing.stdout)}
    entry = plugins[BROKEN]
    assert entry["status"] == "failed", entry
    assert entry["source"] == "package"
    assert entry["tasks"] == []
    assert "nlp_tool_missing_dependency" in entry["error"]
    assert plugins[KEYWORDS]["status"] == "loaded"

    # The table lists it too, and is not an error either.
    table = venv.nlp_tool("plugins")
    assert table.returncode == 0, table.stderr
    assert BROKEN in table.stdout and "failed" in table.stdout

    # Uninstalling it silences the warning.
    venv.plugins_state(broken=False)
    proc = venv.nlp_tool("summarize", "--text", doc)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
