"""Addresses and message ids in header values (RFC 5322 §3.4, §3.6.4), read in one pass.

`address_list` is a small tokenizer for the address-list grammar with the obsolete forms mail
still carries (RFC 5322 §4.4): display names of words and quoted strings, comments (nested),
angle-addrs (with an obsolete route), groups, and bare addr-specs. It never raises and takes time
linear in its input, whatever the input: an unclosed quote, comment or angle bracket runs to the
end of the value instead of being searched for again from each position.

Display names are returned as written (quoted strings unquoted): RFC 2047 §5 encoded words are
decoded by the caller, after the address is read, so an encoded "<x@evil>" or CR/LF in a name
can never change an address.
"""

from __future__ import annotations

import re
from itertools import islice
from typing import Iterator, NamedTuple

#: Values are read up to here (a To: of several thousand recipients fits) ...
MAX_LIST_CHARS = 256 * 1024
#: ... and at most this many addresses are returned.
MAX_ADDRESSES = 10_000

_WORD_CHARS = r'[^ \t\r\n"()<>\[\]:;@,]'
#: One token: white space; an angle-addr with nothing special in it (the common case, one token);
#: a quoted string (§3.2.4; an unclosed one runs to the end, and "" inside is read as part of it);
#: a domain literal (§3.4.1); words separated by blanks (an atom or a phrase: dots are kept, so a
#: dot-atom is one token); a comment start; a run of one special ("<<<" reads as one "<").
#: Each alternative starts on its own characters; the repeats are possessive (no backtracking,
#: and no backtracking state kept per repetition: a 256 KB quoted string costs no memory).
_TOKEN = re.compile(rf'''
    (?P<ws>[ \t\r\n]++)
  | <(?P<angle>[^ \t\r\n"()<>\[\]:;@,\\]++@[^ \t\r\n"()<>\[\]:;@,\\]++)>
  | (?P<qs>"(?:[^"\\]++|\\.|"")*+"?)
  | (?P<lit>\[(?:[^\[\]\\]++|\\.)*+\]?)
  | (?P<atom>{_WORD_CHARS}++(?:[ \t]++{_WORD_CHARS}++)*+)
  | (?P<comment>\()
  | (?P<sp><++|>++|:++|[;,]++|@++)
''', re.X | re.S)
_SPACE = re.compile(r"\s")
#: The common case, read without the tokenizer: one "Plain Name <local@domain>", "<local@domain>"
#: or "local@domain" of plain ASCII words (possessive: nothing is tried twice).
_SIMPLE = re.compile(r"[ \t]*+(?:(?:(?P<name>[\w.'-]++(?: [\w.'-]++)*+) )?<(?P<angle>[\w.%+=-]++@[\w.-]++)>"
                     r"|(?P<spec>[\w.%+=-]++@[\w.-]++))[ \t]*+", re.ASCII)
#: Inside a comment (§3.2.2): a run of text and quoted pairs (an escaped parenthesis does not
#: count), a run of "(" or a run of ")".
_COMMENT_PIECE = re.compile(r"(?:[^()\\]++|\\.?)++|\(++|\)++", re.S)
_QUOTED_PAIR = re.compile(r"\\(.)", re.S)
_MSGID_RE = re.compile(r"<([^<>\s]{1,500})>")


def message_ids(value: str) -> list[str]:
    """Message-IDs (RFC 5322 §3.6.4 msg-id) inside a header value, without angle brackets."""
    return _MSGID_RE.findall(value or "")


def _comment_end(text: str, pos: int) -> int:
    """The offset after the comment that starts at text[pos] == "(" (comments nest, §3.2.2);
    an unclosed comment runs to the end."""
    depth = 0
    for m in _COMMENT_PIECE.finditer(text, pos):
        piece = m.group()
        if piece[0] == "(":
            depth += len(piece)
        elif piece[0] == ")":
            if len(piece) >= depth:
                return m.start() + depth
            depth -= len(piece)
    return len(text)


class Mailbox(NamedTuple):
    name: str       # the display name as written (quoted strings unquoted, not RFC 2047-decoded)
    address: str    # as written
    angle: bool     # written as an angle-addr ("Name <a@b>"), not as a bare addr-spec


class _Mailbox:
    """What has been read of one mailbox: words before an angle-addr, the angle-addr, a comment."""

    __slots__ = ("words", "angle", "addr", "comment")

    def __init__(self) -> None:
        self.words: list[tuple[str, str, bool]] = []   # (as written, unquoted, white space before)
        self.angle: list[str] | None = None            # tokens of an open angle-addr
        self.addr: str | None = None                   # a closed angle-addr
        self.comment = ""

    def name(self) -> str:
        out = []
        for raw, text, spaced in self.words:
            if raw[:1] != '"':  # the blanks between a phrase's words are one space; a quoted
                text = " ".join(text.split())  # string's are its own (RFC 5322 §3.2.4)
            out.append(" " + text if spaced and out else text)
        return "".join(out) or self.comment

    def close_angle(self) -> None:
        if self.angle is not None:
            self.addr = "".join(self.angle)
            self.angle = None

    def finish(self, out: list[Mailbox]) -> None:
        self.close_angle()
        if self.addr is not None:
            out.append(Mailbox(self.name(), self.addr, True))
            return
        specs = _addr_specs(self.words)
        for spec in specs:
            out.append(Mailbox(self.comment if len(specs) == 1 else "", spec, False))


