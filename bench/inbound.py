"""Inbound routing benchmark: CPU per message beside a bare stdlib parse, store calls per message,
peak memory of a 30 MB message.

    PYTHONPATH=layers/core:dev:. python bench/inbound.py [--messages 1000]

Figures (process CPU time, one run, same messages for every column):
  baseline  email.message_from_bytes(raw, policy=email.policy.default) + get_body(plain/html).get_content()
  core      mailgate parse + classify + decide against in-memory repositories (+ reply text)
  ingest    the whole ingest() with in-memory fakes (commit, events, notifications, attachments)
"""

from __future__ import annotations

import argparse
import base64
import email
import email.policy
import gc
import pathlib
import random
import statistics
import sys
import time
import tracemalloc
from collections import Counter, defaultdict

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "layers" / "core"), str(ROOT / "dev"), str(ROOT)]

from mailgate import message as message_mod  # noqa: E402
from mailgate.domain import Thread  # noqa: E402
from mailgate_dev.fakes import MemoryInboundStore  # noqa: E402
from mailgate.services import inbound  # noqa: E402
from tests.unit.inbound_odd import odd_messages  # noqa: E402
from tests.unit.inbound_support import BOUNCES, CPYTHON_EMAIL_DATA, reply_address, stack  # noqa: E402

QUOTE = "".join(f"> line {i} of the earlier message, quoted by the mail client\n" for i in range(30))


def build_messages(n: int, c) -> list[tuple[str, bytes, list[str]]]:
    rnd = random.Random(7)
    for i in range(20):
        c.threads.put_thread(Thread(f"thread{i:02d}", model="crm.lead", record_id=str(i),
                                    followers=["rep@example.org", f"cust{i}@customer.test"]))
        c.threads.index_message_id(f"out{i}@example.test", f"thread{i:02d}")
    corpus = sorted((BOUNCES / "messages").glob("*.eml"))
    cpy = sorted(CPYTHON_EMAIL_DATA.glob("msg_*.txt"))
    odd = list(odd_messages().items())
    out = []
    for i in range(n):
        kind = rnd.choices(["alias", "token", "refs", "html", "auto", "catchall", "corpus", "cpython", "odd"],
                           [25, 20, 10, 10, 5, 5, 15, 7, 3])[0]
        t = rnd.randrange(20)
        sender = f"cust{rnd.randrange(500)}@customer.test"
        head = f"From: Customer {i} <{sender}>\nDate: Thu, 26 Nov 2026 10:00:00 +0000\nMessage-ID: <b{i}@customer.test>\n"
        if kind == "alias":
            raw = (head + f"To: sales@example.test\nSubject: Request {i}\n\n" + "We need a quote.\n" * rnd.randint(1, 40)).encode()
            rcpt = ["sales@example.test"]
        elif kind == "token":
            addr = reply_address(c, f"thread{t:02d}")
            raw = (head + f"To: {addr}\nSubject: Re: Request {t}\nIn-Reply-To: <out{t}@example.test>\n\n"
                   f"Thanks, that works.\n\nOn Tue, Sales wrote:\n{QUOTE}").encode()
            rcpt = [addr]
        elif kind == "refs":
            raw = (head + f"To: catchall@example.test\nSubject: Re: x\nReferences: <zz@else> <out{t}@example.test>\n\n"
                   f"Answer.\n\n-- \nSig\n{QUOTE}").encode()
            rcpt = ["catchall@example.test"]
        elif kind == "html":
            att = base64.encodebytes(rnd.randbytes(rnd.randint(1000, 60_000))).decode()
            raw = (head + "To: sales@example.test\nSubject: With file\nMIME-Version: 1.0\n"
                   "Content-Type: multipart/mixed; boundary=\"M\"\n\n--M\nContent-Type: multipart/alternative; boundary=\"A\"\n\n"
                   "--A\nContent-Type: text/plain; charset=utf-8\n\nSee the file.\n--A\nContent-Type: text/html; charset=utf-8\n\n"
                   "<p>See the <b>file</b>.</p>\n--A--\n--M\nContent-Type: application/pdf; name=\"f.pdf\"\n"
                   "Content-Disposition: attachment; filename=\"f.pdf\"\nContent-Transfer-Encoding: base64\n\n"
                   + att + "--M--\n").encode()
            rcpt = ["sales@example.test"]
        elif kind == "auto":
            raw = (head + "To: sales@example.test\nSubject: Out of office\nAuto-Submitted: auto-replied\n\nAway.\n").encode()
            rcpt = ["sales@example.test"]
        elif kind == "catchall":
            raw = (head + "To: nobody@example.test\nSubject: hello\n\nIs anyone there?\n").encode()
            rcpt = ["nobody@example.test"]
        elif kind == "corpus":
            raw, rcpt = rnd.choice(corpus).read_bytes(), ["sales@example.test"]
        elif kind == "cpython" and cpy:
            raw, rcpt = rnd.choice(cpy).read_bytes(), ["sales@example.test"]
        else:
            kind = "odd"
            raw, rcpt = rnd.choice(odd)[1], ["sales@example.test"]
        out.append((kind, raw, rcpt))
    return out


