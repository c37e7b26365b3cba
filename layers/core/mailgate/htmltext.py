"""Plain text of an HTML mail body: enough to route on, to show in an event and to read a bounce
from; not a renderer. Time linear in the input: no pattern here rescans the text after a failed match.
"""

from __future__ import annotations

import html as html_lib
import re

#: HTML beyond this many characters is not read (a mail body's words come long before).
MAX_HTML_CHARS = 2_000_000

_BLOCK_OPEN = re.compile(r"<(script|style|head)\b", re.I)
_BLOCK_CLOSE = {name: re.compile(rf"</{name}\s*>", re.I) for name in ("script", "style", "head")}
#: Where a mail client starts the quoted message in an HTML reply (Gmail, Thunderbird, Yahoo,
#: Outlook): cut here, the rest is history.
_QUOTE_START = re.compile(
    r"<blockquote\b|<div[^<>]+class=[\"'][^\"'<>]*(gmail_quote|moz-cite-prefix|yahoo_quoted)"
    r"|<div id=[\"']?(appendonsend|divRplyFwdMsg)", re.I)
_BREAKS = re.compile(r"<(br|/p|/div|/li|/tr|/h[1-6])\b[^<>]*>", re.I)
_CELLS = re.compile(r"<(td|th)\b[^<>]*>", re.I)
_TAGS = re.compile(r"<[^<>]+>")
_BLANK_RUNS = re.compile(r"\n{3,}")


def _drop_blocks(html: str) -> str:
    """Without <script>, <style> and <head> elements. One without its end tag stays (its text is
    kept): once an end tag is missing, later openings of that kind are not searched for one
    again, so the scan stays linear."""
    out, pos, start = [], 0, 0
    unclosed: set[str] = set()
    while (m := _BLOCK_OPEN.search(html, start)) is not None:
        name = m.group(1).lower()
        end = None if name in unclosed else _BLOCK_CLOSE[name].search(html, m.end())
        if end is None:
            unclosed.add(name)
            start = m.end()
            continue
        out.append(html[pos:m.start()])
        pos = start = end.end()
    out.append(html[pos:])
    return "".join(out)


def html_to_text(html: str, *, drop_quotes: bool = False) -> str:
    """Plain text of an HTML body: line breaks where blocks end, table cells apart, entities
    decoded, blank-line runs shortened. `drop_quotes` cuts at the quoted message of a reply."""
    if not html:
        return ""
    html = _drop_blocks(html[:MAX_HTML_CHARS])
    if drop_quotes:
        m = _QUOTE_START.search(html)
        if m:
            html = html[:m.start()]
    html = _CELLS.sub(" ", _BREAKS.sub("\n", html))
    text = html_lib.unescape(_TAGS.sub("", html))
    lines = [line.strip() for line in text.replace("\xa0", " ").splitlines()]
    return _BLANK_RUNS.sub("\n\n", "\n".join(lines)).strip()
