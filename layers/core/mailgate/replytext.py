"""The new text of a reply: quoted history, forwarded copies and signatures left out (pure).

What is kept and dropped is tests/data/understanding/REPLY-RULES.md, with examples in
docs/inbound.md. Each line gets a kind (blank, quoted with `>`, quote header, header block,
separator, forward marker, `-- ` signature, phone signature, text), then one walk keeps the text:

- a quote header is recognised by its structure, not by one phrase: one to three lines ending in a
  colon that hold a verb of writing (in any of the languages of `replytext_vocab`) with a date, an
  address or the usual opening word ("On … Tom <…> wrote:", "Am … schrieb …:", "W dniu … napisał(a):",
  "2016-03-03 17:21 GMT+01:00 Tom <…>:"), or a date and an address before the colon (mail.ru,
  Yandex, date-first Gmail); a bare "Tom wrote:", or a header that lost its colon, counts only
  when `>` lines follow;
- a header block is two or more fields of a quoted message (`From:/Sent:/To:/Subject:` in any
  language), or a `From:` with an address at the start of a paragraph;
- a quote header followed by `>` lines drops the header and those lines, and the walk goes on:
  what follows is an answer (bottom-posting, interleaving). A quote header, header block or
  separator followed by unquoted text drops everything from there (Outlook, forwards);
- a forward with a note keeps the note; with no note, the forward is the content and is kept;
- `>` lines with no header before them are a quote when there are two or more of them (one
  `>>> … <<<` line is decoration), or always in text made from HTML (`htmltext` marks them).

Time is linear in the text: every line is looked at a bounded number of times, the header tests
run only on lines at most `MAX_HEADER_CHARS` long that end in a colon or come just before quoted
lines, and no pattern here can backtrack over a long run. Replies longer than `MAX_REPLY_INPUT` are read up to there.
"""

from __future__ import annotations

import re

from .htmltext import MAX_HTML_CHARS, html_to_text
from .replytext_vocab import FIELD_ROLE, FORWARDED, MOBILE_SIGNATURES, OPENER, ORIGINAL_MESSAGE, WROTE

#: Replies longer than this are read up to here (the new text of a reply comes first).
MAX_REPLY_INPUT = 200_000
#: A quote header (up to HEADER_LINES lines) longer than this is text.
MAX_HEADER_CHARS = 400
HEADER_LINES = 3
#: The most words a bare "Tom Olsen wrote:" (no date, no address) may have.
MAX_BARE_HEADER_WORDS = 8

# zero-width characters and the bidirectional marks Outlook and RTL clients put around words
_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u200e\u200f\u202a\u202b\u202c\u202d\u202e"
                                    "\u2060\u2066\u2067\u2068\u2069\ufeff"))
_DATE = re.compile(r"(?<!\d)(?:\d{1,2}[:.]\d{2}(?!\d)|(?:19|20)\d{2}(?!\d)|\d{1,4}[./-]\d{1,2}[./-]\d{1,4})")
_STARTS_WITH_DATE = re.compile(r"\d{1,4}[./-]\d{1,2}|\d{1,2}\.?\s\S{2,12}\.?,?\s(?:19|20)\d{2}|(?:19|20)\d{2}年")
_HEADER_MID = re.compile(r"(?<=[\s-])(?:On|Le|Am|El|Em|Op|Il|Den|På|W dniu)\s")
_SENTENCE_END = (".", "!", "?", ";", ":", "：")

# Line kinds
BLANK, QUOTED, TEXT, HEADER, BARE, BLOCK, FIELD = "e", "q", "t", "h", "w", "b", "F"
SEPARATOR, RULE, FORWARD, SIGNATURE, MOBILE, DASHED = "o", "r", "f", "s", "m", "d"


def _clean(line: str) -> str:
    return line.translate(_INVISIBLE).strip()


def _key(text: str) -> str:
    """A separator's or marker's words, lower case, without the dashes, stars and colon."""
    return " ".join(text.strip("-_=*~: \t").lower().split())


