"""The parser on hostile and heavy mail: what a user sees is still read, and every bound that cuts
is named in the message's defects. No timing here: bench/hostile.py measures time and memory."""

from __future__ import annotations

import base64
import random

from mailgate import headers, mime
from mailgate.message import MAX_ADDRESS_TEXT, parse

from ..hostile import BY_NAME, CASES, expected

CASE = {c.name: c for c in CASES}


def _mail(head: str, body: bytes = b"Hello.\n") -> bytes:
    return (f"From: Ann <ann@customer.test>\nSubject: s\nMessage-ID: <m@customer.test>\n{head}\n\n").encode() + body


def test_ten_photos_from_a_phone_are_read_whole_with_their_names_and_sizes():
    """1.45 MB of mail with ten 107 KB photos: every photo is an attachment of the right size
    whose bytes are the photo's (the base64 runs were once cut out and pasted back)."""
    p = parse(CASE["photos-10x107k"].build())
    assert p.text == "Photos from the site visit."
    assert [(a.filename, a.content_type, a.size) for a in p.attachments] == [
        (f"IMG_{i:04d}.jpg", "image/jpeg", 107_000) for i in range(10)]
    assert [a.data() for a in p.attachments] == [random.Random(i).randbytes(107_000) for i in range(10)]
    assert p.defects == []


def test_a_thousand_nested_multiparts_are_read_to_the_depth_bound_and_the_defect_says_so():
    family = BY_NAME["nested-multipart"]
    p = parse(family.message(1000))
    assert {k: getattr(p, k) for k in expected(family, 1000)} == expected(family, 1000)
    assert p.parts() == [] and p.text == ""
    assert any(f"nested more than {mime.MAX_DEPTH} deep" in d for d in p.defects), p.defects


def test_an_attached_message_nested_a_thousand_deep_is_entered_to_the_depth_bound():
    p = parse(BY_NAME["nested-rfc822"].message(1000))
    depth, inner = 0, p
    while True:
        [part] = inner.parts()
        nxt = inner.attached(part)
        if nxt is None:
            break
        depth, inner = depth + 1, nxt
    assert depth == mime.MAX_DEPTH and inner.sender == "x@inner.test"
    assert any("nested more than" in d for d in inner.defects)


def test_an_encoded_angle_addr_in_a_display_name_never_becomes_an_address():
    """RFC 2047 §5: an encoded word in a phrase is decoded after the address is read; the
    standard library's parser took the encoded word itself for a second address."""
    p = parse(_mail("To: =?utf-8?q?=3Cboss@evil.test=3E?= <sales@example.test>, "
                    "=?utf-8?q?x@evil.test?= <info@example.test>").replace(
        b"From: Ann <ann@customer.test>", b"From: =?utf-8?q?=3Cceo@evil.test=3E?= <eve@customer.test>"))
    assert p.to == ["sales@example.test", "info@example.test"]
    assert (p.sender, p.sender_name) == ("eve@customer.test", "<ceo@evil.test>")


def test_a_header_bomb_is_read_up_to_the_field_bound_and_the_body_is_still_found():
    fields = "".join(f"X-F{i}: {i}\n" for i in range(headers.MAX_FIELDS + 5000))
    p = parse(_mail(fields.rstrip("\n")))
    assert (p.sender, p.message_id, p.text) == ("ann@customer.test", "m@customer.test", "Hello.\n")
    assert len(p.headers) == headers.MAX_FIELDS
    assert any(f"more than {headers.MAX_FIELDS} header fields" in d for d in p.defects), p.defects


