"""The daily DNS check: state per domain in kv, an event when a record goes from ok to wrong."""

from __future__ import annotations

import pytest

from mailgate.adapters.dnspython import DnspythonResolver
from mailgate.domain import AliasDomain
from mailgate.services import dnswatch
from mailgate.settings import Settings
from mailgate_dev import fakes
from tests.integration.test_dns_check import DKIM, DOMAIN, pem, serve

pytestmark = pytest.mark.integration


@pytest.fixture
def c():
    c = fakes.in_memory(Settings(table_name="t", bucket_name="b", gateway_domain="gateway.test", region="eu-west-1"))
    c.config.put_domain(AliasDomain(DOMAIN))
    c.secrets.put("mailgate/dkim/gateway.test/mailgate", pem())
    return c


def run(c, dns_server, timeout=1.0, **kw):
    """The daily check, resolving through the local DNS server."""
    c.resolvers = lambda: DnspythonResolver.for_nameserver(dns_server.nameserver, timeout=timeout)
    return dnswatch.run_daily(c, **kw)


def test_first_check_records_the_state_without_an_event(c, dns_server):
    serve(dns_server)
    [result] = run(c, dns_server, now=lambda: 1000.0)
    assert result["status"] == "ok" and not result["published"]
    stored = c.kv.get_item("dnscheck#example.test")
    assert stored["status"] == "ok" and stored["records"]["dkim mailgate._domainkey.example.test"] == "ok"
    assert c.events.published == []


def test_dkim_cname_removed_after_a_good_day_publishes_dns_check_changed(c, dns_server):
    serve(dns_server)
    run(c, dns_server)
    serve(dns_server, dkim="")  # the customer's DNS provider lost the CNAME overnight
    [result] = run(c, dns_server, now=lambda: 2000.0)
    assert result["published"]
    [(detail_type, detail)] = c.events.published
    assert detail_type == "DNS Check Changed"
    assert detail["domain"] == "example.test" and detail["status"] == "error" and detail["previous_status"] == "ok"
    dkim = [ch for ch in detail["changed"] if ch["record"] == "dkim"]
    assert dkim and dkim[0]["from"] == "ok" and dkim[0]["to"] == "error"
    assert dkim[0]["fix"] == "Publish CNAME mailgate._domainkey.example.test mailgate._domainkey.gateway.test."


def test_a_record_that_stays_wrong_is_not_announced_again(c, dns_server):
    serve(dns_server, dkim="")
    run(c, dns_server)
    run(c, dns_server)
    assert c.events.published == []


def test_a_record_that_recovers_is_stored_as_ok_without_event(c, dns_server):
    serve(dns_server, dkim="")
    run(c, dns_server)
    serve(dns_server, dkim=DKIM)
    [result] = run(c, dns_server)
    assert result["status"] == "ok" and c.events.published == []
    assert c.kv.get_item("dnscheck#example.test")["status"] == "ok"


def test_a_domain_whose_key_is_broken_does_not_stop_the_others(c, dns_server):
    serve(dns_server)
    c.config.put_domain(AliasDomain("broken.test"))
    c.secrets.put("mailgate/dkim/broken.test/mailgate", "-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n")
    results = {r["domain"]: r for r in run(c, dns_server, timeout=0.3)}
    assert results["broken.test"]["status"] == "error"
    assert "the DKIM key of broken.test (selector mailgate) does not load" in results["broken.test"]["error"]
    assert results["example.test"]["status"] == "ok"
