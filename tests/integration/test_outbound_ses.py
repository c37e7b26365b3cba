"""Outbound through SES v2 on the AWS emulator (moto server over HTTP), read back from the emulator."""

import json
import subprocess
import urllib.request

import dkim
import pytest

from mailgate import bootstrap, tokens
from mailgate import dkim as D
from mailgate.adapters.ses import SesSender, ses_client
from mailgate.adapters.smtp import Envelope
from mailgate.domain import AliasDomain
from mailgate.services import outbound
from mailgate.settings import Settings
from tests.fixtures._ports import free_port, wait_listening

pytestmark = pytest.mark.integration

MOTO_SERVER = "/work/main/.venv/bin/moto_server"


@pytest.fixture(scope="module")
def moto_url():
    """A moto server of our own (to be replaced by the shared AWS emulator fixture)."""
    port = free_port()
    proc = subprocess.Popen([MOTO_SERVER, "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_listening(port, timeout=30)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture
def aws_env(moto_url, monkeypatch):
    # boto3 reads AWS_ENDPOINT_URL itself: the adapter has no endpoint code of its own
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    urllib.request.urlopen(urllib.request.Request(f"{moto_url}/moto-api/reset", method="POST")).read()
    return moto_url


@pytest.fixture(autouse=True)
def every_accepted_message_is_dkim_verified(request, rsa_key):
    url = request.getfixturevalue("moto_url") if "aws_env" in request.fixturenames else None
    yield
    if url:
        lookup = D.dnsfunc_for({"mg._domainkey.example.test": D.public_txt(rsa_key)})
        for m in accepted(url):
            raw = m["raw_data"].encode()
            assert dkim.verify(raw, dnsfunc=lookup)
            assert not dkim.verify(raw.replace(b"\r\n\r\n", b"\r\n\r\nX", 1), dnsfunc=lookup)


def accepted(moto_url) -> list[dict]:
    """What the emulator's SES accepted: its raw messages with their destinations."""
    data = json.load(urllib.request.urlopen(f"{moto_url}/moto-api/data.json"))
    return data["ses"]["RawMessage"]


@pytest.fixture(scope="module")
def rsa_key():
    return D.generate_key("rsa", 2048)


@pytest.fixture
def world(aws_env, rsa_key):
    c = bootstrap.in_memory(Settings(table_name="memory", bucket_name="memory", gateway_domain="example.test",
                                     ses_configuration_set="mailgate-outbound"))
    c.config.put_domain(AliasDomain("example.test", dkim_selector="mg"))
    c.secrets.put("mailgate/dkim/example.test/mg", D.private_pem(rsa_key))
    client = ses_client(c.settings)
    client.create_configuration_set(ConfigurationSetName="mailgate-outbound")
    c.extras["ses_client"] = client
    return c


def verify_domain(c, domain="example.test"):
    c.extras["ses_client"].create_email_identity(EmailIdentity=domain)


def req(**over):
    base = {"idempotency_key": "welcome-bob", "from": "Team <team@example.test>",
            "to": ["bob@example.org", "carol@example.org"], "subject": "Welcome", "text": "Hello!",
            "html": "<p>Hello!</p>", "record": {"model": "res.partner", "id": "7"}}
    base.update(over)
    return base


def test_message_sent_through_ses_is_the_dkim_signed_raw_message_one_call_per_recipient(world, aws_env, rsa_key):
    verify_domain(world)
    out = outbound.send(world, req())
    assert out["status"] == "sent" and out["transport"] == "ses"
    got = accepted(aws_env)
    assert len(got) == 2
    lookup = D.dnsfunc_for({"mg._domainkey.example.test": D.public_txt(rsa_key)})
    stored = world.raw_store.get(world.messages.get("out:" + out["ref"]).raw_key)
    for m in got:
        raw = m["raw_data"].encode()
        assert raw == stored
        assert dkim.verify(raw, dnsfunc=lookup)
        assert not dkim.verify(raw.replace(b"Hello!", b"Hello?"), dnsfunc=lookup)
        assert m["source"] == "team@example.test"
    assert [r["status"] for r in out["recipients"]] == ["sent", "sent"]
    record = world.messages.get("out:" + out["ref"])
    transport_ids = {r["transport_id"] for r in record.detail["recipients"]}
    assert transport_ids == {m["id"] for m in got}


def test_ses_call_names_the_verp_bounce_address_and_configuration_set(world):
    calls = []
    client = world.extras["ses_client"]
    client.meta.events.register("provide-client-params.sesv2.SendEmail", lambda params, **kw: calls.append(params))
    verify_domain(world)
    out = outbound.send(world, req(to=["bob@example.org"]))
    assert out["status"] == "sent"
    (params,) = calls
    assert params["ConfigurationSetName"] == "mailgate-outbound"
    assert params["Destination"] == {"ToAddresses": ["bob@example.org"]}
    assert tokens.parse_verp_address(world.token_key, params["FeedbackForwardingEmailAddress"]) == (out["ref"], 0)


def test_unverified_domain_is_a_permanent_failure_recorded_per_recipient(world, aws_env):
    out = outbound.send(world, req())
    assert out["status"] == "failed"
    assert {r["error"] for r in out["recipients"]} == {"ses-rejected"}
    assert "MessageRejected" in out["recipients"][0]["detail"]
    assert accepted(aws_env) == []
    assert outbound.send(world, req())["status"] == "duplicate"


def test_ses_throttling_is_deferred_for_a_later_try_and_rejection_is_final():
    from botocore.stub import Stubber

    import boto3

    client = boto3.client("sesv2", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    with Stubber(client) as stub:
        stub.add_client_error("send_email", "TooManyRequestsException", "Maximum sending rate exceeded.", 429)
        stub.add_client_error("send_email", "MessageRejected", "Email address is not verified.", 400)
        results = SesSender(client).send([Envelope("bounce+x@example.test", "a@example.org"),
                                          Envelope("bounce+y@example.test", "b@example.org")], b"Subject: x\r\n\r\nx")
    assert [(r.status, r.error) for r in results] == [("deferred", "ses-throttled"), ("failed", "ses-rejected")]
    assert "Maximum sending rate exceeded" in results[0].detail