def baseline(raw: bytes) -> None:
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    try:
        for pref in (("plain",), ("html",)):
            body = msg.get_body(pref)
            if body is not None:
                body.get_content()
    except Exception:  # noqa: BLE001 - the baseline may fail on odd messages; it still cost the time
        pass


def core(c, raw: bytes, rcpt: list[str]) -> None:
    parsed = message_mod.parse(raw)
    inbound.route_message(c, parsed, rcpt)


def core_with_content(c, raw: bytes, rcpt: list[str]) -> None:
    """core + what the events carry: bodies, reply text, attachment list."""
    parsed = message_mod.parse(raw)
    route = inbound.route_message(c, parsed, rcpt)
    if route.kind in ("thread", "new-record"):
        parsed.reply_text
        parsed.attachments


def cpu(fn, items) -> list[float]:
    times = []
    for item in items:
        t = time.process_time()
        fn(*item)
        times.append(time.process_time() - t)
    return times


class Counting:
    """Wraps a port and counts its calls (one call = one AWS request for these ports). Calls made
    inside the store's load/commit are counted once, as that store call (`inside`)."""

    def __init__(self, inner, name, counts, inside, is_store=False):
        self._inner, self._name, self._counts, self._inside, self._is_store = inner, name, counts, inside, is_store

    def __getattr__(self, attr):
        value = getattr(self._inner, attr)
        if callable(value) and not attr.startswith("_"):
            def wrapper(*a, **kw):
                if self._is_store:
                    self._counts[f"{self._name}.{attr}"] += 1
                    self._inside.append(attr)
                    try:
                        return value(*a, **kw)
                    finally:
                        self._inside.pop()
                if self._inside:
                    self._counts[f"inside.{self._inside[-1]}.{self._name}.{attr}"] += 1
                else:
                    self._counts[f"{self._name}.{attr}"] += 1
                return value(*a, **kw)
            return wrapper
        return value