def _field_role(s: str) -> str | None:
    """'from', 'date', 'to', 'cc' or 'subject' for a header field line (`*From:* …`, `De :`)."""
    colon = s.find(":", 0, 40)
    if colon < 0:
        colon = s.find("：", 0, 40)
    if colon <= 0:
        return None
    return FIELD_ROLE.get(" ".join(s[:colon].strip(" *\t").lower().split()))


def _line_kind(s: str) -> str:
    """The kind of one cleaned line, before its neighbours are looked at."""
    if not s:
        return BLANK
    if s[0] == ">":
        return QUOTED
    if s == "--":
        return SIGNATURE  # RFC 3676 §4.3 "-- " (the trailing space is often lost)
    bare = s.strip("* ")
    if bare[:2] in ("--", "__", "==", "~~"):
        key = _key(bare)
        if not key:
            return RULE
        return SEPARATOR if key in ORIGINAL_MESSAGE else FORWARD if key in FORWARDED else DASHED
    if s[-1] in ":：" and _key(s) in FORWARDED:
        return FORWARD  # Apple Mail "Begin forwarded message:"
    if _field_role(s):
        return FIELD
    if len(s) <= 100 and s.lower().startswith(MOBILE_SIGNATURES) and len(s.split()) <= 10:
        return MOBILE
    return TEXT


def _begins_header(s: str) -> bool:
    """Does this line start the way quote headers start ("On …", "Am …", a date)?"""
    s = s.lstrip("-* ")
    return bool(OPENER.match(s) or _STARTS_WITH_DATE.match(s))


def _strength(unit: str, dashed: bool = False) -> int:
    """2: a quote header; 1: a bare one ("Tom wrote:"), a header only when quoted lines follow;
    0: not a header."""
    body = unit.strip().rstrip(":：").strip()
    if not body or len(body) > MAX_HEADER_CHARS:
        return 0
    verb = WROTE.search(body)
    date = _DATE.search(body) is not None
    address = "@" in body
    if dashed:
        return 2 if verb else 0
    opens = _begins_header(body)
    near_end = verb is not None and WROTE.search(" ".join(body.split()[-2:])) is not None
    if unit.rstrip()[-1:] not in (":", "："):
        # no colon (old Gmail "2011/4/7 Tom <tom@…>", a client that dropped it): a header only
        # before quoted lines, and only in the shape of one
        dated = date and opens and "@" in body.split()[-1]
        return 1 if dated or (verb and opens and (date or address)) else 0
    if verb:
        if (near_end and (date or address or opens)) or (opens and (date or address)) or (date and address):
            return 2
        return 1 if len(body.split()) <= MAX_BARE_HEADER_WORDS else 0
    return 2 if date and "@" in body.split()[-1] else 0  # "26.06.2014, 14:41, "Ann" <ann@…>:"


def _split_shared_lines(lines: list[str]) -> list[str]:
    """A header that shares its line with the reply ("Thanks! On Mon, … wrote:") gets its own line."""
    out = []
    for line in lines:
        if line.rstrip()[-1:] not in (":", "：") or len(line) > 2 * MAX_HEADER_CHARS:
            out.append(line)
            continue
        s = _clean(line)
        if len(s) <= MAX_HEADER_CHARS and not _begins_header(s):
            m = _HEADER_MID.search(s)
            if m and s[:m.start()].rstrip(" -") and _strength(s[m.start():]) == 2:
                out += [s[:m.start()].rstrip(" -"), s[m.start():]]
                continue
        out.append(line)
    return out


