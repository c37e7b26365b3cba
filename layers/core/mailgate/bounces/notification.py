"""A received notification as the classifier reads it: the notification's own text, its RFC 3464
delivery-status and RFC 5965 feedback-report parts, and the original message it returns.

Built on the parsed message (`ParsedMessage.parts()`), so a message is parsed once whether it is
routed, classified or both.
"""

from __future__ import annotations

import re
from functools import cached_property

from ..automatic import DELIVERY_STATUS_TYPES, FEEDBACK_REPORT_TYPE, ORIGINAL_MESSAGE_TYPES
from ..htmltext import html_to_text
from ..message import ParsedMessage
from ..mime import Fields, Part, parse_header_block
from .lines import MAX_LINE, TextLines

#: a hostile message with thousands of parts is read up to here
MAX_PARTS = 200
#: characters of notification text read
MAX_TEXT = 200_000


def part_text(part: Part) -> str:
    """A part's text as the classifier reads it: HTML as plain text, at most MAX_TEXT characters."""
    if part.content_type.endswith("/html"):
        return html_to_text(part.text[:MAX_TEXT * 2])[:MAX_TEXT]
    return part.text[:MAX_TEXT]


class Notification:
    """The parts of a message, split into the notification and the quoted original."""

    def __init__(self, parsed: ParsedMessage):
        self.parsed = parsed
        self.texts: list[str] = []          # notification text parts, in order
        self.dsn_parts: list[Part] = []
        self.arf_parts: list[Part] = []
        self.original_parts: list[Part] = []   # message/rfc822 or text/rfc822-headers
        #: what the bounds left unread (BounceReport.defects)
        self.defects: list[str] = []
        read = 0
        for part in parsed.parts():
            if len(self.texts) + len(self.original_parts) > MAX_PARTS:
                self.defects.append(f"more than {MAX_PARTS} parts: the rest not read")
                break
            ctype = part.content_type
            if ctype in DELIVERY_STATUS_TYPES:
                self.dsn_parts.append(part)
            elif ctype == FEEDBACK_REPORT_TYPE:
                self.arf_parts.append(part)
            elif ctype in ORIGINAL_MESSAGE_TYPES:
                self.original_parts.append(part)
            elif ctype.startswith(("text/", "multipart/")) or ctype == "application/octet-stream" and part.depth == 0:
                # a multipart leaf is broken MIME (its boundary never occurs): its body is text
                if read >= MAX_TEXT:
                    self.defects.append(f"notification text over {MAX_TEXT:,} characters: the rest not read")
                    continue
                text = part_text(part)
                read += len(text)
                self.texts.append(text)

    @property
    def first_text(self) -> str:
        """The first text part: what a person (or a responder) wrote, before any report."""
        return self.texts[0] if self.texts else ""

    @cached_property
    def body_text(self) -> str:
        return "\n".join(self.texts)[:MAX_TEXT]

    @cached_property
    def body_lines(self) -> TextLines:
        """The notification's whole text, indexed by address (read once for all recipients)."""
        return self.lines_of(self.body_text)

    def lines_of(self, text: str) -> TextLines:
        """`text` indexed by address; a line cut by the bound is recorded in `defects`."""
        lines = TextLines(text)
        if lines.cut:
            self.note_defect(f"lines over {MAX_LINE:,} characters: read up to there")
        return lines

    def note_defect(self, defect: str) -> None:
        if defect not in self.defects:
            self.defects.append(defect)

    @cached_property
    def original(self) -> Fields | None:
        """Header fields of the quoted original message, from a MIME part or from the text."""
        for part in self.original_parts:
            fields = part.attached_fields()
            if fields is not None:
                return fields
        _, quoted = split_notification(self.body_text)
        return parse_header_block(quoted) if quoted else None


#: lines that start the quoted original (the text after them is not the notification); the lead-in
#: of white space and rule characters is one class, so a long run of them is read once
_ORIGINAL_MARKER = re.compile(
    r"^[\s=_*+-]*("
    r"original message|unsent message|returned message|message headers follow|"
    r"(the )?(header|headers) of the original message|"
    r"below this line is a copy of the message|this is a copy of the message|"
    r"original message (header|headers|follows)|undelivered message|"
    r"original mail|original headers|original email|"
    r"your message reads|message follows|here is (a copy|the original)|"
    r"copy of (your|the) (original )?message|content of the original message|"
    r"headers of your message|ヘッダ|original message header|"
    r"unsent message below|text of (the )?original message|"
    r"rfc822 message follows|---+ *message (header|text)"
    r")", re.I)
_HEADER_LINE = re.compile(
    r"^(Received|Return-Path|Message-I[Dd]|From|To|Subject|Date|DKIM-Signature|MIME-Version|"
    r"Content-Type|X-[A-Za-z0-9-]+|Reply-To|Sender|Cc|References|In-Reply-To|Authentication-Results|"
    r"ARC-[A-Za-z-]+|Delivered-To|Thread-Topic|Thread-Index|Content-Transfer-Encoding):[ \t]?\S", re.I)


def split_notification(text: str) -> tuple[str, str]:
    """(notification text, quoted original headers+body) of a non-MIME bounce body."""
    lines = text.splitlines()
    cut = len(lines)
    for i, line in enumerate(lines):
        if _ORIGINAL_MARKER.match(line):
            cut = i
            break
        # Two header lines in a row (after a blank line, or glued on by the MTA) start the original.
        if _HEADER_LINE.match(line) and i + 1 < len(lines) and \
                (_HEADER_LINE.match(lines[i + 1]) or lines[i + 1][:1] in (" ", "\t")) and \
                (i + 2 < len(lines) and (_HEADER_LINE.match(lines[i + 2]) or lines[i + 2][:1] in (" ", "\t"))):
            cut = i
            break
    notification = "\n".join(lines[:cut])
    rest = lines[cut:]
    # The quoted headers start at the first header line after the marker.
    for j, line in enumerate(rest[:40]):
        if _HEADER_LINE.match(line.lstrip()) and not _ORIGINAL_MARKER.match(line):
            block = rest[j:]
            indent = len(line) - len(line.lstrip())
            if indent:
                block = [ln[indent:] if ln[:indent].isspace() else ln for ln in block]
            return notification, "\n".join(block)
    return notification, ""
