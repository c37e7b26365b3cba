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


def test_addr_spec_skips_display_names_encoded_words_and_comments():
    # SES writes mail.source as the From header: an encoded display name before the angle-addr
    assert mime.addr_spec("=?utf-8?b?VW5mY2sgUmVsYXk=?= <relay@unfck.email>") == "relay@unfck.email"
    assert mime.addr_spec("relay@unfck.email (Relay <fake@evil.test>)") == "relay@unfck.email"
    assert mime.addr_spec('"Doe, John <x@evil.test>" <John@Example.COM>') == "john@example.com"
    assert mime.addr_spec("(nested (comment) <x@evil.test>) ann@example.test") == "ann@example.test"
    assert mime.addr_spec("<@relay1.test,@relay2.test:user@dest.test>") == "user@dest.test"  # RFC 5322 §4.4
    assert mime.addr_spec("rfc822; User@Example.TEST") == "user@example.test"
    assert mime.addr_spec("no address here") == mime.addr_spec("<unterminated") == ""
    # a quoted local part is an addr-spec of its own (RFC 5322 §3.4.1), dots and blanks and all
    assert mime.addr_spec('rfc822; "ann..smith"@Example.TEST') == '"ann..smith"@example.test'
    assert mime.addr_specs('"john doe"@example.test, "Doe, J." <j@example.test>') == [
        '"john doe"@example.test', "j@example.test"]


def test_addr_specs_reads_lists_and_groups_in_order():
    assert mime.addr_specs("Ann <a@x.test>, b@y.test (Bob), team: c@z.test, d@z.test;") == [
        "a@x.test", "b@y.test", "c@z.test", "d@z.test"]
    assert mime.addr_specs("Undisclosed recipients:;") == []
    assert mime.addr_specs(", ".join(f"u{i}@x.test" for i in range(50)), limit=3) == ["u0@x.test", "u1@x.test",
                                                                                       "u2@x.test"]


def test_addr_specs_reads_hostile_values_in_one_pass():
    # runs of openers that send a recursive parser (or a backtracking regex) into the ground
    for value in ("(" * 100_000 + "a@b.test", "<" * 100_000, '"' * 100_001 + "a@b.test", "\\" * 100_000):
        assert isinstance(mime.addr_specs(value), list)
    assert mime.addr_specs("(" * 5 + "x" + ")" * 5 + " a@b.test") == ["a@b.test"]