def _header_unit(cleaned: list[str], kinds: list[str], i: int) -> tuple[int, int]:
    """(first line, strength) of the quote header ending at line i: the line alone, or with the
    one or two lines before it when the header was wrapped ("On … Tom Olsen" / "<tom@…> wrote:")."""
    alone = _strength(cleaned[i])
    j = i
    while i - j < HEADER_LINES - 1 and j > 0 and kinds[j - 1] in (TEXT, BARE):
        prev = cleaned[j - 1]
        if prev.endswith(_SENTENCE_END) or len(prev) > MAX_HEADER_CHARS // 2:
            break
        if _begins_header(prev):
            j -= 1
            strength = _strength(" ".join(cleaned[j:i + 1]))
            return (j, strength) if strength >= alone else (i, alone)
        first = cleaned[j]
        if not (first[0] in "<(" or len(first.split()) <= 3 or "@" in first.split()[0]):
            break
        j -= 1
    if j < i:
        strength = _strength(" ".join(cleaned[j:i + 1]))
        if strength > alone:
            return j, strength
    return i, alone


def _mark_headers(cleaned: list[str], kinds: list[str]) -> None:
    """Quote headers (HEADER, BARE) over TEXT and DASHED lines: the lines ending in a colon, and
    those just before quoted lines (a header whose colon was lost)."""
    before_quote = [False] * len(kinds)
    quote_next = False
    for i in range(len(kinds) - 1, -1, -1):
        before_quote[i] = quote_next
        if kinds[i] != BLANK:
            quote_next = kinds[i] == QUOTED
    for i, s in enumerate(cleaned):
        kind = kinds[i]
        if kind == DASHED:
            kinds[i] = HEADER if _strength(_key(s), dashed=True) else TEXT
        elif kind == TEXT and len(s) <= MAX_HEADER_CHARS and (s[-1] in ":：" or before_quote[i]):
            first, strength = _header_unit(cleaned, kinds, i)
            if strength:
                kinds[first:i + 1] = [HEADER if strength == 2 else BARE] * (i + 1 - first)


def _mark_blocks(cleaned: list[str], kinds: list[str]) -> None:
    """Runs of header fields become a BLOCK (their first line) when they are a quoted message's
    header: two or more roles including From or Date, or a From with an address that starts a
    paragraph or follows a separator. Other FIELD lines are TEXT."""
    n, i = len(cleaned), 0
    while i < n:
        if kinds[i] != FIELD:
            i += 1
            continue
        roles, j, loose = {_field_role(cleaned[i])}, i + 1, 0
        while j < n and loose < 2 and kinds[j] in (FIELD, TEXT):
            if kinds[j] == FIELD:
                roles.add(_field_role(cleaned[j]))
                loose = 0
            else:
                loose += 1  # a wrapped value ("bob@example.com]", "line subject")
            j += 1
        before = next((kinds[k] for k in range(i - 1, max(i - 3, -1), -1) if kinds[k] != BLANK), None)
        alone = roles == {"from"} and ("@" in cleaned[i] or before in (RULE, SEPARATOR)) and (
            i == 0 or kinds[i - 1] in (BLANK, RULE, SEPARATOR))
        head = len(roles) >= 2 and roles & {"from", "date"}
        for k in range(i, j):
            if kinds[k] == FIELD:
                kinds[k] = TEXT
        if head or alone:
            kinds[i] = BLOCK
        i = j


def _classify(cleaned: list[str]) -> list[str]:
    """The kind of every line (cleaned by `_clean`)."""
    kinds = [_line_kind(s) for s in cleaned]
    _mark_blocks(cleaned, kinds)
    _mark_headers(cleaned, kinds)
    for i, kind in enumerate(kinds):  # a dash or underscore line is a separator before a header
        if kind == RULE:
            nxt = next((kinds[k] for k in range(i + 1, min(i + 3, len(kinds))) if kinds[k] != BLANK), None)
            kinds[i] = RULE if nxt in (BLOCK, HEADER, SEPARATOR) else TEXT
    return kinds


def _skip_blank(kinds: list[str], i: int) -> int:
    while i < len(kinds) and kinds[i] == BLANK:
        i += 1
    return i


