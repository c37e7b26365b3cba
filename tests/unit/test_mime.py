"""The MIME layer under message and bounces: charsets, parts, attached messages, report fields."""

from __future__ import annotations

import base64

from mailgate import mime
from mailgate.message import parse


def test_a_lying_or_unknown_charset_still_gives_text():
    assert mime.decode_bytes("café".encode("latin-1"), "utf-8") == "café"
    assert mime.decode_bytes("café".encode(), "x-no-such-charset") == "café"
    assert mime.decode_bytes("café".encode(), "unknown-8bit") == "café"


def test_undeclared_iso_2022_jp_text_is_decoded():
    jis = "宛先不明".encode("iso-2022-jp")
    raw = b"From: MAILER-DAEMON@x.jp\nSubject: x\nContent-Type: text/plain\n\n" + jis + b"\n"
    assert parse(raw).text.strip() == "宛先不明"


def test_leaf_parts_come_in_document_order_with_their_types_and_lazy_text():
    raw = (b"Content-Type: multipart/mixed; boundary=M\n\n--M\nContent-Type: multipart/alternative; boundary=A\n\n"
           b"--A\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: base64\n\n"
           + base64.encodebytes("été".encode()) +
           b"--A\nContent-Type: text/html\n\n<p>x</p>\n--A--\n--M\nContent-Type: message/rfc822\n\n"
           b"From: inner@x.test\nMessage-ID: <in@x.test>\n\ninner\n--M--\n")
    p = parse(raw)
    parts = p.parts()
    assert [(x.content_type, x.depth) for x in parts] == [("text/plain", 2), ("text/html", 2), ("message/rfc822", 1)]
    assert parts[0].text == "été" and parts[2].attached_fields().first("message-id") == "<in@x.test>"
    inner = p.attached(parts[2])
    assert (inner.sender, inner.message_id, inner.text) == ("inner@x.test", "in@x.test", "inner")
    assert p.attached(parts[0]) is None


def test_delivery_status_fields_are_read_even_when_the_part_was_base64_encoded():
    fields = b"Reporting-MTA: dns; mx.example\n\nFinal-Recipient: rfc822; gone@x.example\nAction: failed\nStatus: 5.1.1\n"
    raw = (b"Content-Type: multipart/report; report-type=delivery-status; boundary=b\n\n--b\n"
           b"Content-Type: message/delivery-status\nContent-Transfer-Encoding: base64\n\n"
           + base64.encodebytes(fields) + b"--b--\n")
    [part] = parse(raw).parts()
    blocks = [f for f in mime.field_lines(part.text)]
    assert ("final-recipient", "rfc822; gone@x.example") in blocks and ("", "") in blocks
    assert mime.parse_fields(part.text).first("status") == "5.1.1"


def test_quoted_headers_of_a_text_rfc822_headers_part():
    raw = (b"Content-Type: multipart/report; boundary=b\n\n--b\nContent-Type: text/rfc822-headers\n\n"
           b"From: me@example.test\nTo: you@x.example\n  (folded)\nX-Mailgate-Id: abc\n--b--\n")
    [part] = parse(raw).parts()
    fields = part.attached_fields()
    assert fields.first("x-mailgate-id") == "abc" and fields.get_all("to")[0].startswith("you@x.example")


def test_the_walk_stops_at_the_bound_and_says_so():
    raw = b"Content-Type: multipart/mixed; boundary=b\n\n" + b"".join(
        b"--b\nContent-Type: text/plain\n\n%d\n" % i for i in range(1500)) + b"--b--\n"
    p = parse(raw)
    assert len(p.parts()) == mime.MAX_PARTS - 1
    assert any("too many" in d for d in p.defects)
