"""`mailgate send` and `mailgate dkim keygen` against an in-memory stack."""

import argparse
import json
import re

import dkim
import pytest

from mailgate import dkim as D
from mailgate.adapters.senders import Transports
from mailgate.domain import AliasDomain
from mailgate.services import outbound
from mailgate_dev import fakes
from mailgate_dev.cli import common
from mailgate_dev.cli import dkim as dkim_cli
from mailgate_dev.cli import send as send_cli


@pytest.fixture
def c(monkeypatch):
    c = fakes.in_memory()
    c.config.put_domain(AliasDomain("example.test", dkim_selector="mg"))
    monkeypatch.setattr(common, "get_container", lambda args: c)
    return c


def run(*argv):
    parser = argparse.ArgumentParser(prog="mailgate")
    sub = parser.add_subparsers()
    send_cli.register(sub)
    dkim_cli.register(sub)
    args = parser.parse_args(argv)
    return args.func(args)


def test_keygen_stores_the_key_and_prints_the_record_that_verifies_its_signatures(c, capsys):
    assert run("dkim", "keygen", "example.test", "--json") == 0
    out = json.loads(capsys.readouterr().out)
    assert out["record_name"] == "mg._domainkey.example.test" and out["secret_id"] == "mailgate/dkim/example.test/mg"
    key = D.load_private_key(c.secrets.get(out["secret_id"]))
    assert key.key_size == 2048
    (k,) = c.signing_keys.keys_for("example.test", "mg")
    raw = D.sign_message(b"From: a@example.test\r\nSubject: x\r\n\r\nbody\r\n", [k])
    assert dkim.verify(raw, dnsfunc=D.dnsfunc_for({out["record_name"]: out["value"]}))


def test_keygen_refuses_to_replace_a_key_without_force(c, capsys):
    assert run("dkim", "keygen", "example.test") == 0
    first = c.secrets.get("mailgate/dkim/example.test/mg")
    assert run("dkim", "keygen", "example.test") == 1
    assert "--force" in capsys.readouterr().err
    assert c.secrets.get("mailgate/dkim/example.test/mg") == first
    assert run("dkim", "keygen", "example.test", "--force") == 0
    assert c.secrets.get("mailgate/dkim/example.test/mg") != first


def test_keygen_ed25519_goes_under_the_selector_the_signer_looks_for(c, capsys):
    assert run("dkim", "keygen", "example.test", "--type", "ed25519") == 0
    text = capsys.readouterr().out
    assert re.search(r'mg-ed25519\._domainkey\.example\.test\. 3600 IN TXT "v=DKIM1; k=ed25519; p=', text)
    assert "gateway's shared key" in text  # example.test is the in-memory gateway domain
    c.secrets.put("mailgate/dkim/example.test/mg", D.private_pem(D.generate_key("rsa", 1024)))
    assert [k.selector for k in c.signing_keys.keys_for("example.test", "mg")] == ["mg", "mg-ed25519"]


def test_keygen_rejects_a_name_that_is_not_a_domain(c, capsys):
    assert run("dkim", "keygen", "nodot") == 2


def test_send_queues_the_request_by_default(c, capsys):
    code = run("send", "--from", "Shop <shop@example.test>", "--to", "bob@example.org", "--subject", "Hi",
               "--text", "Hello", "--record", "sale.order:42", "--header", "X-Campaign=7", "--idempotency-key", "k1")
    assert code == 0
    (body,) = c.outbound_queue.sent
    assert body["record"] == {"model": "sale.order", "id": "42"} and body["headers"] == {"X-Campaign": "7"}
    assert "queued k1" in capsys.readouterr().out


def test_send_now_uploads_attachments_and_sends(c, tmp_path, capsys):
    c.secrets.put("mailgate/dkim/example.test/mg", D.private_pem(D.generate_key("rsa", 1024)))
    sent = []

    class FakeSesClient:  # the `ses_client` seam: what SesSender calls
        def send_email(self, **params):
            sent.append(params["Content"]["Raw"]["Data"])
            return {"MessageId": f"ses-{len(sent)}"}

    c.transports = Transports(ses_client=FakeSesClient())
    pdf = tmp_path / "invoice.pdf"
    pdf.write_bytes(b"%PDF-1.4 test")
    code = run("send", "--from", "shop@example.test", "--to", "bob@example.org", "--subject", "Invoice",
               "--text", "Attached.", "--attach", str(pdf), "--now", "--json")
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    assert result["status"] == "sent"
    assert b'filename="invoice.pdf"' in sent[0]
    assert any(k.startswith(outbound.upload_prefix(result["idempotency_key"])) and v == b"%PDF-1.4 test"
               for k, v in c.raw_store.objects.items())


def test_send_refuses_a_bad_request_before_queueing(c, capsys):
    assert run("send", "--from", "shop@example.test", "--to", "not an address", "--subject", "x", "--text", "y") == 2
    assert "not a valid e-mail address" in capsys.readouterr().err
    assert c.outbound_queue.sent == []
    assert run("send", "--from", "shop@example.test", "--to", "b@example.org", "--subject", "x") == 2
    assert "give text, html or both" in capsys.readouterr().err
    assert run("send", "--from", "shop@example.test", "--to", "b@example.org", "--subject", "x", "--text", "y",
               "--record", "nocolon") == 2
