"""Properties over corpora and generated input: no exception escapes, every message has an outcome."""

from __future__ import annotations

import json
import pathlib

from hypothesis import HealthCheck, given, settings, strategies as st

from mailgate import loops, message as message_mod
from mailgate.routing import KINDS

from .inbound_odd import odd_messages
from .inbound_support import BOUNCES, CPYTHON_EMAIL_DATA, DATA, answers, deliver, stack

OUTCOMES = set(KINDS) | {"failed"}


def corpus_files() -> list[pathlib.Path]:
    root = BOUNCES
    files = sorted((root / "messages").glob("*.eml")) + sorted((root / "not-bounces").glob("*"))
    assert len(files) > 500, f"the bounce corpus under {root} looks incomplete ({len(files)} files)"
    return files


def _route_all(raws: list[bytes]):
    c = stack()
    outcomes = []
    for i, raw in enumerate(raws):
        key = f"raw/ses/p{i}"
        rec = deliver(c, raw, recipients=["sales@example.test", "catchall@example.test"], key=key)
        assert rec.outcome in OUTCOMES, rec
        assert c.messages.get(rec.key) is not None
        assert c.raw_store.get(key) == raw
        outcomes.append(rec.outcome)
    senders = [a["to"][0] for a in answers(c)]
    assert len(senders) == len(set(senders)), "a sender got more than one automatic answer"
    return c, outcomes


def test_every_message_of_the_bounce_corpus_gets_an_outcome():
    _, outcomes = _route_all([f.read_bytes() for f in corpus_files()])
    assert len(outcomes) == len(corpus_files())


def test_bounce_corpus_is_almost_never_routed_as_a_person():
    """Sisimai's bounce/auto-reply corpus: DSNs and auto-replies must not open records or get answers."""
    files = [f for f in corpus_files() if f.parent.name == "messages"]
    automatic = sum(loops.signals(message_mod.parse(f.read_bytes())).automatic for f in files)
    assert automatic / len(files) >= 0.97, f"only {automatic}/{len(files)} recognised as bounces or auto-replies"


def test_rfc3834_auto_replies_in_the_corpus_are_auto_replies():
    root = BOUNCES
    expected = json.loads((root / "expected.json").read_text())
    vacation = [n for n, entries in expected.items() if any(e.get("reason") == "vacation" for e in entries)]
    assert vacation
    for name in vacation:
        sig = loops.signals(message_mod.parse((root / "messages" / name).read_bytes()))
        assert sig.automatic, name


def test_cpython_email_test_messages_and_our_odd_ones_get_an_outcome():
    cpython = sorted(CPYTHON_EMAIL_DATA.glob("msg_*.txt"))
    assert len(cpython) == 48, f"CPython's email test messages under {CPYTHON_EMAIL_DATA} look incomplete"
    raws = list(odd_messages().values()) + [p.read_bytes() for p in sorted(DATA.glob("*.eml"))]
    _route_all(raws + [p.read_bytes() for p in cpython])


HEADER_NAMES = ["From", "To", "Cc", "Subject", "Message-ID", "In-Reply-To", "References", "Content-Type",
                "Content-Transfer-Encoding", "Auto-Submitted", "Precedence", "Return-Path", "Delivered-To",
                "X-Original-To", "Content-Disposition", "X-Mailgate-Id"]
header_values = st.one_of(
    st.text(max_size=80),
    st.sampled_from(["sales@example.test", "catchall@example.test", "catchall+abc.def@example.test",
                     "bounce+x.y@example.test", "<a@b>", "<>", "multipart/mixed; boundary=Q",
                     "text/plain; charset=x-bogus", "base64", "quoted-printable", "auto-replied", "bulk",
                     "=?utf-8?B?w6k=?=", "=?bogus?Q?x?=", "=?utf-8?q?a=0D=0Ab?=", "\"Q\" <q@q>", ""]))


@st.composite
def messages(draw):
    headers = draw(st.lists(st.tuples(st.sampled_from(HEADER_NAMES), header_values), max_size=12))
    body = draw(st.one_of(st.binary(max_size=300), st.text(max_size=300).map(lambda t: t.encode("utf-8", "surrogatepass"))))
    sep = draw(st.sampled_from([b"\n", b"\r\n", b"\r"]))
    head = sep.join(f"{k}: {v}".encode("utf-8", "surrogatepass") for k, v in headers)
    return head + sep + sep + body


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(messages())
def test_generated_messages_never_escape_with_an_exception(raw):
    c = stack()
    rec = deliver(c, raw, recipients=["sales@example.test"])
    assert rec.outcome in OUTCOMES
    assert c.messages.get(rec.key).outcome == rec.outcome
    assert len(answers(c)) <= 1


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2000))
def test_arbitrary_bytes_parse_without_an_exception(raw):
    parsed = message_mod.parse(raw)
    assert parsed.raw_size == len(raw)
    assert "\n" not in parsed.subject and "\r" not in parsed.subject
    parsed.reply_text
    for att in parsed.attachments:
        att.data()
