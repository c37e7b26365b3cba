"""Header fields and their values, read in one pass: header blocks (RFC 5322 §2.2), charsets,
encoded words (RFC 2047) and MIME parameters (RFC 2045 §5.1, RFC 2231).

Every function here takes time linear in its input and never raises on bad input: an unknown
charset, a broken encoded word or an unclosed quote all give text. What is too long to be useful
is cut at a named bound, and the cut is reported to the caller (`HeaderBlock.defects`).
"""

from __future__ import annotations

import binascii
import codecs
import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Iterator
from urllib.parse import unquote_to_bytes

#: Decoded header values are cut here (RFC 5322 §2.1.1 caps a line at 998 characters; a folded
#: value may be longer, but nothing we show needs more).
MAX_HEADER_CHARS = 8192
#: A field's raw value is kept up to here: a To: of ten thousand recipients fits.
MAX_FIELD_CHARS = 512 * 1024
#: Fields kept from one header block, and values kept per field name: a header bomb cannot
#: fill memory with fields.
MAX_FIELDS = 10_000
MAX_VALUES_PER_NAME = 1000
#: Encoded words are decoded in the first this many characters of a value (the decoded text is
#: cut at MAX_HEADER_CHARS anyway; the most verbose encoding takes 9 characters per character).
MAX_DECODE_CHARS = 16 * MAX_HEADER_CHARS
#: A Content-Type or Content-Disposition value is read up to here, and up to this many
#: parameters (RFC 2231 sections included): a file name is cut at 255 characters anyway.
MAX_PARAMS_CHARS = 16 * 1024
MAX_PARAMS = 100

_CONTROL_RE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]+")
_WS_RE = re.compile(r"\s+")

# --- charsets ----------------------------------------------------------------------------------

#: Codecs implemented in Python whose decoding is slow or super-linear on hostile input
#: (punycode inserts into a list per character): read as unknown charsets.
_SLOW_CODECS = frozenset({"punycode", "idna"})


@lru_cache(maxsize=256)
def _codec(charset: str) -> str:
    """The codec name for a declared charset; "" when Python has no text codec by that name."""
    charset = charset.strip().strip('"').lower() or "us-ascii"
    if charset in ("unknown-8bit", "x-unknown", "8bit", "default"):
        return "utf-8"
    try:
        info = codecs.lookup(charset)
    except (LookupError, ValueError):
        return ""
    if not getattr(info, "_is_text_encoding", True) or info.name in _SLOW_CODECS:
        return ""
    return info.name


def decode_bytes(data, charset: str | None) -> str:
    """Bytes (or any buffer) in a declared charset; an unknown or wrong charset never raises
    (UTF-8, then Latin-1)."""
    codec = _codec((charset or "")[:64])
    if codec:
        try:
            return str(data, codec)
        except (UnicodeError, LookupError, ValueError, TypeError):
            pass
    try:
        return str(data, "utf-8")
    except UnicodeDecodeError:
        return str(data, "latin-1")


def fix_jis(text: str) -> str:
    """ISO-2022-JP (RFC 1468) that reached us undecoded (no or a wrong charset): decode it.

    Its escape sequences are 7-bit, so any charset "decodes" it; ESC $ gives it away."""
    if "\x1b$" not in text:
        return text
    try:
        return text.encode("latin-1").decode("iso-2022-jp")
    except (UnicodeError, LookupError):
        return text


def clean_header(value: str, limit: int = MAX_HEADER_CHARS) -> str:
    """Unfold, drop control characters (CR/LF injected into a value cannot start a new header)."""
    if len(value) <= limit and value.isprintable():  # the common case: one clean line
        return value.strip()
    return _WS_RE.sub(" ", _CONTROL_RE.sub(" ", value[:limit * 2])).strip()[:limit]


# --- encoded words (RFC 2047) --------------------------------------------------------------------

#: RFC 2047 §2 encoded-word, with RFC 2231 §5's optional language after the charset; the charset
#: is bounded and the encoded text cannot contain "?" or white space, so a failed match never
#: scans further than the next "?".
_ENCODED_WORD = re.compile(r"=\?([^?\s*]{1,64})(?:\*[^?\s]{0,32})?\?([QqBb])\?([^?\s]*)\?=")


