"""Parsing: decoded headers, references, bodies, reply text, attachments."""

from __future__ import annotations

import json

import pytest

from mailgate import loops
from mailgate.message import parse
from mailgate.replytext import extract_reply

from .inbound_support import DATA

REPLIES = json.loads((DATA / "replies.json").read_text())


def _norm(text: str) -> str:
    return "\n".join(line.rstrip() for line in text.replace("\r\n", "\n").strip().splitlines())


@pytest.mark.parametrize("sample", REPLIES, ids=[s["name"] for s in REPLIES])
def test_reply_text_drops_quoted_history_and_signature(sample):
    assert _norm(extract_reply(sample["body"])) == _norm(sample["expected"])


def test_our_trimmer_reads_a_reply_after_many_blank_lines_in_one_pass():
    # A quote-header pattern that let its leading white space run across blank lines took
    # quadratic time over them.
    assert extract_reply("\n" * 50_000 + "Thanks\n\nOn Mon, 1 Dec 2026, Ann wrote:\n> old\n") == "Thanks"


def test_encoded_headers_are_decoded():
    p = parse(b"From: =?iso-8859-1?q?Jos=E9?= <jose@x.test>\nSubject: =?utf-8?B?w6l0w6k=?= report\n"
              b"To: =?utf-8?q?Team?= <team@x.test>, other@x.test\n\nx\n")
    assert (p.sender_name, p.sender, p.subject) == ("Jos\u00e9", "jose@x.test", "\u00e9t\u00e9 report")
    assert p.to == ["team@x.test", "other@x.test"]


def test_references_end_with_in_reply_to_and_keep_the_newest_32():
    refs = " ".join(f"<r{i}@x>" for i in range(40))
    p = parse(f"References: {refs}\nIn-Reply-To: <r5@x>\n\nx\n".encode())
    assert len(p.references) == 32 and p.references[-1] == "r5@x" and p.references[-2] == "r39@x"


def test_recipients_come_from_the_headers_a_redirection_keeps_in_order():
    p = parse(b"Delivered-To: a@x.test\nX-Original-To: b@x.test\nTo: c@x.test\nCc: d@x.test\n"
              b"Resent-To: e@x.test\n\nx\n")
    assert p.header_recipients == ["a@x.test", "b@x.test", "c@x.test", "d@x.test", "e@x.test"]


def test_alternative_bodies_inline_image_and_attachment():
    raw = (b"Content-Type: multipart/mixed; boundary=M\n\n--M\nContent-Type: multipart/related; boundary=R\n\n"
           b"--R\nContent-Type: multipart/alternative; boundary=A\n\n--A\nContent-Type: text/plain\n\nplain\n"
           b"--A\nContent-Type: text/html\n\n<p>html <img src=cid:i1></p>\n--A--\n--R\nContent-Type: image/png\n"
           b"Content-ID: <i1>\nContent-Transfer-Encoding: base64\n\niVBORw0KGgo=\n--R--\n--M\n"
           b"Content-Type: text/csv; name=rates.csv\nContent-Disposition: attachment; filename=rates.csv\n\na,b\n--M--\n")
    p = parse(raw)
    assert p.text == "plain" and p.html.startswith("<p>html")
    img, csv = p.attachments
    assert (img.inline, img.content_id, img.content_type, img.size) == (True, "i1", "image/png", 8)
    assert (csv.filename, csv.inline, csv.data()) == ("rates.csv", False, b"a,b")


def test_loop_signals_name_their_rfc():
    p = parse(b"From: a@x.test\nAuto-Submitted: auto-generated\nPrecedence: list\n\nx\n")
    sig = loops.signals(p)
    # RFC 3834 §2: "do not answer" (list mail) and "this is automatic" are separate signals
    assert sig.auto_reply == ["Auto-Submitted: auto-generated (RFC 3834)"]
    assert sig.bulk == ["Precedence: list"]
    assert not sig.bounce and not sig.own and sig.automatic
