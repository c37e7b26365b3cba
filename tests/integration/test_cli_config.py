"""The `mailgate` command against a stack in the emulator: what an operator types and sees."""

import io
import json

import pytest

from mailgate_dev.cli.main import main

pytestmark = pytest.mark.integration


@pytest.fixture
def cli(aws, tmp_path, monkeypatch, capsys):
    """Run `mailgate ARGS` against the `aws` fixture's resources as if they were the local stack."""
    s = aws.settings
    outputs = {"TableName": s.table_name, "BucketName": s.bucket_name, "EventBusName": s.event_bus_name,
               "OutboundQueueUrl": s.outbound_queue_url, "FetchQueueUrl": s.fetch_queue_url,
               "TokenSecretId": s.token_secret_id, "ServerSecretPrefix": s.server_secret_prefix,
               "DkimSecretPrefix": s.dkim_secret_prefix, "GatewayDomain": s.gateway_domain}
    (tmp_path / "stack.json").write_text(json.dumps({"endpoint": s.endpoint_url, "outputs": outputs}))
    monkeypatch.setenv("MAILGATE_LOCAL_DIR", str(tmp_path))

    def run(*argv, stdin=None):
        if stdin is not None:
            monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
        code = main(list(argv))
        out, err = capsys.readouterr()
        return code, out, err

    return run


def test_operator_adds_a_domain_and_an_alias_and_lists_them(cli):
    assert cli("domain", "add", "Example.TEST")[0] == 0
    code, out, _ = cli("alias", "add", "sales@example.test", "--model", "crm.lead", "--defaults", '{"team": "eu"}')
    assert code == 0 and "sales@example.test -> new crm.lead records" in out
    code, out, _ = cli("alias", "list", "--json")
    assert code == 0 and json.loads(out)[0]["address"] == "sales@example.test"
    code, out, _ = cli("domain", "show", "example.test")
    assert "catchall" in out and "crm.lead" in out


def test_alias_on_unknown_domain_and_bad_input_get_one_clear_line(cli):
    code, _, err = cli("alias", "add", "sales@nowhere.test", "--model", "crm.lead")
    assert code == 1 and err.strip() == ("mailgate: no alias domain 'nowhere.test': add it first with "
                                         "`mailgate domain add nowhere.test`")
    code, _, err = cli("alias", "add", "not-an-address", "--model", "crm.lead")
    assert code == 2 and len(err.strip().splitlines()) == 1
    cli("domain", "add", "example.test")
    code, _, err = cli("alias", "add", "x@example.test", "--model", "m", "--defaults", "[1]")
    assert code == 2 and "JSON object" in err


def test_server_password_goes_to_secrets_manager_and_is_never_printed(cli, aws):
    code, out, err = cli("server", "add-imap", "office", "--host", "imap.example.test", "--user", "me",
                         "--password-stdin", "--json", stdin="pa55word-xyz\n")
    assert code == 0
    assert "pa55word-xyz" not in out + err
    data = json.loads(out)
    assert data["port"] == 993 and data["security"] == "ssl"
    assert aws.secrets.get(data["secret_id"]) == "pa55word-xyz"
    code, out, _ = cli("server", "list", "--json")
    assert "pa55word" not in out and json.loads(out)[0]["name"] == "office"
    assert cli("server", "remove", "office")[0] == 0
    assert cli("server", "remove", "office")[0] == 1


def test_plaintext_smtp_needs_an_explicit_opt_in(cli):
    code, _, err = cli("server", "add-smtp", "relay", "--host", "smtp.example.test", "--encryption", "none",
                       "--no-password")
    assert code == 2 and "--allow-plaintext" in err
    code, out, _ = cli("server", "add-smtp", "relay", "--host", "smtp.example.test", "--encryption", "none",
                       "--allow-plaintext", "--no-password", "--from-filter", "example.test")
    assert code == 0 and "587" in out


def test_commands_without_a_running_stack_say_how_to_start_one(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MAILGATE_LOCAL_DIR", str(tmp_path))
    assert main(["domain", "list"]) == 1
    assert "make run" in capsys.readouterr().err


def test_domain_add_on_an_existing_domain_changes_only_what_it_is_given(cli):
    assert cli("domain", "add", "example.test", "--loop-limit", "5", "--allow", "boss@example.test",
               "--dmarc-rua", "dmarc@example.test")[0] == 0
    code, out, _ = cli("domain", "add", "example.test", "--dkim-selector", "s2026", "--json")
    assert code == 0
    d = json.loads(out)
    assert (d["dkim_selector"], d["loop_limit"], d["loop_allowlist"], d["dmarc_rua"]) == \
        ("s2026", 5, ["boss@example.test"], "dmarc@example.test")
    assert d["loop_window_minutes"] == 120 and d["catchall"] == "catchall"
