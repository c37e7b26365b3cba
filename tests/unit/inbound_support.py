"""Builders shared by the inbound tests: a configured in-memory stack and raw messages as bytes."""

from __future__ import annotations

import itertools
import os
import pathlib

from mailgate import tokens
from mailgate.domain import Alias, AliasDomain, Thread
from mailgate.services import inbound
from mailgate_dev import fakes

REPO = pathlib.Path(__file__).resolve().parents[2]
DATA = REPO / "tests" / "data" / "inbound"
#: Sisimai's bounce corpus (tests/data/bounces/README.md)
BOUNCES = REPO / "tests" / "data" / "bounces"
#: CPython's email test messages (tests/data/cpython-email/README.md)
CPYTHON_EMAIL_DATA = REPO / "tests" / "data" / "cpython-email"
_seq = itertools.count(1)


def stack(**domain_kw):
    """example.test with sales (everyone), vip (partners), board (followers of a forced thread),
    news (forced thread, everyone); and other.test with its own sales alias."""
    c = fakes.in_memory()
    c.config.put_domain(AliasDomain("example.test", bounce_text=domain_kw.pop("bounce_text", ""), **domain_kw))
    c.config.put_domain(AliasDomain("other.test"))
    c.threads.put_thread(Thread("boardthread", model="board.meeting", record_id="7", followers=["chair@club.test"]))
    c.threads.put_thread(Thread("newsthread", model="news.feed", record_id="1", followers=["editor@example.org"]))
    c.config.put_alias(Alias("example.test", "sales", "crm.lead", {"team_id": 3}))
    c.config.put_alias(Alias("example.test", "vip", "crm.lead", contact_policy="partners",
                             bounce_text="Only our customers can write to vip@."))
    c.config.put_alias(Alias("example.test", "board", "board.meeting", force_thread_id="boardthread",
                             contact_policy="followers"))
    c.config.put_alias(Alias("example.test", "news", "news.feed", force_thread_id="newsthread"))
    c.config.put_alias(Alias("other.test", "sales", "sale.order"))
    return c


def mail(*, frm="Ann Example <ann@customer.test>", to="sales@example.test", subject="Hello",
         body="Hello there.\n", message_id: str | None = "auto", headers: dict | None = None,
         extra: str = "") -> bytes:
    lines = []
    if frm is not None:
        lines.append(f"From: {frm}")
    if to is not None:
        lines.append(f"To: {to}")
    lines.append(f"Subject: {subject}")
    if message_id == "auto":
        message_id = f"m{next(_seq)}.{os.getpid()}@customer.test"
    if message_id:
        lines.append(f"Message-ID: <{message_id}>")
    for k, v in (headers or {}).items():
        lines.append(f"{k}: {v}")
    lines.append("MIME-Version: 1.0")
    if extra:
        lines.append(extra.rstrip("\n"))
    else:
        lines.append("Content-Type: text/plain; charset=utf-8")
    return ("\n".join(lines) + "\n\n" + body).encode("utf-8")


def deliver(c, raw: bytes, recipients=("sales@example.test",), verdicts=None, key=None):
    key = key or f"raw/ses/t{next(_seq)}"
    c.raw_store.put(key, raw)
    return inbound.ingest(c, key, source="ses", envelope_recipients=list(recipients), verdicts=verdicts)


def reply_address(c, thread_id: str, domain="example.test") -> str:
    return tokens.reply_address(c.token_key, "catchall", domain, thread_id)


def answers(c) -> list[dict]:
    return [m for m in c.outbound_queue.sent if not m.get("notification")]


def notifications(c) -> list[dict]:
    return [m for m in c.outbound_queue.sent if m.get("notification")]
