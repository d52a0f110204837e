"""toolkit.interrupts: a Ctrl-C that Python swallows in a __del__ is kept and raised again."""

from __future__ import annotations

import sys

import pytest

from toolkit import interrupts


class RaisesInDel:
    def __init__(self, error: BaseException) -> None:
        self.error = error

    def __del__(self) -> None:
        raise self.error


def test_a_ctrl_c_raised_in_a_del_is_kept_silently_and_raised_once(monkeypatch, capsys):
    monkeypatch.setattr(sys, "unraisablehook", sys.__unraisablehook__)
    interrupts.keep_swallowed()
    interrupts.raise_swallowed()  # nothing kept: nothing raised
    RaisesInDel(KeyboardInterrupt())  # dropped at once; Python cannot raise from __del__
    with pytest.raises(KeyboardInterrupt):
        interrupts.raise_swallowed()
    interrupts.raise_swallowed()  # raised once only
    assert capsys.readouterr().err == ""


def test_other_errors_in_a_del_still_reach_the_hook_before(monkeypatch):
    seen = []
    monkeypatch.setattr(sys, "unraisablehook", lambda unraisable: seen.append(unraisable.exc_type))
    interrupts.keep_swallowed()
    interrupts.keep_swallowed()  # twice: still one hook in front of the one before
    RaisesInDel(ValueError("x"))
    assert seen == [ValueError]
    interrupts.raise_swallowed()
