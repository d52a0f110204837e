"""nlp-tool: a plugin-based NLP task toolkit with a C-accelerated core."""

from typing import Any

__version__ = "0.1.0"

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
    # Plugins import the marker at start-up, so `from toolkit import hookimpl` must stay cheap: only pluggy.
    # Even that waits until asked, so that importing this package imports nothing and the command line can
    # catch a Ctrl-C during its start-up (toolkit.cli) from its first import on.
    if name == "hookimpl":
        import pluggy

        globals()[name] = marker = pluggy.HookimplMarker("nlp_tool")
        return marker
    if name not in _LAZY:
        raise AttributeError(f"module 'toolkit' has no attribute {name!r}")
    import importlib

    module, attribute = _LAZY[name]
    value = getattr(importlib.import_module(module), attribute)
    globals()[name] = value
    return value