def test_address_headers_are_read_up_to_their_budget_and_never_end_in_half_an_address():
    addresses = [f"user{i}@client{i % 97}.test" for i in range(MAX_ADDRESS_TEXT // 10)]
    p = parse(_mail("To: " + ", ".join(addresses)))
    assert 0 < len(p.to) < len(addresses) and p.to == addresses[:len(p.to)]
    assert any("address headers read up to" in d and "to was cut" in d for d in p.defects), p.defects


def test_parentheses_in_to_are_one_unclosed_comment_and_the_other_headers_are_read():
    p = parse(_mail("To: " + "(" * 200_000 + "\nCc: sales@example.test"))
    assert (p.to, p.cc, p.sender) == ([], ["sales@example.test"], "ann@customer.test")


def test_a_content_type_folded_without_its_semicolon_is_still_text():
    """Seen from an X1 mail system: "Content-Type: text/plain" then "charset=..." on a continuation
    line; the notification text was lost because the type read as "text/plain\\n charset=..."."""
    raw = _mail('Content-Type: multipart/mixed; boundary="b"',
                b'--b\nContent-Type: text/plain\n   charset="iso-2022-jp"\n\nUser unknown\n--b--\n')
    assert parse(raw).text == "User unknown"


def test_ten_thousand_rfc2231_sections_give_a_bounded_name_and_a_defect():
    p = parse(BY_NAME["rfc2231-continuations"].message(10_000))
    [att] = p.attachments
    assert att.filename.startswith("part0\u00e9part1\u00e9") and len(att.filename) == 255
    assert att.data() == b"%PDF-1.4 tiny"
    assert any("MIME parameters read up to" in d for d in p.defects), p.defects


def test_many_encoded_words_are_decoded_and_the_subject_is_cut_at_its_bound():
    p = parse(_mail("X: y").replace(b"Subject: s", b"Subject: " + b" ".join([b"=?utf-8?B?w6lsw6h2ZQ==?="] * 20_000)))
    assert p.subject == ("\u00e9l\u00e8ve" * 20_000)[:headers.MAX_HEADER_CHARS]


def test_a_line_that_only_starts_like_a_delimiter_is_part_of_the_body():
    raw = _mail('Content-Type: multipart/mixed; boundary="b1"',
                b"--b1\nContent-Type: text/plain\n\nsee\n--b10\nstill text\n--b1 \n"
                b"Content-Type: application/octet-stream\nContent-Transfer-Encoding: base64\n\n"
                + base64.encodebytes(b"\x00\x01data").replace(b"\n", b"\r\n") + b"--b1--\n")
    p = parse(raw)
    assert p.text == "see\n--b10\nstill text"
    [att] = p.attachments
    assert (att.data(), att.size) == (b"\x00\x01data", 6)


def test_base64_without_padding_or_with_stray_characters_is_decoded():
    for encoded, want in ((b"SGVsbG8", b"Hello"), (b"SGVs bG8=\r\n", b"Hello"), (b"SGVs*bG8=", b"Hello"),
                          (b"SGVsbG8gd29ybGQxS", b"Hello world1")):
        raw = _mail('Content-Type: multipart/mixed; boundary="b"',
                    b"--b\nContent-Type: application/octet-stream\nContent-Transfer-Encoding: base64\n\n"
                    + encoded + b"\n--b--\n")
        assert parse(raw).attachments[0].data() == want, encoded


def test_the_stdlib_message_object_is_built_from_our_scan_for_the_libraries_that_read_one():
    raw = _mail('Content-Type: multipart/report; report-type=delivery-status; boundary="r"',
                b"--r\nContent-Type: text/plain\n\nFailed.\n--r\nContent-Type: message/delivery-status\n\n"
                b"Reporting-MTA: dns; mx.test\n\nFinal-Recipient: rfc822; gone@x.test\nAction: failed\n"
                b"Status: 5.1.1\n--r\nContent-Type: message/rfc822\n\nFrom: a@b.test\nSubject: orig\n\nhi\n--r--\n")
    msg = parse(raw).email_message
    assert [m.get_content_type() for m in msg.walk()] == [
        "multipart/report", "text/plain", "message/delivery-status", "text/plain", "text/plain",
        "message/rfc822", "text/plain"]
    dsn = msg.get_payload()[1]
    assert [block.get("final-recipient") for block in dsn.get_payload()] == [None, "rfc822; gone@x.test"]
    assert msg.get_payload()[2].get_payload()[0]["subject"] == "orig"
    assert msg.get_payload()[0].get_payload(decode=True) == b"Failed."


def test_an_encoded_attached_message_is_decoded_once_and_one_inside_it_is_read_as_written():
    """RFC 2046 §5.2.1 forbids encoding message/rfc822; mail does it anyway. Decoding each level
    again would let nesting multiply the copies of one message: only the outer one is decoded."""
    inner = b"Subject: inner=20one\nContent-Type: text/plain\n\nhi\n"
    middle = (b"Subject: middle\nContent-Type: message/rfc822\nContent-Transfer-Encoding: base64\n\n"
              + base64.encodebytes(inner))
    raw = _mail("Content-Type: message/rfc822\nContent-Transfer-Encoding: base64", base64.encodebytes(middle))
    p = parse(raw)
    [part] = p.parts()
    mid = p.attached(part)
    assert mid.subject == "middle"
    [mid_part] = mid.parts()
    assert mid_part.data() == inner and mid.attached(mid_part).headers == {}
