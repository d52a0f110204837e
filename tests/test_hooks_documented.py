"""Every hookspec has a docstring, a section in docs/plugins.md and a test (as datasette checks its hooks)."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

from toolkit import hookspecs

ROOT = Path(__file__).resolve().parents[1]
HOOKS = sorted(
    name
    for name, fn in vars(hookspecs).items()
    if inspect.isfunction(fn) and hasattr(fn, "nlp_tool_spec")
)


def test_there_are_hooks():
    assert HOOKS == ["register_commands", "register_engines", "register_tasks"]


@pytest.mark.parametrize("hook", HOOKS)
def test_hook_has_docstring(hook):
    assert (getattr(hookspecs, hook).__doc__ or "").strip()


@pytest.mark.parametrize("hook", HOOKS)
def test_hook_is_documented(hook):
    docs = (ROOT / "docs" / "plugins.md").read_text(encoding="utf-8")
    signature = inspect.signature(getattr(hookspecs, hook))
    heading = f"### {hook}({', '.join(signature.parameters)})"
    assert heading in docs.splitlines(), f"docs/plugins.md needs a section headed {heading!r}"


@pytest.mark.parametrize("hook", HOOKS)
def test_hook_has_a_test(hook):
    tests = "\n".join(p.read_text(encoding="utf-8") for p in (ROOT / "tests").glob("test_*.py"))
    assert re.search(rf"^def test_hook_{hook}\b", tests, re.M), f"no test named test_hook_{hook}"
