"""A time limit for work that may not end in time on hostile input (a soft deadline).

`time_limit(seconds)` raises `OutOfTime` in the block after `seconds`, by SIGALRM: the handler
runs between two bytecodes of the main thread, and the regular-expression engine checks for
signals while it matches, so a slow parse or a backtracking pattern stops there. Code that never
returns to the interpreter (one C call that runs for minutes) cannot be stopped this way: the
inbound store's attempt marker makes the retry after such a kill record the message instead of
running it again.

Outside the main thread (the local stack runs handlers in threads) or without SIGALRM the limit
is not enforced; the marker still is. A timer already set (pytest-timeout's) is set again on exit
with what is left of it.
"""

from __future__ import annotations

import signal
import threading
import time
from contextlib import contextmanager
from typing import Iterator


class OutOfTime(BaseException):
    """The block ran past its limit. A BaseException, so that no `except Exception` on the way
    (a lenient parser's, say) takes it for an ordinary error and carries on."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"did not finish within {round(seconds, 1):g} s")
        self.seconds = seconds


@contextmanager
def time_limit(seconds: float | None) -> Iterator[None]:
    if seconds is None or not hasattr(signal, "setitimer") or threading.current_thread() is not threading.main_thread():
        yield
        return
    limit = max(float(seconds), 0.001)

    def alarm(signum, frame):
        raise OutOfTime(limit)

    previous = signal.signal(signal.SIGALRM, alarm)
    outer, _ = signal.setitimer(signal.ITIMER_REAL, limit)
    started = time.monotonic()
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        if outer:
            signal.setitimer(signal.ITIMER_REAL, max(outer - (time.monotonic() - started), 0.001))
