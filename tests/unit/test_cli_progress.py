"""Long commands show their progress on a terminal (and never with --json): `fetch now` on a big
mailbox, a replay of many messages, a suppression import."""

from __future__ import annotations

import argparse
import io
import json

import pytest

from mailgate.domain import IncomingServer, MessageRecord
from mailgate_dev import fakes
from mailgate_dev.cli import common
from mailgate_dev.cli import fetch as fetch_cli
from mailgate_dev.cli import messages as messages_cli
from mailgate_dev.cli import suppression as suppression_cli
from mailgate_dev.cli.progress import Progress
from mailgate_dev.fakes import MemoryMailboxes

from tests.unit.test_fetch_service import FakeImap, make_raw


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def test_progress_redraws_one_line_with_the_rate_and_what_is_left_then_clears_it():
    out, clock = Terminal(), Clock()
    with Progress("replaying", 200, stream=out, clock=clock, interval=0) as p:
        clock.t = 10.0
        p.advance(50)
        assert out.getvalue().endswith("\rreplaying: 50/200 (25%), 5.0/s, about 30 s left")
    assert out.getvalue().endswith("\r" + " " * len("replaying: 50/200 (25%), 5.0/s, about 30 s left") + "\r")


def test_progress_is_silent_off_a_terminal_and_with_json():
    plain = io.StringIO()
    with Progress("x", 3, stream=plain) as p:
        p.advance()
    assert plain.getvalue() == ""
    term = Terminal()
    with Progress("x", 3, stream=term, args=argparse.Namespace(json=True)) as p:
        p.advance()
    assert term.getvalue() == ""


@pytest.fixture
def terminal(monkeypatch):
    """Standard error as a terminal (pytest's capture replaces sys.stderr itself during a test)."""
    term = Terminal()
    monkeypatch.setattr(Progress, "default_stream", term)
    return term


def parser_for(module):
    parser = argparse.ArgumentParser(prog="mailgate")
    module.register(parser.add_subparsers(dest="command"))
    return parser


def run(c, monkeypatch, module, *argv):
    monkeypatch.setattr(common, "get_container", lambda args: c)
    args = parser_for(module).parse_args(list(argv))
    return args.func(args)


def test_fetch_now_counts_the_messages_of_a_big_mailbox_against_what_the_server_listed(monkeypatch, terminal, capsys):
    box = FakeImap()
    for i in range(30):
        box.add(make_raw(i))
    c = fakes.in_memory(mailboxes=MemoryMailboxes({"shop": box}))
    c.config.put_incoming(IncomingServer(name="shop", protocol="imap", host="h", port=993, user="u"))
    c.secrets.put("mailgate/server/shop", "pw")
    assert run(c, monkeypatch, fetch_cli, "fetch", "now", "shop", "--max-messages", "20") == 0
    assert "fetching shop: 0/20 (0%)" in terminal.getvalue()
    assert len(c.messages.list(limit=100)) == 20 and "shop" in capsys.readouterr().out


def test_replay_failed_replays_every_failed_message_with_progress(monkeypatch, terminal, capsys):
    c = fakes.in_memory()
    for i in range(3):
        key = f"raw/ses/m{i}"
        c.raw_store.put(key, make_raw(i))
        c.messages.claim(MessageRecord(key=f"in:m{i}", raw_key=key, outcome="failed", reason="store down"))
    assert run(c, monkeypatch, messages_cli, "replay", "--failed") == 0
    out = capsys.readouterr().out
    assert "3 message(s) replayed" in out and "replaying: " in terminal.getvalue()
    assert {r.outcome for r in c.messages.list(limit=10)} != {"failed"}
    with pytest.raises(common.UsageError):
        run(c, monkeypatch, messages_cli, "replay", "in:m0", "--failed")


def test_suppression_import_reads_a_csv_and_names_the_lines_that_are_no_addresses(monkeypatch, terminal, capsys, tmp_path):
    f = tmp_path / "list.csv"
    f.write_text("email,name\nAnn@Client.example,Ann\n# a comment\nbob@client.example\nnot an address\n"
                 + "".join(f"u{i}@bulk.example\n" for i in range(100)))
    c = fakes.in_memory()
    assert run(c, monkeypatch, suppression_cli, "suppression", "import", "example.test", str(f), "--json") == 1
    data = json.loads(capsys.readouterr().out)
    assert data["suppressed"] == 102 and data["refused"] == ["not an address"]
    assert terminal.getvalue() == ""  # --json: no progress line
    from mailgate import suppression

    assert suppression.is_suppressed(c.kv, "example.test", "ann@client.example")["source"] == "import"
    assert run(c, monkeypatch, suppression_cli, "suppression", "import", "example.test", str(f)) == 1
    assert "suppressing for example.test: " in terminal.getvalue()
