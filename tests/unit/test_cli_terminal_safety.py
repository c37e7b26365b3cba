"""Message content shown by the CLI never drives the terminal: C0 and C1 controls, escape
sequences and bidirectional overrides come out escaped in every view; --json stays exact JSON."""

from __future__ import annotations

import json
import re

import pytest

from mailgate import suppression
from mailgate_dev.cli import inspect as inspect_cmd, messages as messages_cmd, route as route_cmd
from mailgate_dev.cli import suppression as suppression_cmd

from .cli_support import run_cli
from .inbound_support import deliver, stack

ESC_TITLE = "\x1b]0;pwned\x07"            # sets the window title
CLEAR = "\x1b[2J\x1b[H"                    # clears the screen
CSI_C1 = "\x9b31m"                         # C1 CSI: red, on terminals that take 8-bit controls
BIDI = "\u202eexe.txt"                      # right-to-left override: "txt.exe" reads as "exe.txt"
HOSTILE = (f"From: =?utf-8?q?Ann{'=1B'}[31mRed?= <ann@customer.test>\r\nTo: sales@example.test\r\n"
           f"Subject: =?utf-8?b?SW52b2ljZSAbXTA7cHduZWQHIOKArmZkcC5leGU=?=\r\n"
           "Message-ID: <evil1@customer.test>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
           "Content-Transfer-Encoding: 8bit\r\n\r\n"
           f"Please pay.{CLEAR}{ESC_TITLE} Thanks {CSI_C1}now{BIDI}\r\nSecond\tline\x7f\r\n").encode("utf-8")
#: what a terminal acts on: C0 but tab and newline, DEL, C1, and the bidi controls
RAW_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def run(argv, capsys, monkeypatch, container=None):
    code, out, err = run_cli(argv, capsys, (inspect_cmd, route_cmd, messages_cmd, suppression_cmd),
                             container=container, monkeypatch=monkeypatch)
    return code, out + err


def _views(tmp_path):
    f = tmp_path / "hostile.eml"
    f.write_bytes(HOSTILE)
    c = stack()
    rec = deliver(c, HOSTILE)
    suppression.suppress(c.kv, "example.test", "ann@customer.test", reason=f"550 {CLEAR}no such user{BIDI}",
                         source="hard-bounce")
    return c, [["inspect", str(f)], ["route", str(f), "--to", "sales@example.test"], ["messages", "list"],
               ["messages", "show", rec.key], ["replay", rec.key], ["suppression", "list"],
               ["suppression", "show", "example.test", "ann@customer.test"]]


def test_every_view_of_message_content_shows_control_characters_escaped(tmp_path, capsys, monkeypatch):
    c, views = _views(tmp_path)
    for argv in views:
        code, out = run(argv, capsys, monkeypatch, c)
        assert code == 0, (argv, out)
        assert not RAW_CONTROL.search(out), (argv, RAW_CONTROL.findall(out))
    code, out = run(["inspect", str(tmp_path / "hostile.eml")], capsys, monkeypatch)
    assert "\\x1b[2J" in out and "\\x1b]0;pwned\\x07" in out and "\\x9b31m" in out and "\\u202eexe.txt" in out
    assert "Second\tline\\x7f" in out  # tab and line breaks stay what they are


@pytest.mark.parametrize("argv", [["inspect"], ["messages", "show"], ["route"]])
def test_json_views_are_exact_json_with_nothing_raw(tmp_path, capsys, monkeypatch, argv):
    c, _ = _views(tmp_path)
    rec = c.messages.list()[0]
    args = {"inspect": [str(tmp_path / "hostile.eml")], "show": [rec.key],
            "route": [str(tmp_path / "hostile.eml"), "--to", "sales@example.test"]}[argv[-1]]
    code, out = run(argv + args + ["--json"], capsys, monkeypatch, c)
    assert code == 0 and not RAW_CONTROL.search(out)
    data = json.loads(out)
    if argv == ["inspect"]:
        assert data["subject"].endswith("\u202efdp.exe")  # the value itself, exactly
        assert CLEAR in data["reply_text"] and data["reply_text"].endswith("line\x7f")
