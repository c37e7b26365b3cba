"""Progress of a long command (`fetch now` on a big mailbox, a replay of many messages, a
suppression import): one line on standard error, redrawn in place, only on a terminal and never
with --json (a script reads the result, not the counter)."""

from __future__ import annotations

import sys
import threading
import time


class Progress:
    #: where the line goes when no stream is given (None: standard error at the time)
    default_stream = None

    def __init__(self, label: str, total: int | None = None, *, args=None, stream=None, interval: float = 0.2,
                 clock=time.monotonic) -> None:
        self.stream = next(s for s in (stream, self.default_stream, sys.stderr) if s is not None)
        self.enabled = bool(getattr(self.stream, "isatty", lambda: False)()) and not getattr(args, "json", False)
        self.label, self.total, self.done = label, total, 0
        self.interval, self.clock = interval, clock
        self.started = self._drawn = clock()
        self._lock = threading.Lock()
        self._width = 0

    def set_total(self, total: int) -> None:
        self.total = total
        self._draw(force=True)

    def advance(self, n: int = 1) -> None:
        with self._lock:
            self.done += n
        self._draw()

    def line(self) -> str:
        elapsed = max(self.clock() - self.started, 1e-9)
        rate = self.done / elapsed
        text = f"{self.label}: {self.done}"
        if self.total:
            text += f"/{self.total} ({100 * self.done / self.total:.0f}%)"
        text += f", {rate:.1f}/s"
        if self.total and rate > 0 and self.done < self.total:
            text += f", about {_duration((self.total - self.done) / rate)} left"
        return text

    def _draw(self, force: bool = False) -> None:
        if not self.enabled or (not force and self.clock() - self._drawn < self.interval):
            return
        self._drawn = self.clock()
        text = self.line()
        self.stream.write("\r" + text.ljust(self._width))
        self._width = len(text)
        self.stream.flush()

    def finish(self) -> None:
        """Clear the line (what the command prints next takes its place)."""
        if self.enabled and self._width:
            self.stream.write("\r" + " " * self._width + "\r")
            self.stream.flush()

    def __enter__(self) -> "Progress":
        self._draw(force=True)
        return self

    def __exit__(self, *exc) -> None:
        self.finish()


def _duration(seconds: float) -> str:
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} h"
    if seconds >= 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds:.0f} s"
