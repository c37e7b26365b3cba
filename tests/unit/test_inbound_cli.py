"""`mailgate inspect`, `route`, `messages list|show` and `replay`, run as a user would."""

from __future__ import annotations

import argparse
import json

import pytest

from mailgate_dev.cli import common, inspect as inspect_cmd, messages as messages_cmd, route as route_cmd

from .cli_support import run_cli
from .inbound_support import DATA, deliver, mail, stack


def run(argv, capsys, container=None, monkeypatch=None):
    return run_cli(argv, capsys, (inspect_cmd, route_cmd, messages_cmd), container=container, monkeypatch=monkeypatch)


def test_inspect_prints_sender_kind_and_reply_text_without_a_stack(capsys, tmp_path):
    f = tmp_path / "m.eml"
    f.write_bytes(mail(frm="Ann <ann@c.test>", subject="Re: x", headers={"Auto-Submitted": "auto-replied"},
                       body="Fine.\n\nOn Mon, Bob wrote:\n> old\n"))
    code, out, _ = run(["inspect", str(f)], capsys)
    assert code == 0 and "Kind:        auto-reply" in out and "Fine." in out and "ann@c.test" in out
    code, out, _ = run(["inspect", str(f), "--json"], capsys)
    data = json.loads(out)
    assert data["kind"] == "auto-reply" and data["reply_text"] == "Fine." and data["from"] == "ann@c.test"


def test_inspect_of_a_missing_file_is_a_usage_error():
    parser = argparse.ArgumentParser()
    inspect_cmd.register(parser.add_subparsers())
    args = parser.parse_args(["inspect", "/nonexistent/x.eml"])
    with pytest.raises(common.UsageError, match="no such file"):
        args.func(args)


def test_route_is_a_dry_run_that_says_why(capsys, monkeypatch):
    c = stack()
    f = DATA / "ses-inbound.eml"
    code, out, _ = run(["route", str(f), "--to", "sales@example.test"], capsys, c, monkeypatch)
    assert code == 0 and "Route:   new-record" in out and "alias sales@example.test creates a crm.lead" in out
    assert c.messages.records == {} and c.events.published == [] and c.threads.message_index == {}
    code, out, _ = run(["route", str(f), "--verdict", "virus=FAIL", "--json"], capsys, c, monkeypatch)
    assert json.loads(out)["kind"] == "quarantined"


def test_messages_list_show_and_replay(capsys, monkeypatch):
    c = stack()
    rec = deliver(c, mail(to="nobody@example.test", subject="Where to?"), recipients=["nobody@example.test"])
    code, out, _ = run(["messages", "list"], capsys, c, monkeypatch)
    assert code == 0 and rec.key in out and "unknown-recipient" in out
    code, out, _ = run(["messages", "show", rec.key], capsys, c, monkeypatch)
    assert "Outcome:    unknown-recipient" in out and "Answer:     sent to ann@customer.test" in out
    code, _, err = run(["messages", "show", "in:mid:none"], capsys, c, monkeypatch)
    assert code == 1 and "mailgate messages list" in err
    code, out, _ = run(["replay", rec.key, "--json"], capsys, c, monkeypatch)
    assert code == 0 and json.loads(out)["outcome"] == "unknown-recipient"
    code, _, err = run(["replay", "in:mid:none"], capsys, c, monkeypatch)
    assert code == 1 and "no message with key" in err