def _addr_specs(words: list[tuple[str, str, bool]]) -> list[str]:
    """The addr-specs of a mailbox written without an angle-addr (§3.4.1): the words joined as
    written, white space around "." and "@" dropped (§4.4); other white space between words
    separates addresses (commas forgotten). A quoted local part stays whole."""
    specs, current = [], ""
    for raw, _, spaced in words:
        pieces = [raw] if raw[0] == '"' else raw.split()
        for i, piece in enumerate(pieces):
            if (spaced or i) and current and not current.endswith((".", "@")) and not piece.startswith((".", "@")):
                specs.append(current)
                current = ""
            current += piece
    specs.append(current)
    return [spec for spec in specs if "@" in spec]


def _unquote(token: str) -> str:
    inner = token[1:-1] if len(token) > 1 and token.endswith('"') else token[1:]
    return _QUOTED_PAIR.sub(r"\1", inner) if "\\" in inner else inner


def address_list(value: str, limit: int = MAX_ADDRESSES) -> list[Mailbox]:
    """Each mailbox of an address-list header value, in order, at most `limit`."""
    return list(islice(mailboxes(value), limit))


def mailboxes(value: str) -> Iterator[Mailbox]:
    """Each mailbox of an address-list header value, in order, as it is read; groups (§3.4) are
    flattened. Entries are not checked: the caller keeps the ones it can use."""
    simple = _SIMPLE.fullmatch(value)
    if simple:
        if simple.group("spec"):
            yield Mailbox("", simple.group("spec"), False)
        else:
            yield Mailbox(simple.group("name") or "", simple.group("angle"), True)
        return
    text = value[:MAX_LIST_CHARS]
    out: list[Mailbox] = []
    box, spaced, pos, n = _Mailbox(), False, 0, len(text)
    while pos < n:
        m = _TOKEN.match(text, pos)
        kind, pos = m.lastgroup, m.end()
        if kind == "ws":
            spaced = True
            continue
        if kind == "angle":
            box = _special(box, "<", out)
            box.angle.append(m.group(kind))
            box.close_angle()
        elif kind == "comment":
            pos = _comment_end(text, m.start())
            if not box.comment:
                box.comment = _QUOTED_PAIR.sub(r"\1", text[m.start() + 1:pos].rstrip(")")).strip()
        elif kind == "sp" and m.group()[0] in ",;":
            box.finish(out)
            box = _Mailbox()
        elif kind == "sp" and m.group()[0] in "<>:":
            box = _special(box, m.group()[0], out)
        elif box.angle is not None:
            box.angle.append(m.group())
        elif box.addr is None:  # words after a closed angle-addr are not part of anything
            tok = m.group()
            box.words.append((tok, _unquote(tok) if kind == "qs" else tok, spaced))
        spaced = kind == "comment"
        if out:
            yield from out
            out.clear()
    box.finish(out)
    yield from out


#: The longest addr-spec kept (RFC 5321 §4.5.3.1: local part 64, "@", domain 255)
MAX_ADDR_SPEC_CHARS = 320
#: A single address value (an SES or DSN field, a bounce header) is read up to here.
MAX_ADDRESS_VALUE_CHARS = 64 * 1024


def clean_addr_spec(address: str) -> str:
    """An address as read, lower-cased, if it is "local@domain" with no white space (but inside
    a quoted local part, RFC 5322 §3.4.1) and at most MAX_ADDR_SPEC_CHARS long; else ""."""
    spec = address.strip().strip(".").lower()
    local, _, domain = spec.rpartition("@")
    quoted = len(local) > 1 and local[0] == local[-1] == '"'
    if not local or not domain or len(spec) > MAX_ADDR_SPEC_CHARS or _SPACE.search(domain if quoted else spec):
        return ""
    return spec


def addr_specs(value: object, limit: int = 1000) -> list[str]:
    """The addr-specs of an address or address-list value (a header, an SES or DSN field),
    lower-cased, in order, at most `limit`; display names, comments, group names and obsolete
    routes are skipped, and entries that hold no "local@domain" are dropped. The value is read
    up to MAX_ADDRESS_VALUE_CHARS."""
    found = (clean_addr_spec(box.address) for box in mailboxes(str(value or "")[:MAX_ADDRESS_VALUE_CHARS]))
    return list(islice((spec for spec in found if spec), limit))


def addr_spec(value: object) -> str:
    """The first addr-spec of an address value, lower-cased ("" when it holds none)."""
    found = addr_specs(value, limit=1)
    return found[0] if found else ""


def _special(box: _Mailbox, tok: str, out: list[Mailbox]) -> _Mailbox:
    """"<" opens an angle-addr, ">" closes it; ":" ends an obsolete route inside one (§4.4) and
    a group's display name outside (§3.4)."""
    if tok == "<":
        if box.addr is not None:  # a second angle-addr without a comma: a second mailbox
            box.finish(out)
            box = _Mailbox()
        box.angle = []
    elif tok == ">":
        box.close_angle()
    elif box.angle is not None:
        box.angle = []
    else:
        box.words = []
    return box
