"""`mailgate fetch now` / `mailgate fetch status` as a person sees them."""

import argparse
import json

from mailgate.domain import IncomingServer
from mailgate.errors import PermanentError
from mailgate_dev import fakes
from mailgate_dev.cli import common
from mailgate_dev.cli import fetch as fetch_cli
from mailgate_dev.fakes import MemoryMailboxes

from tests.unit.test_fetch_service import FakeImap, make_raw


def cli(c, monkeypatch, *argv):
    monkeypatch.setattr(common, "get_container", lambda args: c)
    parser = argparse.ArgumentParser(prog="mailgate")
    fetch_cli.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(list(argv))
    return args.func(args)


def setup(boxes):
    c = fakes.in_memory(mailboxes=MemoryMailboxes(boxes))
    for name in boxes:
        c.config.put_incoming(IncomingServer(name=name, protocol="imap", host="h", port=993, user="u"))
        c.secrets.put(f"mailgate/server/{name}", "pw")
    return c


def test_fetch_now_fetches_the_named_server_and_prints_what_it_did(monkeypatch, capsys):
    box = FakeImap()
    box.add(make_raw(1))
    box.add(make_raw(2))
    c = setup({"shop": box, "other": FakeImap()})
    assert cli(c, monkeypatch, "fetch", "now", "shop", "--json") == 0
    (out,) = json.loads(capsys.readouterr().out)
    assert out["server"] == "shop" and out["fetched"] == 2 and out["status"] == "ok"


def test_fetch_now_without_name_fetches_every_enabled_server_and_fails_on_a_bad_one(monkeypatch, capsys):
    class Refusing(FakeImap):
        def open(self):
            raise PermanentError("authentication failed for user 'u'", code="auth-failed")

    c = setup({"shop": FakeImap(), "bad": Refusing()})
    assert cli(c, monkeypatch, "fetch", "now") == 1
    text = capsys.readouterr().out
    assert "shop" in text and "authentication failed for user 'u'" in text
    assert cli(c, monkeypatch, "fetch", "status") == 0
    status = capsys.readouterr().out
    assert "bad" in status and "authentication failed" in status


def test_fetch_now_names_an_unknown_server(monkeypatch, capsys):
    c = setup({})
    assert cli(c, monkeypatch, "fetch", "now", "nope") == 1
    assert "no incoming server named 'nope'" in capsys.readouterr().err


def test_fetch_skipped_lists_what_was_left_on_the_server_and_why(monkeypatch, capsys):
    from mailgate.services.fetch import worker

    box = FakeImap()
    box.add(make_raw(1))
    withheld = box.add(make_raw(2))
    box.leave_out[withheld] = 1000  # the server never returns it
    c = setup({"shop": box})
    for _ in range(worker.MAX_FETCH_ATTEMPTS):
        assert cli(c, monkeypatch, "fetch", "now", "shop") == 0
    capsys.readouterr()
    assert cli(c, monkeypatch, "fetch", "skipped", "--json") == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert (row["server"], row["message"], row["reason"]) == ("shop", str(withheld), "not-returned")
    assert "left on the server" in row["detail"]
    assert cli(c, monkeypatch, "fetch", "status", "--json") == 0
    (status,) = json.loads(capsys.readouterr().out)
    assert (status["failed_messages"], status["skipped_messages"]) == (0, 1)
    assert cli(c, monkeypatch, "fetch", "status") == 0
    header, row = capsys.readouterr().out.splitlines()
    assert header.split()[4:6] == ["FAILED_MSGS", "SKIPPED_MSGS"] and row.split()[-2:] == ["0", "1"]
