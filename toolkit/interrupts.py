"""A Ctrl-C that Python swallowed, kept to be raised again where the work can stop.

Python raises a Ctrl-C's KeyboardInterrupt in whatever the main thread runs
at that moment. In a ``__del__`` or a weakref callback (a Dask future's, as
a --cluster run drops the chunks it has read) it only prints the traceback
and goes on: the run ends as if no Ctrl-C had come, exit 0 (as a cluster
run once did in CI). The command line keeps such a Ctrl-C (:func:`keep_swallowed`), and
the loops that wait on chunks raise it again (:func:`raise_swallowed`), as
does the command when it ends.
"""

from __future__ import annotations

import sys
from typing import Any

_swallowed = False
_other_hook: Any = sys.__unraisablehook__


def keep_swallowed() -> None:
    """From now on, a KeyboardInterrupt Python cannot raise is kept, silently; other such errors are reported
    as before."""
    global _other_hook
    if sys.unraisablehook is not _hook:
        _other_hook, sys.unraisablehook = sys.unraisablehook, _hook


def _hook(unraisable: Any) -> None:
    global _swallowed
    if isinstance(unraisable.exc_value, KeyboardInterrupt):
        _swallowed = True
    else:
        _other_hook(unraisable)


def raise_swallowed() -> None:
    """Raise KeyboardInterrupt if a Ctrl-C was swallowed since the last call."""
    global _swallowed
    if _swallowed:
        _swallowed = False
        raise KeyboardInterrupt
