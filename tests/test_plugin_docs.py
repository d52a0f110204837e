"""The minimal plugin of docs/plugins.md builds, installs and runs as written there."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parents[1] / "docs" / "plugins.md"


def example_files() -> dict[str, str]:
    """The files of the section "A minimal plugin": each code block after a line naming its file."""
    section = DOCS.read_text(encoding="utf-8").split("## A minimal plugin", 1)[1].split("\n## ", 1)[0]
    blocks = dict(re.findall(r"^`([\w.]+)`:\n\n```\w+\n(.*?)```", section, re.M | re.S))
    layout = {"engine.py": "src/nlp_tool_shout/engine.py", "__init__.py": "src/nlp_tool_shout/__init__.py",
              "pyproject.toml": "pyproject.toml"}
    assert set(blocks) == set(layout), sorted(blocks)
    return {layout[name]: text for name, text in blocks.items()}


def test_the_documented_plugin_builds_installs_and_runs(tmp_path):
    project = tmp_path / "nlp-tool-shout"
    for relative, text in example_files().items():
        (project / relative).parent.mkdir(parents=True, exist_ok=True)
        (project / relative).write_text(text, encoding="utf-8")
    site = tmp_path / "site"
    # Offline: the build uses the setuptools at hand, and nlp-tool itself is already installed.
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                    "--no-index", "--target", str(site), str(project)], check=True, capture_output=True)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]),
           "NLP_TOOL_HOME": str(tmp_path / "home")}
    cli = [sys.executable, "-c", "from toolkit.cli import cli; cli()"]
    shout = subprocess.run([*cli, "shout", "--text", "hello", "--exclaim"], env=env, capture_output=True, text=True)
    assert (shout.returncode, shout.stdout, shout.stderr) == (0, "HELLO!\n", "")
    plugins = subprocess.run([*cli, "plugins"], env=env, capture_output=True, text=True).stdout
    assert re.search(r"^nlp-tool-shout\s+0\.1\.0\s+package nlp-tool-shout\s+shout:upper\s+loaded$", plugins, re.M)
    api = subprocess.run([sys.executable, "-c", 'import toolkit; print(toolkit.pipeline("shout")("hi"))'], env=env,
                         capture_output=True, text=True)
    assert api.stdout == "{'text': 'HI'}\n", api.stderr


def test_the_documented_pattern_for_several_engines_gives_unique_test_ids():
    from toolkit.engine import Engine
    from toolkit.testing import engine_checks

    section = DOCS.read_text(encoding="utf-8").split("To check several engines", 1)[1]
    snippet = re.search(r"```python\n(CHECKS = .*?)\n\n@pytest", section, re.S).group(1)
    ids_expression = re.search(r"ids=(\[.*\])\)", section).group(1)

    class ShoutEngine(Engine):
        task, name, description, version = "shout", "upper", "Upper.", "1"

        def run(self, inputs):
            return [{"text": x.upper()} for x in inputs]

    class WhisperEngine(ShoutEngine):
        name = "lower"

    scope = {"ShoutEngine": ShoutEngine, "WhisperEngine": WhisperEngine, "engine_checks": engine_checks}
    exec(snippet, scope)
    ids = eval(ids_expression, scope)
    assert len(ids) == len(scope["CHECKS"]) == 2 * len(engine_checks(ShoutEngine)) and len(set(ids)) == len(ids)


def test_the_text_docs_name_where_tokenize_lives():
    text_docs = (DOCS.parent / "text.md").read_text(encoding="utf-8")
    assert "from toolkit.text import tokenize" in text_docs and "toolkit/text/tokenizer.py" in text_docs
    from toolkit.text import tokenize
    from toolkit.text.tokenizer import tokenize as defined

    assert tokenize is defined and tokenize("Hello <b>World</b>") == ["hello", "world"]