def count_calls(messages) -> dict:
    per_kind: dict[str, list[int]] = defaultdict(list)
    per_kind_ports: dict[str, list[int]] = defaultdict(list)
    notify: dict[str, list[int]] = defaultdict(list)
    detail: dict[str, Counter] = defaultdict(Counter)
    c = stack()
    for t in range(20):
        c.threads.put_thread(Thread(f"thread{t:02d}", model="crm.lead", record_id=str(t),
                                    followers=["rep@example.org", f"cust{t}@customer.test"]))
        c.threads.index_message_id(f"out{t}@example.test", f"thread{t:02d}")
    c.token_key  # read once per container (cold start), not per message
    counts: Counter = Counter()
    inside: list[str] = []
    for name in ("raw_store", "config", "threads", "messages", "counters", "kv", "events", "outbound_queue"):
        setattr(c, name, Counting(getattr(c, name), name, counts, inside))
    # the fake store over the counted ports, so that what it does inside load/commit shows too
    store = MemoryInboundStore(c.config, c.threads, c.messages, c.counters, c.kv,
                               gateway_domain=c.settings.gateway_domain)
    store.domains()  # cached per warm container
    c.inbound = Counting(store, "store", counts, inside, is_store=True)
    for i, (kind, raw, rcpt) in enumerate(messages):
        c.raw_store._inner.put(f"raw/ses/c{i}", raw)
    for i, (kind, raw, rcpt) in enumerate(messages):
        counts.clear()
        rec = inbound.ingest(c, f"raw/ses/c{i}", source="ses", envelope_recipients=rcpt)
        # store.domains() is a per-container cache (60 s); its misses show as inside.domains.*
        outside = {k: v for k, v in counts.items() if not k.startswith("inside.") and k != "store.domains"}
        # load is one BatchGetItem, plus one for the threads an index hit or a forced thread names
        second = 1 if _needs_second_read(rec) else 0
        sends = outside.get("outbound_queue.send", 0)
        per_kind[rec.outcome].append(sum(outside.values()) - sends + second)
        per_kind_ports[rec.outcome].append(sum(v for k, v in counts.items()
                                               if not k.startswith("store.") and ".domains." not in k))
        notify[rec.outcome].append(sends)
        detail[rec.outcome].update(outside)
    return {"batched": per_kind, "ports": per_kind_ports, "notify": notify, "detail": detail}


def _needs_second_read(rec) -> bool:
    reason = rec.reason
    return rec.outcome == "thread" and ("answers message" in reason or "posts into its thread" in reason)


