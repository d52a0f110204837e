"""The ``nlp-tool`` command line: ``--version`` and ``--help``.

Checked twice: in-process through click's CliRunner on ``toolkit.cli:cli``,
and as the installed console script (the ``[project.scripts]`` entry point)
in a subprocess.
"""

from __future__ import annotations

import importlib.metadata
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

import toolkit
from toolkit.cli import cli

EXPECTED_VERSION_LINE = f"nlp-tool, version {toolkit.__version__}"


def nlp_tool_script() -> str:
    """Path of the installed ``nlp-tool`` script of this interpreter's environment."""
    name = "nlp-tool.exe" if sys.platform == "win32" else "nlp-tool"
    beside_python = Path(sys.executable).parent / name
    if beside_python.exists():
        return str(beside_python)
    found = shutil.which("nlp-tool")
    if found is None:
        pytest.fail("the nlp-tool script is not installed; run `pip install -e .` first")
    return found


def run_script(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [nlp_tool_script(), *args],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_version_in_process():
    result = CliRunner().invoke(cli, ["--version"])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == EXPECTED_VERSION_LINE


def test_help_in_process():
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output
    assert "--version" in result.output


def test_version_console_script():
    proc = run_script("--version")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == EXPECTED_VERSION_LINE


def test_help_console_script():
    proc = run_script("--help")
    assert proc.returncode == 0, proc.stderr
    assert "Usage:" in proc.stdout


def test_package_version_matches_distribution_metadata():
    # pyproject.toml and toolkit/__init__.py both spell the version out; they must agree.
    assert importlib.metadata.version("nlp-tool") == toolkit.__version__