_NOT_BASE64 = re.compile(rb"[^A-Za-z0-9+/]+")


def _b64(data) -> bytes:
    """Base64 as mail carries it (RFC 2045 §6.8: what is not in the alphabet is ignored):
    missing padding added, a dangling last character dropped; never raises."""
    try:
        return binascii.a2b_base64(data)
    except (binascii.Error, ValueError):
        pass
    clean = _NOT_BASE64.sub(b"", data)
    if len(clean) % 4 == 1:
        clean = clean[:-1]
    return binascii.a2b_base64(clean + b"=" * (-len(clean) % 4))


def _word_bytes(encoding: str, text: str) -> bytes:
    data = text.encode("utf-8", "surrogateescape")
    if encoding in "bB":
        return _b64(data)
    return binascii.a2b_qp(data, header=True)  # RFC 2047 §4.2: "_" is a space


def decode_header_value(value: str) -> str:
    """RFC 2047 encoded words decoded, in one pass; unknown charsets and broken encodings are read
    without raising. White space between two encoded words is dropped (§6.2); adjacent words in
    one charset are decoded together, so a character split across them survives."""
    text = str(value)
    if "=?" not in text:
        return clean_header(text)
    text = text[:MAX_DECODE_CHARS]
    out: list[str] = []
    pending, charset, pos = bytearray(), "", 0  # bytes of the words read in `charset`, not yet decoded
    for m in _ENCODED_WORD.finditer(text):
        gap = text[pos:m.start()]
        if gap and (not pending or gap.strip()):  # text between words, or before the first one
            if pending:
                out.append(decode_bytes(pending, charset))
                pending.clear()
            out.append(gap)
        word_charset = m.group(1).lower()
        if word_charset != charset and pending:
            out.append(decode_bytes(pending, charset))
            pending.clear()
        charset = word_charset
        pending += _word_bytes(m.group(2), m.group(3))
        pos = m.end()
    if pending:
        out.append(decode_bytes(pending, charset))
    out.append(text[pos:])
    return clean_header("".join(out))


# --- header blocks (RFC 5322 §2.2) ------------------------------------------------------------------

class Fields(dict):
    """Header fields by lower-case name, each name's values in the order read, as text (not
    RFC 2047-decoded, not unfolded). Also the shape of RFC 3464 / RFC 5965 report fields."""

    def first(self, name: str) -> str:
        values = self.get(name.lower())
        return values[0] if values else ""

    def get_all(self, name: str) -> list[str]:
        return self.get(name.lower()) or []


#: One field: RFC 5322 §2.2 field-name (printable ASCII but ":"; obsolete white space before the
#: colon allowed, RFC 5322 §4.5), its value and its continuation lines (§2.2.3). The repeats are
#: possessive: nothing is tried twice, and no state is kept per continuation line.
_FIELD_RE = re.compile(r"([!-9;-~]{1,998}+)[ \t]*+:[ \t]*+(.*+(?:\n[ \t].*+)*+)")


@dataclass
class HeaderBlock:
    """The fields at the top of a message or part, and where its body starts (an offset into the
    text or bytes the block was read from)."""

    fields: Fields = field(default_factory=Fields)
    #: (name as written, value) in order, for the standard library's message object
    items: list[tuple[str, str]] = field(default_factory=list)
    body_start: int = 0
    defects: list[str] = field(default_factory=list)


def _blank_line(buf, start: int, end: int) -> int:
    """Offset of the blank line that ends the header block at `start` (RFC 5322 §2.1), or `end`."""
    if buf[start:start + 1] == b"\n" or buf[start:start + 2] == b"\r\n":
        return start
    lf = buf.find(b"\n\n", start, end)
    crlf = buf.find(b"\n\r\n", start, lf + 1 if lf >= 0 else end)
    found = crlf if crlf >= 0 else lf
    return end if found < 0 else found + 1


