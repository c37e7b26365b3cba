"""SES set up from the CLI on the emulator (SESv2 through the admin port), with SES's checks of
DNS played against the local DNS server: `domain add --ses`, `dns records`, `setup`."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import boto3
import pytest

from mailgate_dev.cli.main import main
from mailgate_dev.local.deploy import deploy
from tests.fixtures._ports import free_port, wait_listening

pytestmark = pytest.mark.integration
GATEWAY = "gw.example.test"


@pytest.fixture(scope="module")
def emulator(_dns_server_session, tmp_path_factory):
    """The template deployed into an emulator whose SES looks for records on the local DNS server."""
    port = free_port()
    env = dict(os.environ, AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="us-east-1",
               MAILGATE_SES_NAMESERVER=_dns_server_session.nameserver)
    env.pop("AWS_ENDPOINT_URL", None)
    log = tmp_path_factory.mktemp("moto") / "moto.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "mailgate_dev.local.motoserver", "-H", "127.0.0.1", "-p", str(port)],
                                stdout=out, stderr=subprocess.STDOUT, env=env)
    try:
        wait_listening(port, timeout=30)
        endpoint = f"http://127.0.0.1:{port}"
        saved = {k: os.environ.get(k) for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION")}
        os.environ.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="us-east-1")
        outputs = deploy(endpoint, stack_name="sestest", parameters={"GatewayDomain": GATEWAY})
        state = tmp_path_factory.mktemp("state")
        (state / "stack.json").write_text(json.dumps({"endpoint": endpoint, "outputs": outputs}))
        yield endpoint, outputs, state
    finally:
        for k, v in locals().get("saved", {}).items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture
def cli(emulator, monkeypatch, capsys, aws_credentials):
    monkeypatch.setenv("MAILGATE_LOCAL_DIR", str(emulator[2]))

    def run(*argv):
        code = main(list(argv))
        out, err = capsys.readouterr()
        return code, out, err

    return run


def steps(out: str) -> dict[str, dict]:
    return {s["item"]: s for s in json.loads(out)}


def test_domain_add_ses_then_the_records_dns_prints_verify_it(cli, emulator, dns_server):
    endpoint, outputs, _ = emulator
    assert cli("domain", "add", "example.test")[0] == 0
    assert cli("dkim", "keygen", "example.test")[0] == 0
    code, out, err = cli("domain", "add", "example.test", "--ses", "--json")
    assert code == 0, err
    done = {s["item"]: s["status"] for s in json.loads(out)["ses"]}
    assert done == {"identity example.test": "done", "MAIL FROM bounce.example.test": "done",
                    f"feedback of configuration set {outputs['ConfigurationSetName']}": "ok"}
    ses = boto3.client("sesv2", endpoint_url=endpoint, region_name="us-east-1")
    identity = ses.get_email_identity(EmailIdentity="example.test")
    assert identity["DkimAttributes"]["SigningAttributesOrigin"] == "EXTERNAL"
    assert identity["ConfigurationSetName"] == outputs["ConfigurationSetName"]
    assert identity["MailFromAttributes"]["MailFromDomain"] == "bounce.example.test"

    code, out, _ = cli("setup", "--json")
    found = steps(out)
    assert code == 1
    assert found["identity example.test"]["status"] == "fix" and found["DKIM example.test"]["found"].endswith("PENDING")
    assert found["MAIL FROM bounce.example.test"]["status"] == "fix"
    assert found["SES account"]["status"] == "fix" and "sandbox" in found["SES account"]["found"]
    assert found[f"identity {GATEWAY}"]["fix"] == f"mailgate domain add {GATEWAY} --ses"

    code, out, _ = cli("dns", "records", "example.test", "--offline", "--json")
    records = json.loads(out)
    mail_from = {(r["name"], r["rtype"]): r["value"] for r in records["records"] if r["name"] == "bounce.example.test"}
    assert mail_from == {("bounce.example.test", "MX"): "10 feedback-smtp.us-east-1.amazonses.com",
                         ("bounce.example.test", "TXT"): "v=spf1 include:amazonses.com ~all"}
    dns_server.load(records["zone"])
    code, out, _ = cli("setup", "--json")
    found = steps(out)
    assert [found[k]["status"] for k in ("identity example.test", "DKIM example.test", "MAIL FROM bounce.example.test")] \
        == ["ok", "ok", "ok"]


def test_easy_dkim_cnames_are_the_tokens_ses_gives(cli, emulator, dns_server):
    endpoint, _, _ = emulator
    assert cli("domain", "add", "other.test")[0] == 0
    code, out, err = cli("domain", "add", "other.test", "--ses", "--dkim", "easy")
    assert code == 0, err
    assert "identity other.test: created with Easy DKIM" in out
    tokens = boto3.client("sesv2", endpoint_url=endpoint, region_name="us-east-1").get_email_identity(
        EmailIdentity="other.test")["DkimAttributes"]["Tokens"]
    code, out, _ = cli("dns", "records", "other.test", "--offline", "--json")
    records = json.loads(out)
    cnames = {r["name"]: r["value"] for r in records["records"] if r["rtype"] == "CNAME" and "amazonses" in r["value"]}
    assert cnames == {f"{t}._domainkey.other.test": f"{t}.dkim.amazonses.com" for t in tokens}
    dns_server.load(records["zone"])
    code, out, _ = cli("setup", "--json")
    assert steps(out)["DKIM other.test"] == {"item": "DKIM other.test", "status": "ok", "found": "Easy DKIM: found in DNS",
                                             "fix": ""}


def test_setup_activates_the_rule_set_only_in_place_of_none_unless_told(cli, emulator):
    endpoint, outputs, _ = emulator
    v1 = boto3.client("ses", endpoint_url=endpoint, region_name="us-east-1")
    v1.create_receipt_rule_set(RuleSetName="other-app")
    v1.set_active_receipt_rule_set(RuleSetName="other-app")
    item = f"receipt rule set {outputs['ReceiptRuleSetName']}"
    assert steps(cli("setup", "--json")[1])[item]["status"] == "fix"
    assert v1.describe_active_receipt_rule_set()["Metadata"]["Name"] == "other-app"
    assert steps(cli("setup", "--replace-active-rule-set", "--json")[1])[item]["status"] == "done"
    assert v1.describe_active_receipt_rule_set()["Metadata"]["Name"] == outputs["ReceiptRuleSetName"]
    v1.set_active_receipt_rule_set()  # none active: setup activates it without being told
    code, out, _ = cli("setup")
    assert f"[DONE] {item}: activated" in out
