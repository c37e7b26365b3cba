"""Outbound throughput: compose + DKIM + send over one connection, against two baselines.

Runs the local SMTP sink (aiosmtpd, STARTTLS + AUTH) in a separate process so the server does not
share this process's interpreter, then sends N messages of ~5 KB each way:

  prebuilt   the same messages built beforehand, unsigned, smtplib over one connection (baseline)
  mailgate   compose + DKIM rsa-sha256 (2048) + SmtpSender over one connection, VERP per message;
             the next message is prepared while the server works on the current one (`idle`
             hook), and once more without that overlap
  service    services.outbound.send per request (ledger, thread, suppression; in-memory ports)
  odoo-loop  Odoo-style: a new connection (STARTTLS + AUTH) per message, no signing

and times DKIM signing alone: mailgate's FastDKIM, stock dkimpy, and a bare OpenSSL RSA-2048
signature. Usage: python bench/outbound.py [--messages 1000]
"""

from __future__ import annotations

import argparse
import os
import pathlib
import smtplib
import ssl
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "layers" / "core"), str(ROOT / "dev"), str(ROOT)]

import dkim as dkimpy  # noqa: E402
from cryptography.hazmat.primitives import hashes  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import padding  # noqa: E402

from mailgate import tokens  # noqa: E402
from mailgate import compose as C  # noqa: E402
from mailgate import dkim as D  # noqa: E402
from mailgate.adapters.senders import Transports  # noqa: E402
from mailgate.adapters.smtp import Ahead, Envelope, SmtpSender  # noqa: E402
from mailgate.domain import AliasDomain, OutgoingServer, new_id  # noqa: E402
from mailgate.services import outbound  # noqa: E402
from mailgate_dev import fakes  # noqa: E402
from tests.fixtures._ports import free_port, wait_listening  # noqa: E402

USER, PASSWORD = "mailgate", "s3cret"
PARAGRAPH = ("Thank you for your order. Your items will be shipped within two business days; "
             "you will receive a tracking number as soon as the parcel leaves our warehouse.\n")


def request(i: int) -> dict:
    text = f"Hello customer {i},\n\n" + PARAGRAPH * 12
    html = "<html><body>" + "".join(f"<p>{PARAGRAPH.strip()}</p>" for _ in range(12)) + "</body></html>"
    return {"idempotency_key": f"bench-{os.getpid()}-{time.time_ns()}-{i}", "from": "Shop <shop@example.test>",
            "to": [f"customer{i}@example.org"], "subject": f"Your order S{i:05d}", "text": text, "html": html}


