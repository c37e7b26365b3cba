"""Delivery to the application on the local stack: messages per second and latency from SMTP to the
Odoo stand-in (XML-RPC and JSON-2) and to a webhook receiver verifying signatures, and the HTTP
calls each message costs per target.

Each message is sent by SMTP to the SES-like listener (which stores it and runs the inbound handler
before it answers, as `bench/local_stack.py` does), routed, queued for its target, picked up by the
delivery queue's poller (as Lambda's SQS event source would) and handed over. Latency runs from
just before the SMTP transaction to the target's receipt. The baseline, measured in the same run,
is the same messages to an alias domain without a target: SMTP to the routed record and its event,
the path every delivery starts with.

    python bench/delivery.py [N]        (default 40 messages per target)
"""

from __future__ import annotations

import email.parser
import json
import os
import smtplib
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

# the handlers run in this process: their logs and metrics would bury the figures
os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "dev"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "layers" / "core"))


def _message(i: int, domain: str, tag: str) -> tuple[str, bytes]:
    mid = f"{tag}-{i}@client.test"
    raw = (f"From: Client {i} <client{i}@client.test>\r\nTo: sales@{domain}\r\nSubject: Quote {i}\r\n"
           f"Message-ID: <{mid}>\r\n\r\n" + "We need forty chairs for the new office.\r\n" * 80).encode()
    return mid, raw


def _send_all(stack, n: int, domain: str, tag: str) -> dict[str, float]:
    sent = {}
    with smtplib.SMTP("127.0.0.1", stack.ports.smtp) as smtp:
        for i in range(n):
            mid, raw = _message(i, domain, tag)
            sent[mid] = time.perf_counter()
            smtp.sendmail(f"client{i}@client.test", [f"sales@{domain}"], raw)
    return sent


def _wait(arrivals: dict[str, float], n: int, timeout: float = 300.0) -> None:
    deadline = time.monotonic() + timeout
    while len(arrivals) < n and time.monotonic() < deadline:
        time.sleep(0.05)
    if len(arrivals) < n:
        raise SystemExit(f"only {len(arrivals)} of {n} messages arrived within {timeout:.0f} s")


def _figures(name: str, sent: dict[str, float], arrived: dict[str, float], calls: int) -> dict:
    latencies = sorted(arrived[m] - sent[m] for m in sent)
    span = max(arrived.values()) - min(sent.values())
    return {"target": name, "msg/s": len(sent) / span, "p50 ms": statistics.median(latencies) * 1000,
            "p99 ms": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000,
            "calls/msg": calls / len(sent)}


class _Clock(dict):
    """Message-ID -> the moment the target received it (first receipt only)."""

    def __init__(self) -> None:
        super().__init__()
        self.lock = threading.Lock()

    def mark(self, mid: str) -> None:
        with self.lock:
            self.setdefault(mid, time.perf_counter())


def main() -> int:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 40
    from mailgate.domain import Alias, AliasDomain, DeliveryTarget
    from mailgate_dev.local.stack import LocalStack, Ports, free_port
    from mailgate_dev.odoo_standin import OdooStandIn
    from mailgate_dev.webhook_receiver import WebhookReceiver

    state = Path(tempfile.mkdtemp(prefix="mailgate-bench-"))
    stack = LocalStack(state_dir=state, ports=Ports(aws=free_port(), smtp=free_port(), sink=free_port()),
                       fetch_every=3600, asynchronous=False, delivery_first_retry=1)
    odoo, receiver = OdooStandIn().start(), WebhookReceiver(secrets=["whsec_" + "QkVOQ0gtU0VDUkVULTEyMzQ1Njc4"]).start()
    clocks = {name: _Clock() for name in ("odoo-xmlrpc", "odoo-json2", "webhook")}
    _instrument(odoo, receiver, clocks)
    stack.start()
    try:
        c = stack.container()
        for name, api in (("odoo-xmlrpc", "xmlrpc"), ("odoo-json2", "json2")):
            c.secrets.put(f"bench/{name}", odoo.api_key)
            c.config.put_target(DeliveryTarget(name, "odoo", odoo.url, secret_id=f"bench/{name}", database=odoo.database,
                                               user=odoo.login, api=api))
        c.secrets.put("bench/webhook", '{"secrets": [{"secret": "%s", "until": null}]}' % receiver.secrets[0])
        c.config.put_target(DeliveryTarget("webhook", "webhook", receiver.url, secret_id="bench/webhook"))
        domains = {"odoo-xmlrpc": "xmlrpc.test", "odoo-json2": "json2.test", "webhook": "hooks.test"}
        for name, domain in domains.items():
            c.config.put_domain(AliasDomain(domain, deliver_to=name))
            c.config.put_alias(Alias(domain, "sales", "crm.lead"))
        from mailgate import bootstrap

        bootstrap.set_container(None)  # the handlers see the new domains (a fresh cold start)
        _send_all(stack, 2, "example.test", "warm")  # cold start of the inbound handler
        t = time.perf_counter()
        _send_all(stack, n, "example.test", "base")
        base = n / (time.perf_counter() - t)
        rows = []
        for name, domain in domains.items():
            before = len(odoo.calls) if name.startswith("odoo") else receiver.requests
            sent = _send_all(stack, n, domain, name)
            _wait(clocks[name], n)
            time.sleep(1.0)  # let any repeat show up in the call count
            calls = (len(odoo.calls) if name.startswith("odoo") else receiver.requests) - before
            rows.append(_figures(name, sent, {m: clocks[name][m] for m in sent}, calls))
        print(f"delivery on the local stack, {n} messages per target (~3.5 KB each)")
        print(f"baseline: SMTP -> routed + event, no target: {base:.1f} msg/s")
        print(f"{'target':<12} {'msg/s':>7} {'ratio':>6} {'p50 ms':>8} {'p99 ms':>8} {'HTTP calls/msg':>15}")
        for r in rows:
            print(f"{r['target']:<12} {r['msg/s']:7.1f} {r['msg/s'] / base:5.2f}x {r['p50 ms']:8.0f} {r['p99 ms']:8.0f} "
                  f"{r['calls/msg']:15.2f}")
        print("(calls/msg over XML-RPC include the one authenticate of a cold process; "
              f"doubled deliveries: Odoo {sum(1 for x in odoo.received if x.result is False)}, "
              f"webhook {receiver.duplicates})")
    finally:
        stack.stop()
        odoo.stop()
        receiver.stop()
    return 0


def _instrument(odoo, receiver, clocks) -> None:
    """Note when each message reaches its target (first receipt)."""
    parser = email.parser.BytesHeaderParser()
    process = odoo._process

    def timed_process(api, database, message):
        result = process(api, database, message)
        raw = bytes(message.data) if hasattr(message, "data") else message.encode() if isinstance(message, str) else message
        mid = (parser.parsebytes(raw).get("Message-ID") or "").strip("<> ")
        clocks["odoo-xmlrpc" if api == "xmlrpc" else "odoo-json2"].mark(mid)
        return result

    odoo._process = timed_process
    take = receiver.take

    def timed_take(body, headers):
        status = take(body, headers)
        if status == 204:
            clocks["webhook"].mark(json.loads(body)["data"]["message"]["message_id"])
        return status

    receiver.take = timed_take


if __name__ == "__main__":
    sys.exit(main())