def read_header_block(buf: bytes, start: int = 0, end: int | None = None, *,
                      max_fields: int = MAX_FIELDS) -> HeaderBlock:
    """The header block of raw bytes at `start`: fields until the first blank line (RFC 5322
    §2.1) or the first line that is not a field (the body starts there, as in the standard
    library's parser); `body_start` is an offset into `buf`. 8-bit values are read as UTF-8
    (RFC 6532), else Latin-1."""
    end = len(buf) if end is None else end
    blank = _blank_line(buf, start, end)
    text = buf[start:blank].decode("latin-1")  # one character per byte: offsets stay offsets
    block = scan_fields(text, max_fields=max_fields, eight_bit=not text.isascii())
    if block.body_start < len(text):
        block.body_start += start
    else:  # the body starts after the blank line
        nl = buf.find(b"\n", blank, end)
        block.body_start = end if nl < 0 else nl + 1
    return block


def parse_header_block(text: str) -> Fields:
    """The header fields at the top of a block of text (RFC 5322 §2.2)."""
    if text[:1] == "\n" or text[:2] == "\r\n":
        return Fields()
    lf = text.find("\n\n")
    crlf = text.find("\n\r\n", 0, lf + 1 if lf >= 0 else len(text))
    cut = crlf if crlf >= 0 else lf
    return scan_fields(text[:cut + 1] if cut >= 0 else text).fields


def scan_fields(text: str, *, max_fields: int = MAX_FIELDS, eight_bit: bool = False) -> HeaderBlock:
    """The fields of a header block's text, each value with its continuation lines (RFC 5322
    §2.2.3; `clean_header` unfolds). Scanning stops at the first line that is not a field;
    `body_start` is where (len(text) when every line was read)."""
    block = HeaderBlock()
    fields, items, pos, n = block.fields, block.items, 0, len(text)
    if text.startswith("From "):  # an mbox separator line (RFC 4155), not a field
        pos = _next_line(text, pos)
    while pos < n:
        m = _FIELD_RE.match(text, pos)
        if m is None:
            if text[pos] in " \t":  # RFC 5322 §2.2.3: a continuation of nothing
                block.defects.append("the header block starts with a continuation line")
                pos = _next_line(text, pos)
                continue
            if text[pos] not in "\r\n":
                block.defects.append("a line in the header block is not a field: the body starts there")
                block.body_start = pos
                return block
            pos = _next_line(text, pos)
            continue
        pos = m.end() + 1
        if len(items) >= max_fields:
            block.defects.append(f"more than {max_fields} header fields: the rest were not read")
            break
        _add_field(block, m.group(1), m.group(2), eight_bit)
    block.body_start = n
    return block


def _next_line(text: str, pos: int) -> int:
    nl = text.find("\n", pos)
    return len(text) if nl < 0 else nl + 1


def _add_field(block: HeaderBlock, name: str, value: str, eight_bit: bool) -> None:
    value = value.rstrip("\r\n")  # as the standard library keeps it: folded (clean_header unfolds)
    if len(value) > MAX_FIELD_CHARS:
        block.defects.append(f"header {name[:40]} cut at {MAX_FIELD_CHARS} characters")
        value = value[:MAX_FIELD_CHARS]
    if eight_bit and not value.isascii():
        try:
            value = value.encode("latin-1").decode("utf-8")
        except UnicodeError:  # RFC 6532 allows UTF-8 only; Latin-1 is the usual other one
            pass
    lname = name.lower()
    values = block.fields.get(lname)
    if values is None:
        block.fields[lname] = [value]
    elif len(values) < MAX_VALUES_PER_NAME:
        values.append(value)
    else:
        return
    block.items.append((name, value))


_REPORT_FIELD = re.compile(r"([A-Za-z][A-Za-z0-9-]{0,60}):[ \t]*(.*)")


def field_lines(text: str) -> Iterator[tuple[str, str]]:
    """(lower name, unfolded value) of each "Name: value" field in a text; ("", "") at each blank
    line, which separates the blocks of an RFC 3464 §2.1 delivery-status body. Other lines are skipped."""
    name, value = None, []
    for line in text.splitlines():
        if line[:1] in (" ", "\t") and name is not None:
            value.append(line.strip())
            continue
        if name is not None:
            yield name, " ".join(value).strip()
            name = None
        m = _REPORT_FIELD.fullmatch(line)
        if m:
            name, value = m.group(1).lower(), [m.group(2)]
        elif not line.strip():
            yield "", ""
    if name is not None:
        yield name, " ".join(value).strip()


