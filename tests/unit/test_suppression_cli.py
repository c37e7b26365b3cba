"""`mailgate suppression list|add|remove|show` against an in-memory container."""

from __future__ import annotations

import argparse
import json

import pytest

from mailgate import suppression
from mailgate.bounce_policy import record_bounce
from mailgate_dev import fakes
from mailgate_dev.cli import common
from mailgate_dev.cli import suppression as cli


@pytest.fixture
def run(monkeypatch, capsys):
    c = fakes.in_memory()
    monkeypatch.setattr(common, "get_container", lambda args: c)
    parser = argparse.ArgumentParser(prog="mailgate")
    cli.register(parser.add_subparsers(dest="area", required=True))

    def _run(*argv):
        args = parser.parse_args(list(argv))
        code = args.func(args)
        out = capsys.readouterr()
        return code, out.out, out.err

    _run.c = c
    return _run


def test_add_then_list_shows_the_address_and_reason(run):
    code, out, _ = run("suppression", "add", "example.test", "Someone@Customer.example", "--reason", "asked to stop")
    assert code == 0 and "suppressed someone@customer.example" in out
    code, out, _ = run("suppression", "list", "--json")
    rows = json.loads(out)
    assert code == 0 and [(r["address"], r["reason"], r["source"]) for r in rows] == [
        ("someone@customer.example", "asked to stop", "manual")]


def test_remove_forgets_suppression_and_score(run):
    for _ in range(4):
        record_bounce(run.c.kv, "example.test", "full@customer.example", permanent=False)
    code, out, _ = run("suppression", "remove", "example.test", "full@customer.example")
    assert code == 0 and "mailed again" in out
    assert suppression.is_suppressed(run.c.kv, "example.test", "full@customer.example") is None
    code, out, _ = run("suppression", "show", "example.test", "full@customer.example", "--json")
    assert json.loads(out)["score"] == 0


def test_removing_an_address_that_is_not_suppressed_says_so(run):
    code, _, err = run("suppression", "remove", "example.test", "nobody@customer.example")
    assert code == 1 and "is not suppressed" in err and "suppression list" in err


def test_adding_something_that_is_not_an_address_is_a_usage_error(run):
    code, _, err = run("suppression", "add", "example.test", "not-an-address")
    assert code == 2 and "not an e-mail address" in err
    assert suppression.list_suppressed(run.c.kv) == []


def test_list_without_entries_and_show_with_a_hard_bounce(run):
    code, out, _ = run("suppression", "list")
    assert code == 0 and "(none)" in out
    record_bounce(run.c.kv, "example.test", "gone@customer.example", permanent=True, status="5.1.1")
    code, out, _ = run("suppression", "show", "example.test", "gone@customer.example")
    assert code == 0 and "SUPPRESSED" in out and "hard bounce" in out
