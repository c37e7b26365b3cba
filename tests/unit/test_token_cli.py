"""`mailgate token show|rotate` against an in-memory container: keys rotate without breaking the
reply and bounce addresses already sent, and no key value is ever printed."""

from __future__ import annotations

import json

import pytest

from mailgate import tokens
from mailgate_dev import fakes
from mailgate_dev.cli import common
from mailgate_dev.cli import token as cli

from .cli_support import run_cli


@pytest.fixture
def run(monkeypatch, capsys):
    c = fakes.in_memory(token_key="plain-text-key-of-an-older-stack")

    def _run(*argv):
        return run_cli(argv, capsys, (cli,), container=c, monkeypatch=monkeypatch)

    _run.c = c
    return _run


def test_rotate_keeps_the_addresses_in_circulation_working_and_prints_no_key(run):
    c = run.c
    sent = tokens.reply_address(c.token_key, "catchall", "example.test", "threadbeforerot")
    code, out, _ = run("token", "rotate", "--json")
    info = json.loads(out)
    assert code == 0 and info["current"] == "aa" and info["previous"]["kid"] == "legacy"
    assert 89 < (info["previous"]["until"] - __import__("time").time()) / 86400 <= 90
    secret = c.secrets.get(c.settings.token_secret_id)
    assert all(k.secret.decode() not in out for k in (c.token_key.current, c.token_key.previous))
    assert "plain-text-key-of-an-older-stack" not in out
    assert tokens.parse_reply_address(c.token_key, sent) == "threadbeforerot"
    fresh = tokens.reply_address(c.token_key, "catchall", "example.test", "threadafterrota")
    assert ".aa." in fresh and tokens.parse_reply_address(c.token_key, fresh) == "threadafterrota"

    code, out, _ = run("token", "rotate", "--grace-days", "0")
    assert code == 0 and "dropped key: legacy" in out and "current key: ab" in out
    assert tokens.parse_reply_address(c.token_key, sent) is None
    assert c.secrets.get(c.settings.token_secret_id) != secret


def test_show_names_the_keys_and_their_grace_period(run):
    run("token", "rotate", "--grace-days", "7")
    code, out, _ = run("token", "show")
    assert code == 0 and "current key: aa" in out and "previous key: legacy (verified until" in out


def test_a_negative_grace_period_is_bad_usage(run):
    with pytest.raises(common.UsageError):
        run("token", "rotate", "--grace-days", "-1")
