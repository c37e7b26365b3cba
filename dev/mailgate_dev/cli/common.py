"""Shared helpers of the `mailgate` command: output, exit codes, and reaching a stack.

Exit status: 0 success, 1 a check failed (or the thing asked for is not there), 2 bad usage.
A command module exposes `register(subparsers)`; each command's handler is `func(args) -> int`.
"""

from __future__ import annotations

import json
import re
import sys
from typing import Any

from .stack import admin_for_args, container_for_args

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    """Bad usage: printed as one line, exit status 2."""


def add_json_flag(parser) -> None:
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON")


#: What a terminal acts on, never printed raw: C0 controls but tab and line feed (ESC starts
#: escape sequences, CR rewrites a line), DEL, C1 controls (U+009B is an 8-bit CSI), and the
#: bidirectional formatting characters that make text read otherwise than it is stored
#: (U+061C, U+200E-U+200F, U+202A-U+202E, U+2066-U+2069; CVE-2021-42574, "Trojan Source").
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_UNSAFE_IN_CELL = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def _escape(match: re.Match) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def safe(text: str) -> str:
    """`text` with every character a terminal would act on shown as an escape (\\x1b, \\u202e);
    tabs and line breaks stay. Everything the CLI prints goes through it: message content is
    chosen by whoever sent the message."""
    return _UNSAFE.sub(_escape, text)


def emit(args, data: Any, text: str | None = None) -> None:
    """Print `data` as JSON with --json, else `text` (or a readable rendering of data).

    JSON escapes every control character (and, ASCII-only, every other non-ASCII one): the
    output stays exact JSON and drives no terminal. Text goes through `safe`."""
    if getattr(args, "json", False) or text is None:
        print(json.dumps(data, indent=2, sort_keys=True, default=str))
    else:
        print(safe(text))


def fail(message: str) -> int:
    """One clear line on stderr, exit status 1."""
    print(f"mailgate: {safe(message)}", file=sys.stderr)
    return EXIT_FAILED


def table(rows: list[dict[str, Any]], columns: list[str]) -> str:
    """Rows as aligned columns; a cell is one line (a line break in a value is shown escaped)."""
    if not rows:
        return "(none)"
    cells = [{c: _UNSAFE_IN_CELL.sub(_escape, str(r.get(c, ""))) for c in columns} for r in rows]
    widths = {c: max(len(c), *(len(r[c]) for r in cells)) for c in columns}
    lines = ["  ".join(c.upper().ljust(widths[c]) for c in columns)]
    lines += ["  ".join(r[c].ljust(widths[c]) for c in columns) for r in cells]
    return "\n".join(lines)


def get_container(args):
    """The container for the stack the command targets (local stack by default)."""
    return container_for_args(args)


def get_admin(args, c):
    """The operator's ports (queue depths, alarms, SES set-up) for the stack the command targets."""
    return admin_for_args(args, c)
