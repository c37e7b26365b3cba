"""Plain text of an HTML mail body: enough to route on, to show in an event, to read a bounce and
a reply from; not a renderer.

One pass over the HTML, in time linear in its length for every input: a tag is `<` + a letter up
to the next `>` with no `<` before it (else the `<` is text, as browsers read `a < b`); each search
for a closing `-->` or `</script>` that fails is remembered, so it is never run twice. Kept: line
breaks where blocks and `<br>` end, list items on their own lines (`- ` or `1. `), table cells
apart, entities decoded, `<pre>` as written. Dropped: `<script>`, `<style>`, `<title>` and
`<head>` (each kept as text when its end tag is missing: a stray opening tag must not hide a
message), comments.

For reply text (`mark_quotes`), the quoted message of a reply is prefixed with `> ` as a
plain-text client would write it: Apple and Thunderbird `<blockquote type="cite">`, Gmail
`gmail_quote`, Yahoo `yahoo_quoted`, Outlook for Mac `OLK_SRC_BODY_SECTION`, Proton and Zoho quote
containers; a plain `<blockquote>` counts as a quote when no other blockquote follows it (earlier
ones are indentation). Gmail's and Thunderbird's signature containers are left out there, as the
`-- ` signature of their text part is.
"""

from __future__ import annotations

import html as html_lib
import re

#: HTML beyond this many characters is not read (a mail body's words come long before).
MAX_HTML_CHARS = 2_000_000
#: Open elements tracked; deeper nesting is read as text without structure (bounded memory).
MAX_DEPTH = 5_000

# possessive quantifiers (*+): a tag name with no ">" after it must not be re-split character by
# character (quadratic backtracking)
_TOKEN = re.compile(r"<(?:(/?)([A-Za-z][^\s/<>]*+)([^<>]*+)>|!--|[!?])")
_WS = re.compile(r"[ \t\n\r\f\v]+")
_BLANK_RUNS = re.compile(r"\n{3,}")
_BLOCKQUOTE = re.compile(r"<blockquote\b", re.I)
_RAW = {name: re.compile(rf"</{name}[\s/>]", re.I) for name in ("script", "style", "title", "head")}
_VOID = frozenset("area base br col embed hr img input keygen link meta param source track wbr basefont frame".split())
_BLOCKS = frozenset(
    "address article aside blockquote center dd details dir div dl dt fieldset figcaption figure footer form "
    "h1 h2 h3 h4 h5 h6 header li main menu nav ol p pre section summary table tbody thead tfoot tr ul "
    "caption".split())
#: Elements always put on the stack, so that the end tag of a quote container or a list closes
#: the right one; others only when they change their content (an end tag with no open element of
#: its name is ignored).
_CONTAINERS = frozenset(("div", "span", "blockquote", "pre", "ul", "ol"))
#: Class or id fragments of the containers clients put the quoted message in.
_QUOTE_MARKS = ("gmail_quote", "yahoo_quoted", "olk_src_body_section", "protonmail_quote", "zmail_extra")
_SIGNATURE_MARKS = ("gmail_signature", "moz-signature")


class _Text:
    """The text being written: finished lines and the current one, with its quote mark."""

    def __init__(self, mark_quotes: bool) -> None:
        self.lines: list[str] = []
        self.cur: list[str] = []
        self.mark_quotes = mark_quotes
        self.quoted = 0   # open quote elements (their text gets "> " in mark_quotes mode)
        self.hidden = 0   # open elements whose text is left out
        self.pre = 0      # open <pre> elements (white space as written)
        self.cur_quoted = False

    def write(self, data: str) -> None:
        if self.hidden or not data:
            return
        if not self.pre:
            data = _WS.sub(" ", data)
            if not self.cur:
                data = data.lstrip(" ")
                if not data:
                    return
        elif "\n" in data:
            first, *rest = data.split("\n")
            self.write_raw(first)
            for piece in rest:
                self.newline()
                self.write_raw(piece)
            return
        self.write_raw(data)

    def write_raw(self, data: str) -> None:
        if data:
            if not self.cur:
                self.cur_quoted = self.quoted > 0
            self.cur.append(data)

    def newline(self) -> None:
        """End the current line (an empty one becomes a blank line): <br>, a newline in <pre>."""
        if self.hidden:
            return
        line = "".join(self.cur).replace("\xa0", " ").rstrip()
        if line and self.cur_quoted and self.mark_quotes:
            line = "> " + line
        self.lines.append(line)
        self.cur = []

    def block(self) -> None:
        """A block starts or ends: what follows begins a new line (no blank line added)."""
        if self.cur:
            self.newline()

    def result(self, limit: int) -> str:
        self.hidden = 0
        self.block()
        return _BLANK_RUNS.sub("\n\n", "\n".join(self.lines)).strip()[:limit]


def _attrs_have(attrs: str, marks: tuple[str, ...]) -> bool:
    low = attrs.lower()
    return any(m in low for m in marks)


