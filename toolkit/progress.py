"""A small progress bar for long work, and a ticker of elapsed time, on stderr, silent when stderr is not a terminal.

Both draw through one :class:`StatusLine`: redrawn in place with a carriage
return, and blanked (or kept) when the work ends.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import IO


class StatusLine:
    """One line of ``stream`` redrawn in place; nothing is written unless ``enabled`` (default: a terminal)."""

    def __init__(self, stream: IO[str] | None = None, enabled: bool | None = None) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self._drawn = ""

    def draw(self, text: str) -> None:
        if self.enabled:
            self._drawn = text
            self.stream.write("\r" + text + "\x1b[K")
            self.stream.flush()

    def end(self, keep: str | None = None) -> None:
        """Leave ``keep`` as the last line (with a newline), or blank what was drawn."""
        if self.enabled and keep is not None:
            self.stream.write("\r" + keep + "\x1b[K\n")
        elif self._drawn:
            # Blank the line rather than use an ANSI erase, which not every console honours.
            self.stream.write("\r" + " " * len(self._drawn) + "\r")
        self._drawn = ""
        self.stream.flush()


class ProgressBar:
    """``update(n, **stats)`` as work is done, ``close()`` at the end (or use ``with``).

    Drawn only when ``enabled`` (by default: the stream is a terminal), so
    logs and pipes get no control characters. Redraws at most ten times a
    second to stay cheap in tight loops. ``leave``: keep the last line when
    closed (a finished epoch), or blank it (a count of inputs whose results
    are the real output).
    """

    def __init__(self, total: int | None, desc: str = "", unit: str = "it", stream: IO[str] | None = None,
                 enabled: bool | None = None, width: int = 24, leave: bool = True):
        self.total, self.desc, self.unit, self.width, self.leave = total, desc, unit, width, leave
        self.line = StatusLine(stream, enabled)
        self.enabled = self.line.enabled
        self.done = 0
        self.stats: dict[str, object] = {}
        self.start = time.perf_counter()
        self._last_draw = 0.0

    def update(self, n: int = 1, **stats: object) -> None:
        self.done += n
        self.stats.update(stats)
        now = time.perf_counter()
        if self.enabled and (now - self._last_draw >= 0.1 or (self.total and self.done >= self.total)):
            self._last_draw = now
            self.line.draw(self.render(now))

    def render(self, now: float | None = None) -> str:
        elapsed = max((now or time.perf_counter()) - self.start, 1e-9)
        rate = self.done / elapsed
        parts = [self.desc] if self.desc else []
        if self.total:
            filled = int(self.width * min(self.done / self.total, 1.0))
            parts.append(f"[{'#' * filled}{'.' * (self.width - filled)}] {self.done}/{self.total}")
            parts.append(f"{rate:,.0f} {self.unit}/s")
        else:
            parts.append(f"{self.done:,} {self.unit}, {rate:,.0f}/s")
        parts += [f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in self.stats.items()]
        return " ".join(parts)

    def close(self) -> None:
        self.line.end(self.render() if self.leave else None)

    def __enter__(self) -> "ProgressBar":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class ElapsedTicker:
    """``desc`` and the seconds since it started, redrawn once a second by a thread, for work that cannot
    count its steps (an engine's ``evaluate``); the line is blanked when it stops.

    Silent, and without a thread, unless ``enabled`` (by default: the stream is a terminal).
    """

    def __init__(self, desc: str, stream: IO[str] | None = None, enabled: bool | None = None,
                 interval: float = 1.0) -> None:
        self.desc, self.interval = desc, interval
        self.line = StatusLine(stream, enabled)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> "ElapsedTicker":
        if self.line.enabled:
            self._thread = threading.Thread(target=self._run, daemon=True)
            self._thread.start()
        return self

    def _run(self) -> None:
        start = time.perf_counter()
        while not self._stop.wait(self.interval):
            self.line.draw(f"{self.desc} {time.perf_counter() - start:,.0f} s")

    def __exit__(self, *exc: object) -> None:
        if self._thread is None:
            return
        self._stop.set()
        self._thread.join()
        self.line.end()