def big_message(size_mb: int = 30) -> bytes:
    per = size_mb * 1024 * 1024 // 3
    chunk = base64.encodebytes(random.Random(1).randbytes(per * 3 // 4))
    parts = b"".join(b"--Z\nContent-Type: application/octet-stream\nContent-Disposition: attachment; "
                     b"filename=\"f%d.bin\"\nContent-Transfer-Encoding: base64\n\n" % i + chunk for i in range(3))
    return (b"From: a@customer.test\nTo: sales@example.test\nSubject: big\nMessage-ID: <big@c.test>\n"
            b"Content-Type: multipart/mixed; boundary=\"Z\"\n\n--Z\nContent-Type: text/plain\n\nthree files\n"
            + parts + b"--Z--\n")


class DiscardingStore:
    """Like S3: put() sends the bytes away (the in-memory fake would keep a copy of each)."""

    def __init__(self, raw_key, raw):
        self.raw_key, self.raw, self.puts = raw_key, raw, 0

    def put(self, key, data, *, content_type="message/rfc822"):
        self.puts += 1

    def get(self, key):
        return self.raw

    def exists(self, key):
        return True


def peak_memory(raw: bytes, *, discard: bool) -> int:
    c = stack()
    if discard:
        c.raw_store = DiscardingStore("raw/ses/big", raw)
    else:
        c.raw_store.put("raw/ses/big", raw)
    gc.collect()
    tracemalloc.start()
    tracemalloc.reset_peak()
    rec = inbound.ingest(c, "raw/ses/big", source="ses", envelope_recipients=["sales@example.test"])
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert rec.outcome == "new-record", rec
    return peak


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--messages", type=int, default=1000)
    args = ap.parse_args()
    c = stack()
    msgs = build_messages(args.messages, c)
    c.inbound.domains()
    c.token_key
    kinds = Counter(k for k, _, _ in msgs)
    total_bytes = sum(len(r) for _, r, _ in msgs)
    print(f"{len(msgs)} messages, {total_bytes / 1e6:.1f} MB: " + ", ".join(f"{k} {v}" for k, v in sorted(kinds.items())))

    for _ in range(2):  # warm up (regex compilation, imports)
        for _, raw, rcpt in msgs[:50]:
            baseline(raw)
            core(c, raw, rcpt)
    base = cpu(baseline, [(raw,) for _, raw, _ in msgs])
    mine = cpu(lambda raw, rcpt: core(c, raw, rcpt), [(raw, rcpt) for _, raw, rcpt in msgs])
    cwc = cpu(lambda raw, rcpt: core_with_content(c, raw, rcpt), [(raw, rcpt) for _, raw, rcpt in msgs])
    ing_c = stack()
    for t in range(20):
        ing_c.threads.put_thread(Thread(f"thread{t:02d}", model="crm.lead", followers=["rep@example.org"]))
        ing_c.threads.index_message_id(f"out{t}@example.test", f"thread{t:02d}")
    for i, (_, raw, _) in enumerate(msgs):
        ing_c.raw_store.put(f"raw/ses/i{i}", raw)
    ing = cpu(lambda i, rcpt: inbound.ingest(ing_c, f"raw/ses/i{i}", source="ses", envelope_recipients=rcpt),
              [(i, rcpt) for i, (_, _, rcpt) in enumerate(msgs)])

    def row(name, t):
        return (f"{name:<44} {1e6 * statistics.mean(t):>9.1f} {1e6 * statistics.median(t):>9.1f} "
                f"{1e6 * sorted(t)[int(len(t) * .99) - 1]:>9.1f} {statistics.mean(t) / statistics.mean(base):>7.2f}x")

    print()
    print(f"{'CPU per message (process time, microseconds)':<44} {'mean':>9} {'median':>9} {'p99':>9} {'ratio':>8}")
    print(row("baseline: stdlib parse (policy.default)+body", base))
    print(row("core: parse+classify+decide (in-memory)", mine))
    print(row("ingest: whole service with in-memory fakes", ing))
    by_kind = defaultdict(list)
    for (k, _, _), tb, tm in zip(msgs, base, mine):
        by_kind[k].append((tb, tm))
    print(row("core + content (bodies, reply text, files)", cwc))
    print("\ncore/baseline by message kind: " + ", ".join(
        f"{k} {sum(m for _, m in v) / sum(b for b, _ in v):.2f}x" for k, v in sorted(by_kind.items())))

    calls = count_calls(msgs)
    print("\nAWS calls per message by outcome. 'store' = raw get + store.load (one BatchGetItem; a second")
    print("one when References or a forced thread name a thread) + store.commit (one TransactWriteItems)")
    print("+ event + other calls; 'ports today' = every port call made over today's one-item ports;")
    print("'SQS sends' = follower notifications and polite answers (one SendMessageBatch per 10).")
    print(f"{'outcome':<20} {'n':>5} {'store mean':>11} {'store max':>10} {'ports today':>12} {'SQS sends':>10}")
    for outcome in sorted(calls["batched"]):
        b, p, q = calls["batched"][outcome], calls["ports"][outcome], calls["notify"][outcome]
        print(f"{outcome:<20} {len(b):>5} {statistics.mean(b):>11.2f} {max(b):>10} {statistics.mean(p):>12.2f} "
              f"{statistics.mean(q):>10.2f}")
    for outcome in sorted(calls["detail"]):
        n = len(calls["batched"][outcome])
        print(f"  {outcome}: " + ", ".join(f"{k} {v / n:.2f}" for k, v in sorted(calls["detail"][outcome].items())))

    raw = big_message(30)
    print(f"\nPeak memory routing a {len(raw) / 1e6:.1f} MB message with 3 attachments (tracemalloc, raw already loaded)")
    for discard in (True, False):
        peak = peak_memory(raw, discard=discard)
        what = "S3-like store (attachments sent away)" if discard else "in-memory fake (keeps attachment copies)"
        print(f"  {what:<44} {peak / 1e6:>8.1f} MB  {peak / len(raw):.2f}x the message size")


if __name__ == "__main__":
    main()