def start_sink(tmp: pathlib.Path):
    port = free_port()
    env = dict(os.environ, PYTHONPATH=f"{ROOT / 'layers' / 'core'}:{ROOT / 'dev'}:{ROOT}")
    proc = subprocess.Popen([sys.executable, "-m", "mailgate_dev.local.smtp_sink", "--port", str(port),
                             "--dir", str(tmp / "tls"), "--user", USER, "--password", PASSWORD],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_listening(port, timeout=30)
    return proc, port, ssl.create_default_context(cafile=str(tmp / "tls" / "ca.pem"))


def run_prebuilt(port, ctx, messages):
    t = time.perf_counter()
    s = smtplib.SMTP("127.0.0.1", port, timeout=30)
    s.starttls(context=ctx)
    s.login(USER, PASSWORD)
    for rcpt, raw in messages:
        s.sendmail("bounce@example.test", [rcpt], raw)
    s.quit()
    return time.perf_counter() - t


def run_odoo_loop(port, ctx, messages):
    t = time.perf_counter()
    for rcpt, raw in messages:
        s = smtplib.SMTP("127.0.0.1", port, timeout=30)
        s.starttls(context=ctx)
        s.login(USER, PASSWORD)
        s.sendmail("bounce@example.test", [rcpt], raw)
        s.quit()
    return time.perf_counter() - t


def prepare(data: dict, keys, token_key):
    """Compose and sign one request, yielding between parts (run while the server works)."""
    req = C.parse_request(data)
    ref = new_id()  # as outbound.claim_ref draws it for a new request
    m = C.compose(req, author=req.author, message_id=f"<{ref}@example.test>", ref=ref)
    verp = tokens.verp_address(token_key, "bounce", "example.test", ref, 0)
    yield
    raw = yield from D.sign_message_steps(m.raw, keys)
    return Envelope(verp, req.recipients[0]), raw


def run_mailgate(port, ctx, reqs, key, token_key, *, overlap=True):
    server = OutgoingServer(name="sink", host="127.0.0.1", port=port, user=USER, security="starttls")
    keys = [D.SigningKey("example.test", "mg", key)]
    t = time.perf_counter()
    with SmtpSender(server, PASSWORD, ssl_context=ctx) as sender:
        current = Ahead(prepare(reqs[0], keys, token_key)).result()
        for i in range(len(reqs)):
            # the next message is composed and signed while the server handles this one
            nxt = Ahead(prepare(reqs[i + 1], keys, token_key)) if i + 1 < len(reqs) else None
            env, raw = current
            (res,) = sender.send([env], raw, idle=nxt.step if (nxt and overlap) else None)
            assert res.status == "sent", res
            current = nxt.result() if nxt else None
    return time.perf_counter() - t


def run_service(port, ctx, reqs, key):
    c = fakes.in_memory(transports=Transports(ssl_context=ctx))
    c.config.put_domain(AliasDomain("example.test", dkim_selector="mg"))
    c.config.put_outgoing(OutgoingServer(name="sink", host="127.0.0.1", port=port, user=USER,
                                         from_filter="example.test", secret_id="pw"))
    c.secrets.put("pw", PASSWORD)
    c.secrets.put("mailgate/dkim/example.test/mg", D.private_pem(key))
    senders = outbound.Senders(c)
    t = time.perf_counter()
    for data in reqs:
        out = outbound.send(c, data, senders=senders)
        assert out["status"] == "sent", out
    senders.close()
    return time.perf_counter() - t


def time_signing(raws, key, n_stock):
    keys = [D.SigningKey("example.test", "mg", key)]
    t = time.perf_counter()
    for raw in raws:
        D.sign_message(raw, keys)
    fast = (time.perf_counter() - t) / len(raws)
    pem = D.private_pem(key).encode()
    include = [h.encode() for h in ("from", "to", "subject", "date", "message-id", "mime-version", "content-type")]
    t = time.perf_counter()
    for raw in raws[:n_stock]:
        dkimpy.sign(raw, b"mg", b"example.test", pem, include_headers=include, canonicalize=(b"relaxed", b"relaxed"))
    stock = (time.perf_counter() - t) / n_stock
    t = time.perf_counter()
    for raw in raws:
        key.sign(raw[:512], padding.PKCS1v15(), hashes.SHA256())
    openssl = (time.perf_counter() - t) / len(raws)
    return fast, stock, openssl


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--messages", type=int, default=1000)
    p.add_argument("--rounds", type=int, default=5, help="interleaved rounds (each sends messages/rounds per run)")
    p.add_argument("--stock-samples", type=int, default=100, help="messages signed with stock dkimpy (slow)")
    a = p.parse_args(argv)
    n = a.messages
    key = D.generate_key("rsa", 2048)
    token_key = b"bench-token-key"
    reqs = [request(i) for i in range(n)]
    prebuilt = []
    for data in reqs:
        req = C.parse_request(data)
        m = C.compose(req, author=req.author, message_id=f"<{new_id()}@example.test>",
                      ref="x")
        prebuilt.append((req.recipients[0], m.raw))
    size = sum(len(r) for _, r in prebuilt) / n
    # the runs are interleaved in rounds so that a change in the machine's load hits all alike
    rounds = max(1, a.rounds)
    chunk = max(1, n // rounds)
    totals = {"pre": 0.0, "mg": 0.0, "serial": 0.0, "svc": 0.0, "odoo": 0.0}
    per_round = []
    with tempfile.TemporaryDirectory() as tmp:
        proc, port, ctx = start_sink(pathlib.Path(tmp))
        try:
            run_prebuilt(port, ctx, prebuilt[:50])  # warm-up (TLS, imports, server)
            for r in range(rounds):
                part = slice(r * chunk, (r + 1) * chunk)
                t = {"pre": run_prebuilt(port, ctx, prebuilt[part]),
                     "mg": run_mailgate(port, ctx, reqs[part], key, token_key),
                     "serial": run_mailgate(port, ctx, [dict(q, idempotency_key=q["idempotency_key"] + "-s")
                                                       for q in reqs[part]], key, token_key, overlap=False),
                     "svc": run_service(port, ctx, [dict(q, idempotency_key=q["idempotency_key"] + "-svc")
                                                    for q in reqs[part]], key),
                     "odoo": run_odoo_loop(port, ctx, prebuilt[part])}
                for k, v in t.items():
                    totals[k] += v
                per_round.append(t)
        finally:
            proc.terminate()
            proc.wait(timeout=10)
    n = chunk * rounds
    t_pre, t_mg, t_serial, t_svc, t_odoo = (totals[k] for k in ("pre", "mg", "serial", "svc", "odoo"))
    fast, stock, openssl = time_signing([r for _, r in prebuilt], key, min(a.stock_samples, n))
    rate = lambda t: n / t  # noqa: E731
    rows = [
        ("prebuilt, unsigned, 1 connection (baseline)", rate(t_pre), 1.0),
        ("mailgate compose+DKIM+send, 1 connection", rate(t_mg), t_pre / t_mg),
        ("  same, preparing only between messages", rate(t_serial), t_pre / t_serial),
        ("mailgate services.outbound.send, 1 connection", rate(t_svc), t_pre / t_svc),
        ("Odoo-style: connection per message, unsigned", rate(t_odoo), t_pre / t_odoo),
    ]
    print(f"{n} messages of {size / 1024:.1f} KB avg per run to the local SMTP sink (STARTTLS + AUTH, separate "
          f"process), {rounds} interleaved rounds; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs\n")
    print(f"{'run':<48} {'msg/s':>8} {'vs baseline':>12}")
    for name, r, ratio in rows:
        print(f"{name:<48} {r:8.0f} {ratio:11.2f}x")
    import statistics

    med = lambda f: statistics.median(f(t) for t in per_round)  # noqa: E731
    print(f"\nmailgate vs prebuilt:   {t_pre / t_mg:.2f}x   (goal >= 0.7x; per-round median "
          f"{med(lambda t: t['pre'] / t['mg']):.2f}x)")
    print(f"mailgate vs Odoo loop:  {t_odoo / t_mg:.2f}x   (goal >= 2x; per-round median "
          f"{med(lambda t: t['odoo'] / t['mg']):.2f}x)")
    print(f"\n{'DKIM rsa-sha256 2048, per message':<48} {'ms':>8} {'vs OpenSSL':>12}")
    for name, v in (("bare OpenSSL RSA-2048 signature (baseline)", openssl), ("mailgate FastDKIM (dkimpy logic)", fast),
                    (f"stock dkimpy.sign ({min(a.stock_samples, n)} samples)", stock)):
        print(f"{name:<48} {v * 1000:8.3f} {v / openssl:11.2f}x")
    print(f"\nFastDKIM vs OpenSSL: {fast / openssl:.2f}x (goal within 3x); stock dkimpy / FastDKIM: {stock / fast:.1f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