class _Reader:
    """The single pass: tokens, the stack of open elements and what each one changes."""

    def __init__(self, html: str, mark_quotes: bool, drop_quotes: bool) -> None:
        self.html = html
        self.out = _Text(mark_quotes)
        self.mark_quotes, self.drop_quotes = mark_quotes, drop_quotes
        self.stack: list[tuple[str, str]] = []   # (tag name, effect)
        self.open: dict[str, int] = {}           # tag name -> how many are on the stack
        self.lists: list[list] = []              # [kind, counter] of the open <ul>/<ol>
        self.missing: dict[str, int] = {}        # searched text -> position after which it is absent
        last = None
        if mark_quotes or drop_quotes:
            for last in _BLOCKQUOTE.finditer(html):
                pass
        self.last_blockquote = last.start() if last else -1

    def find(self, what: str, pos: int) -> int:
        """str.find, or a compiled pattern's search start; a failed search is remembered."""
        if self.missing.get(what, len(self.html) + 1) <= pos:
            return -1
        pattern = _RAW.get(what)
        if pattern is not None:
            m = pattern.search(self.html, pos)
            at = m.start() if m else -1
        else:
            at = self.html.find(what, pos)
        if at < 0:
            self.missing[what] = pos
        return at

    def run(self) -> None:
        html, pos, out, search = self.html, 0, self.out, _TOKEN.search
        while (m := search(html, pos)) is not None:
            start = m.start()
            if start > pos:
                chunk = html[pos:start]
                if out.pre or not chunk.isspace():
                    out.write(html_lib.unescape(chunk) if "&" in chunk else chunk)
                elif out.cur and not out.hidden:  # white space between inline elements
                    out.cur.append(" ")
            closing, name, attrs = m.groups()
            if name is None:
                pos = self.special(m)
            elif closing:
                self.end_tag(name.lower())
                pos = m.end()
            elif name == "br" or name == "BR":
                out.newline()
                pos = m.end()
            else:
                pos = self.start_tag(name.lower(), attrs, m.end())
        if pos < len(html):
            out.write(html_lib.unescape(html[pos:]))

    def special(self, m: re.Match) -> int:
        """A comment (`<!--` to `-->`), a doctype or processing instruction (to the next `>`).
        A comment with no end runs to the next `>`; with no `>` either, the rest is text (no tag
        can follow: every tag ends with a `>`)."""
        if m.group(0) == "<!--":
            end = self.find("-->", m.end())
            if end >= 0:
                return end + 3
        end = self.find(">", m.end())
        if end < 0:
            self.out.write(html_lib.unescape(self.html[m.start():]))
            return len(self.html)
        return end + 1

    def start_tag(self, name: str, attrs: str, pos: int) -> int:
        out = self.out
        if name in ("script", "style", "title", "head"):
            end = self.find(name, pos)
            if end >= 0:
                close = self.find(">", end)
                return close + 1 if close >= 0 else len(self.html)
            return pos  # no end tag: read what follows as ordinary HTML
        if name == "br":
            out.newline()
        elif name == "hr":
            out.block()
            out.write_raw("-" * 10)
            out.newline()
        elif name in ("td", "th"):
            if out.cur:
                out.write_raw(" ")
        elif name in _BLOCKS:
            out.block()
        if name == "li":
            self.list_item()
        if name not in _VOID:
            effect = self.effect(name, attrs, pos)
            if effect or name in _CONTAINERS:
                self.push(name, effect)
        return pos

    def effect(self, name: str, attrs: str, pos: int) -> str:
        """What an element changes for its content: quote, hide, pre, list or nothing."""
        if name == "pre":
            return "pre"
        if name in ("ul", "ol"):
            return name
        if not (self.mark_quotes or self.drop_quotes) or not attrs and name != "blockquote":
            return ""
        if self.mark_quotes and _attrs_have(attrs, _SIGNATURE_MARKS):
            return "hide"
        quote = _attrs_have(attrs, _QUOTE_MARKS) or (
            name == "blockquote" and ("cite" in attrs.lower() or pos > self.last_blockquote))
        if not quote:
            return ""
        return "hide" if self.drop_quotes else "quote"

    def push(self, name: str, effect: str) -> None:
        if len(self.stack) >= MAX_DEPTH:
            return
        self.stack.append((name, effect))
        self.open[name] = self.open.get(name, 0) + 1
        self.apply(effect, +1)

    def apply(self, effect: str, step: int) -> None:
        out = self.out
        if effect == "quote":
            out.block()
            out.quoted += step
        elif effect == "hide":
            out.block()
            out.hidden += step
        elif effect == "pre":
            out.pre += step
        elif effect in ("ul", "ol"):
            if step > 0:
                self.lists.append([effect, 0])
            elif self.lists:
                self.lists.pop()

    def end_tag(self, name: str) -> None:
        if name in _BLOCKS:
            self.out.block()
        elif name == "br":  # </br> is read as <br> by browsers
            self.out.newline()
        if not self.open.get(name):
            return
        while self.stack:  # pop to the element this tag closes (each element is popped once)
            top, effect = self.stack.pop()
            self.open[top] -= 1
            self.apply(effect, -1)
            if top == name:
                break

    def list_item(self) -> None:
        if self.lists:
            kind = self.lists[-1]
            kind[1] += 1
            self.out.write_raw(f"{kind[1]}. " if kind[0] == "ol" else "- ")
        else:
            self.out.write_raw("- ")


def html_to_text(html: str, *, drop_quotes: bool = False, mark_quotes: bool = False) -> str:
    """Plain text of an HTML body (see the module's docstring). `drop_quotes` leaves out the
    quoted message of a reply; `mark_quotes` prefixes its lines with `> ` instead (for reply
    text, which then reads the quote headers and interleaved answers around it)."""
    if not html:
        return ""
    html = html[:MAX_HTML_CHARS]
    reader = _Reader(html, mark_quotes, drop_quotes)
    reader.run()
    return reader.out.result(MAX_HTML_CHARS)
