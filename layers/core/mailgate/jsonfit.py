"""JSON cut to a size in bytes: what EventBridge and SQS accept is counted in bytes of the JSON
actually sent, not in characters.

`dumps` is how the adapters serialize an event's detail and a queued message's body, and `size`
counts its bytes. JSON escapes every character outside ASCII (`ensure_ascii`, the default: a body
with lone surrogates from a broken charset still serializes): a BMP character takes 6 bytes, one
outside the BMP (an emoji) 12, so 20,000 emoji make 240 KB of JSON although they are 20,000
characters.

`fit(value, limit)` is `value` when its JSON is at most `limit` bytes, else a copy whose longest
strings are cut to a common length in bytes (the fewest cuts that fit), and whether it cut.
"""

from __future__ import annotations

import json
from typing import Any

#: EventBridge: an entry's Source + DetailType + Detail, in UTF-8 bytes (PutEvents, "Calculating
#: PutEvents event entry size")
EVENT_ENTRY_BYTES = 256 * 1024
#: SQS: a message body (SendMessage, 256 KiB including attributes; we send none)
QUEUE_BODY_BYTES = 256 * 1024
#: a cut string keeps at least this many bytes of JSON (enough to say what it was about)
_FLOOR = 64


def dumps(value: Any) -> str:
    return json.dumps(value, default=str)


def size(value: Any) -> int:
    return len(dumps(value).encode("utf-8"))


def _escaped(text: str) -> int:
    """Bytes of `text` inside a JSON string (without the quotes)."""
    return len(json.dumps(text)) - 2  # ensure_ascii: every byte is one character


def _strings(value: Any, out: list[tuple[Any, Any, int]]) -> None:
    """(container, key, escaped size) of every string leaf, depth first."""
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        if isinstance(item, str):
            out.append((value, key, _escaped(item)))
        elif isinstance(item, (dict, list)):
            _strings(item, out)


def _cap(sizes: list[int], budget: int) -> int:
    """The largest cap C such that sum(min(s, C)) <= budget (water filling)."""
    rest = sorted(sizes)
    total, n = 0, len(rest)
    for i, s in enumerate(rest):
        remaining = n - i
        if total + s * remaining > budget:
            return max(_FLOOR, (budget - total) // remaining)
        total += s
    return rest[-1] if rest else 0


def cut_to(text: str, limit: int) -> str:
    """The longest prefix of `text` whose JSON escape is at most `limit` bytes."""
    if _escaped(text) <= limit:
        return text
    low, high = 0, min(len(text), limit)  # each character takes at least one byte
    while low < high:
        mid = (low + high + 1) // 2
        if _escaped(text[:mid]) <= limit:
            low = mid
        else:
            high = mid - 1
    return text[:low]


def fit(value: dict | list, limit: int) -> tuple[Any, bool]:
    """(value, False) when its JSON is at most `limit` bytes; else (a copy with its longest strings
    cut, True). Structure (keys, numbers, lists) is kept as it is, so a caller caps lists first."""
    text = dumps(value)
    excess = len(text.encode("utf-8")) - limit
    if excess <= 0:
        return value, False
    value = json.loads(text)  # the JSON as sent, and a copy: the caller's values stay whole
    leaves: list[tuple[Any, Any, int]] = []
    _strings(value, leaves)
    strings = sum(s for _, _, s in leaves)
    cap = _cap([s for _, _, s in leaves], strings - excess)
    for container, key, escaped in leaves:
        if escaped > cap:
            container[key] = cut_to(container[key], cap)
    return value, True
