"""`mailgate server ...` input that the deployed stack could not store is refused up front."""

import pytest

from mailgate_dev.cli.main import main


@pytest.mark.parametrize("name", ["office inbox", "büro", "a" * 65, "x/../y", "o#1"])
def test_a_server_name_secrets_manager_cannot_hold_is_one_clear_line(capsys, name):
    # Secrets Manager names allow letters, digits and /_+=.@- only: the password could not be stored
    code = main(["server", "add-imap", name, "--host", "imap.example.test", "--user", "me", "--no-password"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "is not a usable server name" in err and "office-inbox" in err


# --- where passwords live: incoming and outgoing apart, so IAM can tell them apart --------------

@pytest.fixture
def run(monkeypatch, capsys):
    from mailgate_dev import fakes
    from mailgate_dev.cli import common, server

    c = fakes.in_memory()
    monkeypatch.setattr(server, "get_container", lambda args: c)
    monkeypatch.setattr(common, "get_container", lambda args: c)

    def _run(*argv, stdin=""):
        import io
        import sys

        monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
        code = main(list(argv))
        out = capsys.readouterr()
        return code, out.out, out.err

    _run.c = c
    return _run


def test_mailbox_and_relay_passwords_are_stored_under_prefixes_of_their_own(run):
    """The fetch worker may read server/imap/ and server/pop/, the outbound function server/smtp/:
    a flaw in one cannot hand out the other's passwords."""
    c = run.c
    prefix = c.settings.server_secret_prefix
    run("server", "add-imap", "office", "--host", "imap.example.test", "--user", "me", "--password-stdin",
        stdin="imap-pw\n")
    run("server", "add-pop", "shop", "--host", "pop.example.test", "--user", "me", "--password-stdin",
        stdin="pop-pw\n")
    run("server", "add-smtp", "relay", "--host", "smtp.example.test", "--user", "me", "--password-stdin",
        stdin="smtp-pw\n")

    assert c.config.get_incoming("office").secret_id == f"{prefix}imap/office"
    assert c.config.get_incoming("shop").secret_id == f"{prefix}pop/shop"
    assert c.config.get_outgoing("relay").secret_id == f"{prefix}smtp/relay"
    assert {k: v for k, v in c.secrets.values.items() if k.startswith(prefix)} == {
        f"{prefix}imap/office": "imap-pw", f"{prefix}pop/shop": "pop-pw", f"{prefix}smtp/relay": "smtp-pw"}


def test_migrate_secrets_moves_passwords_stored_under_the_shared_prefix(run):
    from mailgate.domain import IncomingServer, OutgoingServer

    c = run.c
    prefix = c.settings.server_secret_prefix
    c.config.put_incoming(IncomingServer("office", "imap", "imap.example.test", 993, "me",
                                         secret_id=f"{prefix}office"))
    c.config.put_outgoing(OutgoingServer("relay", "smtp.example.test", 465, "me", secret_id=f"{prefix}relay"))
    c.secrets.put(f"{prefix}office", "imap-pw")
    c.secrets.put(f"{prefix}relay", "smtp-pw")

    code, out, _ = run("server", "migrate-secrets")
    assert code == 0 and "office" in out and "relay" in out
    assert c.config.get_incoming("office").secret_id == f"{prefix}imap/office"
    assert c.config.get_outgoing("relay").secret_id == f"{prefix}smtp/relay"
    assert c.secrets.get(f"{prefix}imap/office") == "imap-pw" and c.secrets.get(f"{prefix}smtp/relay") == "smtp-pw"
    assert f"{prefix}office" not in c.secrets.values and f"{prefix}relay" not in c.secrets.values
    assert "nothing to move" in run("server", "migrate-secrets")[1]  # a second run changes nothing
