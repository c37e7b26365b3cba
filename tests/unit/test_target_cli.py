"""`mailgate target ...`, `deliveries ...` and `--deliver-to` over the in-memory fakes: what a user
types, what they see, and that secrets are printed once or never."""

from __future__ import annotations

import io
import json

import pytest

from mailgate.adapters.targets import retry_after
from mailgate.domain import AliasDomain
from mailgate.ports import DeliveryAnswer
from mailgate.services import delivery
from mailgate_dev.cli.main import main
from mailgate_dev.fakes import in_memory


@pytest.fixture
def c(monkeypatch):
    container = in_memory()
    container.config.put_domain(AliasDomain("example.test"))
    for module in ("common", "target", "deliveries", "domain", "alias"):
        monkeypatch.setattr(f"mailgate_dev.cli.{module}.get_container", lambda args: container, raising=False)
    return container


def run(capsys, monkeypatch, *argv, stdin=""):
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_an_odoo_target_keeps_its_api_key_in_the_secret_store_and_never_prints_it(c, capsys, monkeypatch):
    code, out, _ = run(capsys, monkeypatch, "target", "add-odoo", "crm", "--url", "https://odoo.example.com",
                       "--database", "prod", "--user", "bot@example.com", "--api-key-stdin", stdin="s3cret-key\n")
    assert code == 0 and "s3cret-key" not in out
    target = c.config.get_target("crm")
    assert (target.kind, target.api, target.pass_automatic) == ("odoo", "xmlrpc", True)
    assert c.secrets.get(target.secret_id) == "s3cret-key"
    code, out, _ = run(capsys, monkeypatch, "target", "list", "--json")
    assert "s3cret-key" not in out and json.loads(out)[0]["name"] == "crm"


def test_a_webhook_secret_is_printed_once_and_rotation_keeps_the_old_one_for_a_while(c, capsys, monkeypatch):
    code, out, _ = run(capsys, monkeypatch, "target", "add-webhook", "app", "--url", "https://app.example.com/h",
                       "--json")
    first = json.loads(out)["signing_secret"]
    assert code == 0 and first.startswith("whsec_")
    assert first not in run(capsys, monkeypatch, "target", "list")[1]
    code, out, _ = run(capsys, monkeypatch, "target", "rotate-secret", "app", "--overlap-hours", "2", "--json")
    second = json.loads(out)["signing_secret"]
    valid = delivery.valid_secrets(c.secrets.get(c.config.get_target("app").secret_id))
    assert valid == [second, first]
    run(capsys, monkeypatch, "target", "rotate-secret", "app")
    assert second in delivery.valid_secrets(c.secrets.get(c.config.get_target("app").secret_id))
    assert first not in delivery.valid_secrets(c.secrets.get(c.config.get_target("app").secret_id))


@pytest.mark.parametrize("argv,says", [
    (["--url", "ftp://odoo.example.com"], "give an http(s) URL"),
    (["--url", "http://odoo.example.com"], "in clear"),
])
def test_a_target_url_that_would_not_work_or_leak_is_refused(c, capsys, monkeypatch, argv, says):
    code, _, err = run(capsys, monkeypatch, "target", "add-webhook", "app", *argv)
    assert code == 2 and says in err and c.config.list_targets() == []


def test_deliver_to_must_name_a_target_and_a_target_in_use_is_not_removed(c, capsys, monkeypatch):
    code, _, err = run(capsys, monkeypatch, "domain", "add", "example.test", "--deliver-to", "crm")
    assert code == 2 and "no delivery target 'crm'" in err
    run(capsys, monkeypatch, "target", "add-webhook", "crm", "--url", "https://app.example.com/h")
    assert run(capsys, monkeypatch, "domain", "add", "example.test", "--deliver-to", "crm")[0] == 0
    assert c.config.get_domain("example.test").deliver_to == "crm"
    assert run(capsys, monkeypatch, "alias", "add", "sales@example.test", "--model", "crm.lead",
               "--deliver-to", "eventbridge")[0] == 0
    code, _, err = run(capsys, monkeypatch, "target", "remove", "crm")
    assert code == 1 and "example.test" in err


def test_failed_deliveries_are_listed_shown_with_the_answer_and_retried(c, capsys, monkeypatch):
    from mailgate.domain import DeliveryTarget, MessageRecord

    c.config.put_target(DeliveryTarget("crm", "odoo", "https://odoo.example.com", secret_id="k"))
    c.secrets.put("k", "key")
    c.raw_store.put("raw/ses/1", b"Subject: x\r\n\r\nx")
    c.messages.claim(MessageRecord(key="in:mid:1", raw_key="raw/ses/1", outcome="new-record"))
    c.targets.answers["crm"] = [DeliveryAnswer("failed", None, "XML-RPC fault 4: Private methods ...")]
    delivery.enqueue(c, "in:mid:1", "crm")
    delivery.deliver(c, c.delivery_queue.sent.pop(), attempt=1)
    code, out, _ = run(capsys, monkeypatch, "deliveries", "list", "--failed")
    assert code == 0 and "in:mid:1#crm" in out and "failed" in out
    code, out, _ = run(capsys, monkeypatch, "deliveries", "show", "in:mid:1#crm")
    assert "XML-RPC fault 4" in out and "mailgate deliveries retry in:mid:1#crm" in out
    code, out, _ = run(capsys, monkeypatch, "deliveries", "retry", "in:mid:1#crm")
    assert code == 0 and c.delivery_queue.sent == [{"message_key": "in:mid:1", "target": "crm"}]
    assert run(capsys, monkeypatch, "deliveries", "retry", "nothing#crm")[0] == 1


def test_retry_after_is_read_as_seconds_or_an_http_date():
    assert retry_after("120") == 120
    assert retry_after("Sun, 06 Dec 2026 10:00:30 GMT", now=1796551200.0) == 30
    assert retry_after("soon") is None and retry_after("") is None
