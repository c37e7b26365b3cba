"""A notification's text read once: its lines, where each address first appears, which addresses
lead a line, the SMTP command each transcript reply answers.

Everything the classifier asks per failed recipient (the error text about it, its SMTP stage) is
looked up here instead of scanning the whole text again for each address, so a notice listing
thousands of addresses costs time linear in its size.
"""

from __future__ import annotations

import re
from functools import cached_property

from .addresses import ADDRESS, norm_address, valid_address
from .reasons import find_status, gives_reason, squash

#: RFC 5321 §4.5.3.1.6 caps a text line at 1,000 octets; lines are read up to this many characters
#: (a longer one is cut, and `cut` says so)
MAX_LINE = 4000
#: lines read after an address for the error text about it
NEAR_LINES = 12
#: lines of an SMTP transcript (RFC 5321): ">>> RCPT TO:<a@b>" then "<<< 550 5.1.1 <a@b>... unknown"
_TRANSCRIPT_CMD = re.compile(r"\s*>>>\s*([A-Za-z]{4})\b")
_TRANSCRIPT_REPLY = re.compile(r"\s*<<<\s*[45]\d\d\b")
#: what may stand before an address that leads a line: quoting, bullets, brackets
_LEAD = re.compile(r"[\s>*\-\"'(\[]*<?")
_REPLY_CODE_ONLY = re.compile(r"\s*(\d{3}[ -]+)?[<\"']?")
#: an SMTP reply (RFC 5321 §4.2) or an RFC 3463 code on a line
_SMTP_REPLY = re.compile(r"(^|\s)[45]\d\d[ -]|\b[45]\.\d{1,3}\.\d{1,3}\b")
_ERROR_WORDS = re.compile(r"\d\d\d|error|reject|unknown|denied", re.I)


class TextLines:
    """One text, indexed by the addresses in it."""

    def __init__(self, text: str):
        self.text = text
        self.cut = False
        lines = text.splitlines()
        for i, line in enumerate(lines):
            if len(line) > MAX_LINE:
                lines[i], self.cut = line[:MAX_LINE], True
        self.lines = lines
        self.first_line: dict[str, int] = {}     # address -> index of the first line naming it
        self.where: dict[str, list[int]] = {}    # address -> the first few lines naming it
        self.leading: set[str] = set()           # addresses that start a line ("<a@b>: 550 ...")
        self.line_addresses: list[list[str]] = []
        for i, line in enumerate(lines):
            found: list[str] = []
            self.line_addresses.append(found)
            if "@" not in line:
                continue
            for m in ADDRESS.finditer(line):
                address = norm_address(m.group(1))
                if not valid_address(address):
                    continue
                found.append(address)
                self.first_line.setdefault(address, i)
                seen = self.where.setdefault(address, [])
                if len(seen) < 4 and (not seen or seen[-1] != i):
                    seen.append(i)
                if _LEAD.fullmatch(line, 0, m.start()):
                    self.leading.add(address)

    @cached_property
    def status(self) -> str:
        """The first RFC 3463 status code anywhere in the text."""
        return find_status(self.text)

    @cached_property
    def commands(self) -> dict[str, str]:
        """Address -> the SMTP command whose reply in a Sendmail-style transcript names it."""
        out: dict[str, str] = {}
        if ">>>" not in self.text:
            return out
        command = ""
        for line, found in zip(self.lines, self.line_addresses):
            m = _TRANSCRIPT_CMD.match(line)
            if m:
                command = m.group(1).upper()
            elif found and _TRANSCRIPT_REPLY.match(line):
                for address in found:
                    out.setdefault(address, command)
        return out

    def says(self, address: str, pattern: re.Pattern[str]) -> bool:
        """Whether a line naming `address` (one of its first four) matches `pattern`."""
        return any(pattern.search(self.lines[i]) for i in self.where.get(address, ()))

    def near(self, address: str, fallback: bool = True) -> str:
        """The error text about `address`: its line and the lines after it, up to a blank line or
        the next address's own line; else (with `fallback`) the end of the text."""
        i = self.first_line.get(address)
        if i is not None:
            found = self._block(i, address)
            # Gmail and Exchange name the address first in a list, and again where they quote the
            # remote server's reply ("550 5.1.1 <a@b>... User Unknown"): that reply is the error.
            reply = next((j for j in self.where.get(address, ())[1:] if _SMTP_REPLY.search(self.lines[j])), None)
            if reply is not None and not _SMTP_REPLY.search(found):
                found = squash(f"{found} {self._block(reply, address) or self.lines[reply]}")
            if found:
                return found
        if not fallback:
            return ""
        return squash(self.text[-2000:])

    def _block(self, i: int, address: str) -> str:
        line = self.lines[i]
        block = [line.strip()]
        for nxt, others in zip(self.lines[i + 1:i + 1 + NEAR_LINES], self.line_addresses[i + 1:i + 1 + NEAR_LINES]):
            if not nxt.strip():
                if len(block) > 1:
                    break
                continue
            if others and address not in others:
                m = ADDRESS.search(nxt)
                start = m.start() if m else 0
                if _REPLY_CODE_ONLY.fullmatch(nxt, 0, start) or len(block) > 1 and not _ERROR_WORDS.search(nxt):
                    break
            block.append(nxt.strip())
        joined = " ".join(block)
        if len(joined) > len(block[0]) + 5 or gives_reason(joined[:2000]):
            return squash(joined)
        return ""
