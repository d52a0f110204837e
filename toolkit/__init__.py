"""nlp-tool: a plugin-based NLP task toolkit with a C-accelerated core."""

from typing import Any

import pluggy

__version__ = "0.1.0"

# Plugins import this marker at start-up, so `from toolkit import hookimpl`
# must stay cheap: only pluggy here, everything else is loaded on first use.
hookimpl = pluggy.HookimplMarker("nlp_tool")

_LAZY = {
    "pipeline": ("toolkit.api", "pipeline"),
    "run": ("toolkit.api", "run"),
    "tasks": ("toolkit.api", "tasks"),
    "train": ("toolkit.api", "train"),
    "evaluate": ("toolkit.api", "evaluate"),
    "Engine": ("toolkit.engine", "Engine"),
    "ErrorRecord": ("toolkit.api", "ErrorRecord"),
}

__all__ = ["__version__", "hookimpl", *_LAZY]


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'toolkit' has no attribute {name!r}")
    import importlib

    module, attribute = _LAZY[name]
    value = getattr(importlib.import_module(module), attribute)
    globals()[name] = value
    return value
