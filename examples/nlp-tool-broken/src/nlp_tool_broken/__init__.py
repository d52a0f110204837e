"""A deliberately broken nlp-tool plugin, for testing.

Importing this module raises ModuleNotFoundError, as a real plugin would after
one of its dependencies was uninstalled. nlp-tool must keep working: one
warning line on stderr, the plugin listed as failed with this error, every
other verb unaffected. ``tests/test_third_party.py`` installs it to show that.
"""

import nlp_tool_missing_dependency  # noqa: F401  (not installed anywhere, on purpose)

from toolkit import hookimpl


@hookimpl
def register_engines(register):
    # Never reached: the import above fails first. Written out so that the
    # module looks like an ordinary plugin apart from its missing dependency.
    raise AssertionError("unreachable")