def _quote_end(cleaned: list[str], kinds: list[str], i: int) -> int:
    """The line after the `>` run starting at i (with its blank lines). A single unquoted line
    between two quoted ones that is a piece of a wrapped link stays in the quote."""
    n = len(kinds)
    while i < n:
        if kinds[i] in (QUOTED, BLANK):
            i += 1
        elif 0 < i < n - 1 and kinds[i - 1] == kinds[i + 1] == QUOTED and _link_piece(cleaned[i]):
            i += 1
        else:
            break
    return i


def _link_piece(s: str) -> bool:
    return " " not in s or "://" in s or s.endswith(">")


def _walk(lines: list[str], cleaned: list[str], kinds: list[str], from_html: bool) -> list[str] | None:
    """The lines to keep; None when the text is kept whole: a forward with no note, or a quoted
    message's header block or separator with nothing above it (what Outlook forwards look like)."""
    loose_quotes = from_html or kinds.count(QUOTED) >= 2
    out: list[str] = []
    n, i = len(lines), 0
    while i < n:
        kind = kinds[i]
        if kind in (HEADER, BARE):
            end = i
            while end < n and kinds[end] == kind:
                end += 1
            after = _skip_blank(kinds, end)
            if after < n and kinds[after] == QUOTED:
                i = _skip_blank(kinds, _quote_end(cleaned, kinds, after))
                continue
            if kind == HEADER:
                return out  # the quoted message follows unquoted (Outlook style), or nothing does
            out += lines[i:end]
            i = end
        elif kind == QUOTED and loose_quotes:
            i = _skip_blank(kinds, _quote_end(cleaned, kinds, i))
        elif kind == MOBILE and _ends_segment(kinds, i + 1):
            i += 1
        elif kind in (BLOCK, SEPARATOR, RULE, FORWARD, SIGNATURE):
            return out if any(line.strip() for line in out) else None  # cut, or the whole is the content
        else:
            out.append(lines[i])
            i += 1
    return out


def _ends_segment(kinds: list[str], i: int) -> bool:
    """Nothing but blank lines before a quote, a header, a separator or the end?"""
    i = _skip_blank(kinds, i)
    return i >= len(kinds) or kinds[i] not in (TEXT, MOBILE)


def _tidy(lines: list[str]) -> str:
    return "\n".join(line.rstrip() for line in lines).strip("\n")


def _extract(text: str, from_html: bool) -> str | None:
    """The new text, or None when the whole text is the content (see `_walk`)."""
    text = text[:MAX_REPLY_INPUT].replace("\r\n", "\n").replace("\r", "\n")
    lines = _split_shared_lines(text.split("\n"))
    cleaned = [line.strip() for line in "\n".join(lines).translate(_INVISIBLE).split("\n")]
    kept = _walk(lines, cleaned, _classify(cleaned), from_html)
    return None if kept is None else _tidy(kept).strip()


def extract_reply(text: str) -> str:
    """The new text of a reply given as plain text (see the module's docstring)."""
    if not text:
        return ""
    found = _extract(text, from_html=False)
    return found if found is not None else _tidy(text[:MAX_REPLY_INPUT].replace("\r", "").split("\n")).strip()


def reply_input_cut(text: str, html: str) -> int:
    """The number of characters `reply_text` reads of the body it reads, when the body is longer
    (MAX_REPLY_INPUT of a text part, MAX_HTML_CHARS of HTML); 0 when it reads it all."""
    if text.strip():
        return MAX_REPLY_INPUT if len(text) > MAX_REPLY_INPUT else 0
    return MAX_HTML_CHARS if len(html) > MAX_HTML_CHARS else 0


def reply_text(text: str, html: str) -> str:
    """The new text of a reply from its text part, or from its HTML part when it has no text.
    HTML is read with its quoted parts marked `>` (`htmltext`), where every `>` line is a quote."""
    if text.strip():
        return extract_reply(text)
    if not html:
        return ""
    found = _extract(html_to_text(html, mark_quotes=True), from_html=True)
    return found if found is not None else html_to_text(html)
