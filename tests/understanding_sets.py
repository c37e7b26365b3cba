"""The mail-understanding evaluation sets under tests/data/understanding (see its README.md).

Used by bench/understanding.py (scores) and tests/unit/test_understanding_data.py (well-formedness).
`SETS.json` lists every set with its task and split; each set's `manifest.json` gives, per message
file, the expected answer. Nothing here runs the gateway's code.
"""

from __future__ import annotations

import email
import email.policy
import json
import re
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent / "data" / "understanding"
TASKS = ("bounce", "autoreply", "reply")
SPLITS = ("develop", "holdout")
#: how a reply case's input file is given: a whole message, or a body to be wrapped in one
INPUTS = ("message", "text", "html")
#: how a reply is compared: "lines" (trailing spaces and surrounding blank lines ignored) or
#: "words" (all whitespace runs are one space: HTML inputs, whose line breaks depend on rendering)
COMPARES = ("lines", "words")
_ADDRESS = re.compile(r"^[^@\s]+@[^@\s]+$")


@dataclass(frozen=True)
class EvalSet:
    name: str
    task: str
    split: str
    path: Path
    manifest: dict[str, Any]

    @property
    def cases(self) -> list[dict[str, Any]]:
        return self.manifest["cases"]

    def raw(self, case: dict[str, Any]) -> bytes:
        """The case as a whole message (bodies given alone are wrapped in a minimal one)."""
        data = (self.path / case["file"]).read_bytes()
        kind = case.get("input", "message")
        if kind == "message":
            return data
        subtype = "html" if kind == "html" else "plain"
        head = (b"From: Someone <someone@example.org>\nTo: us@example.com\nSubject: Re: test\n"
                b"Message-ID: <case@example.org>\nMIME-Version: 1.0\n"
                b"Content-Type: text/" + subtype.encode() + b"; charset=utf-8\n"
                b"Content-Transfer-Encoding: 8bit\n\n")
        return head + data


def load_sets() -> list[EvalSet]:
    index = json.loads((ROOT / "SETS.json").read_text())
    out = []
    for entry in index["sets"]:
        path = ROOT / entry["path"]
        manifest = json.loads((path / "manifest.json").read_text())
        out.append(EvalSet(entry["path"], entry["task"], entry["split"], path, manifest))
    return out


def problems(s: EvalSet) -> list[str]:
    """What is wrong with a set's manifest ([] when it is well formed)."""
    out: list[str] = []
    if s.task not in TASKS:
        out.append(f"{s.name}: unknown task {s.task!r}")
    if s.split not in SPLITS:
        out.append(f"{s.name}: unknown split {s.split!r}")
    if s.manifest.get("task") != s.task:
        out.append(f"{s.name}: manifest task {s.manifest.get('task')!r} != SETS.json task {s.task!r}")
    for key in ("source", "licence", "cases"):
        if key not in s.manifest:
            out.append(f"{s.name}: manifest has no {key!r}")
    for name in ("README.md",):
        if not (s.path / name).is_file():
            out.append(f"{s.name}: no {name}")
    if not any(s.path.glob("LICENSE*")):
        out.append(f"{s.name}: no LICENSE file")
    files = set()
    for i, c in enumerate(s.manifest.get("cases", [])):
        where = f"{s.name} case {i} ({c.get('file')})"
        f = c.get("file")
        if not isinstance(f, str) or not (s.path / f).is_file():
            out.append(f"{where}: file missing")
        elif f in files:
            out.append(f"{where}: file listed twice")
        files.add(f)
        if "note" in c and not (isinstance(c["note"], str) and c["note"]):
            out.append(f"{where}: note must be a non-empty string")
        if s.task == "bounce":
            out += _bounce_problems(where, c)
        elif s.task == "autoreply":
            if not isinstance(c.get("auto_reply"), bool):
                out.append(f"{where}: auto_reply must be true or false")
            if "list_mail" in c and not isinstance(c["list_mail"], bool):
                out.append(f"{where}: list_mail must be true or false")
            if c.get("list_mail") and c.get("auto_reply"):
                out.append(f"{where}: list mail is a negative (auto_reply false)")
        elif s.task == "reply":
            if not isinstance(c.get("reply"), str):
                out.append(f"{where}: reply must be a string")
            if c.get("input", "message") not in INPUTS:
                out.append(f"{where}: input must be one of {INPUTS}")
            if c.get("compare", "lines") not in COMPARES:
                out.append(f"{where}: compare must be one of {COMPARES}")
            if "accept" in c and not (isinstance(c["accept"], list) and all(isinstance(a, str) for a in c["accept"])
                                      and "note" in c):
                out.append(f"{where}: accept must be a list of strings, explained by a note")
    return out


