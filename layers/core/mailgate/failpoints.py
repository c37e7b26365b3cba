"""Named points where a test can make the process die, as a Lambda timeout or an out-of-memory
kill would: no `finally`, no `except`, no flush.

`hit(name)` is a no-op unless the environment variable MAILGATE_FAILPOINTS names the point (a
comma-separated list, read once at import), which only the fault-injection tests set, in a
subprocess running a real handler: the process then exits at once with status KILLED. A unit test
may instead `enable(name, action)` in its own process (an action that raises, say).
"""

from __future__ import annotations

import os
from typing import Callable

#: the exit status of a process stopped at a failpoint
KILLED = 77

_ENABLED = frozenset(p.strip() for p in os.environ.get("MAILGATE_FAILPOINTS", "").split(",") if p.strip())
_actions: dict[str, Callable[[], None]] = {}


def hit(name: str) -> None:
    if _actions and name in _actions:
        _actions[name]()
    elif _ENABLED and name in _ENABLED:
        os._exit(KILLED)


def enable(name: str, action: Callable[[], None]) -> None:
    _actions[name] = action


def disable(name: str | None = None) -> None:
    """Forget one in-process action, or all."""
    if name is None:
        _actions.clear()
    else:
        _actions.pop(name, None)
