"""Small modules whose names say what they hold (issue 17): no module of toolkit/ grows past 500 lines."""

from __future__ import annotations

from pathlib import Path

TOOLKIT = Path(__file__).resolve().parents[1] / "toolkit"


def test_no_module_of_the_toolkit_is_over_500_lines():
    sizes = {str(path.relative_to(TOOLKIT)): len(path.read_text(encoding="utf-8").splitlines())
             for path in TOOLKIT.rglob("*.py")}
    assert sizes and {name: n for name, n in sizes.items() if n > 500} == {}
