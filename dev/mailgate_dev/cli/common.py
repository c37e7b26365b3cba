"""Shared helpers of the `mailgate` command: output, exit codes, and reaching a stack.

Exit status: 0 success, 1 a check failed (or the thing asked for is not there), 2 bad usage.
A command module exposes `register(subparsers)`; each command's handler is `func(args) -> int`.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from .stack import container_for_args

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    """Bad usage: printed as one line, exit status 2."""


def add_json_flag(parser) -> None:
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON")


def emit(args, data: Any, text: str | None = None) -> None:
    """Print `data` as JSON with --json, else `text` (or a readable rendering of data)."""
    if getattr(args, "json", False):
        print(json.dumps(data, indent=2, sort_keys=True, default=str))
    elif text is not None:
        print(text)
    else:
        print(json.dumps(data, indent=2, sort_keys=True, default=str))


def fail(message: str) -> int:
    """One clear line on stderr, exit status 1."""
    print(f"mailgate: {message}", file=sys.stderr)
    return EXIT_FAILED


def table(rows: list[dict[str, Any]], columns: list[str]) -> str:
    if not rows:
        return "(none)"
    widths = {c: max(len(c), *(len(str(r.get(c, ""))) for r in rows)) for c in columns}
    lines = ["  ".join(c.upper().ljust(widths[c]) for c in columns)]
    lines += ["  ".join(str(r.get(c, "")).ljust(widths[c]) for c in columns) for r in rows]
    return "\n".join(lines)


def get_container(args):
    """The container for the stack the command targets (local stack by default)."""
    return container_for_args(args)