def parse_fields(text: str) -> Fields:
    """Every field of a text (all blocks together): name -> values."""
    fields = Fields()
    for name, value in field_lines(text):
        if name:
            fields.setdefault(name, []).append(value)
    return fields


# --- MIME parameters (RFC 2045 §5.1, RFC 2231) --------------------------------------------------------

#: A piece of a parameter list: a quoted string (an unclosed one runs to the end), a run of
#: anything else, or the ";" between parameters. Each alternative starts on a different character.
_PARAM_PIECE = re.compile(r'"(?:[^"\\]++|\\.)*+"?|[^";]++|;', re.S)
_QUOTED_PAIR = re.compile(r"\\(.)", re.S)
#: RFC 2231 §3-4: name*N (a section), name*N* (an encoded section), name* (one encoded value)
_SECTION = re.compile(r"(.{1,200}?)\*(?:(\d{1,6})(\*?))?")


@dataclass
class _Sections:
    parts: dict[int, tuple[str, bool]] = field(default_factory=dict)  # index -> (text, %-encoded)


def parse_params(value: str, defects: list[str] | None = None) -> tuple[str, dict[str, str]]:
    """The lower-case first item of a Content-Type or Content-Disposition value and its
    parameters by lower-case name, unquoted; RFC 2231 sections joined in order and decoded from
    their charset. Where a parameter is given both ways, the RFC 2231 one wins (RFC 6266 §4.3).
    Read up to MAX_PARAMS_CHARS and MAX_PARAMS; a cut is added to `defects`."""
    if ";" not in value:  # no parameters at all (or no header: "")
        return value.strip().lower(), {}
    pieces = _split_params(value[:MAX_PARAMS_CHARS])
    if defects is not None and (len(value) > MAX_PARAMS_CHARS or len(pieces) > MAX_PARAMS + 1):
        defects.append(f"MIME parameters read up to {MAX_PARAMS} parameters and {MAX_PARAMS_CHARS} characters")
    head = pieces[0].strip().lower() if pieces else ""
    params: dict[str, str] = {}
    extended: dict[str, _Sections] = {}
    for piece in pieces[1:MAX_PARAMS + 1]:
        name, eq, raw = piece.partition("=")
        name = name.strip().lower()
        if not eq or not name:
            continue
        raw = raw.strip()
        m = _SECTION.fullmatch(name)
        if m is None:
            params.setdefault(name, _unquote(raw))
            continue
        sections = extended.setdefault(m.group(1), _Sections())
        index = int(m.group(2)) if m.group(2) is not None else 0
        sections.parts.setdefault(index, (_unquote(raw), m.group(2) is None or m.group(3) == "*"))
    for name, sections in extended.items():
        params[name] = _join_sections(sections)
    return head, params


def _split_params(value: str) -> list[str]:
    """The ";"-separated pieces of a parameter list; a ";" inside a quoted string is not a separator."""
    if '"' not in value:
        return value.split(";", MAX_PARAMS + 1)
    pieces, current = [], []
    for m in _PARAM_PIECE.finditer(value):
        if m.group() != ";":
            current.append(m.group())
            continue
        pieces.append("".join(current))
        current = []
        if len(pieces) > MAX_PARAMS:
            return pieces + [""]
    pieces.append("".join(current))
    return pieces


def _unquote(value: str) -> str:
    if value[:1] == '"':
        value = value[1:-1] if len(value) > 1 and value.endswith('"') else value[1:]
        return _QUOTED_PAIR.sub(r"\1", value) if "\\" in value else value
    return value


def _join_sections(sections: _Sections) -> str:
    """RFC 2231 §4: the first encoded section may start with charset'language'; encoded sections
    are %-escaped octets in that charset, the others plain text."""
    data = bytearray()
    charset = ""
    for i, index in enumerate(sorted(sections.parts)):
        text, encoded = sections.parts[index]
        if encoded and i == 0 and text.count("'") >= 2:
            charset, _, rest = text.partition("'")
            text = rest.partition("'")[2]
        data += unquote_to_bytes(text) if encoded else text.encode("utf-8", "surrogateescape")
    return decode_bytes(bytes(data), charset or "utf-8")