def _bounce_problems(where: str, c: dict[str, Any]) -> list[str]:
    out = []
    if not isinstance(c.get("is_bounce"), bool):
        out.append(f"{where}: is_bounce must be true or false")
    rcpts = c.get("recipients")
    if not isinstance(rcpts, list) or not all(isinstance(a, str) and _ADDRESS.match(a) and a == a.lower()
                                              for a in rcpts):
        out.append(f"{where}: recipients must be a list of lower-case addresses")
    if c.get("status_class") not in ("4", "5", None):
        out.append(f"{where}: status_class must be \"4\", \"5\" or null")
    if c.get("dead") not in (True, False, None):
        out.append(f"{where}: dead must be true, false or null")
    if c.get("is_bounce") is False and (rcpts or c.get("status_class") or c.get("dead") is not None):
        out.append(f"{where}: a message that is not a bounce has no recipients, class or dead")
    return out


# --------------------------------------------------------------------------------------------
# Comparing reply texts (tests/data/understanding/REPLY-RULES.md)


def normalise(text: str, compare: str = "lines") -> str:
    text = (text or "").replace("\r\n", "\n").replace("\r", "\n").replace("\u00a0", " ")
    if compare == "words":
        return " ".join(text.split())
    lines = [line.rstrip() for line in text.split("\n")]
    while lines and not lines[0]:
        lines.pop(0)
    while lines and not lines[-1]:
        lines.pop()
    return "\n".join(lines)


def reply_right(got: str, case: dict[str, Any]) -> bool:
    compare = case.get("compare", "lines")
    want = [case["reply"], *case.get("accept", [])]
    return normalise(got, compare) in {normalise(w, compare) for w in want}


# --------------------------------------------------------------------------------------------
# What the baselines read: the message's text part, or its HTML rendered as text


class _Text(HTMLParser):
    _BLOCK = {"p", "div", "br", "tr", "li", "blockquote", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "table", "pre"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.skip = 0

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        if tag in ("style", "script", "head", "title"):
            self.skip += 1
        elif tag in self._BLOCK:
            self.out.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("style", "script", "head", "title"):
            self.skip = max(0, self.skip - 1)
        elif tag in self._BLOCK:
            self.out.append("\n")

    def handle_data(self, data: str) -> None:
        if not self.skip:
            self.out.append(data)


def html_text(html: str) -> str:
    p = _Text()
    try:
        p.feed(html)
        p.close()
    except Exception:  # noqa: BLE001 - a baseline's reading of broken HTML
        pass
    text = "".join(p.out)
    return re.sub(r"\n[ \t]*\n(?:[ \t]*\n)+", "\n\n", re.sub(r"[ \t]+", " ", text))


def bodies(raw: bytes) -> tuple[str, str]:
    """(first text/plain part, first text/html part) of a message, decoded."""
    msg = email.message_from_bytes(raw, policy=email.policy.compat32)
    text = html = ""
    for part in msg.walk():
        if part.is_multipart() or part.get_content_maintype() != "text":
            continue
        if str(part.get("content-disposition", "")).lower().startswith("attachment"):
            continue
        data = part.get_payload(decode=True) or b""
        charset = part.get_content_charset() or "utf-8"
        try:
            s = data.decode(charset, "replace")
        except LookupError:
            s = data.decode("utf-8", "replace")
        if part.get_content_subtype() == "plain" and not text:
            text = s
        elif part.get_content_subtype() == "html" and not html:
            html = s
    return text, html
