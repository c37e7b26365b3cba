"""Send request validation and MIME composition, read back with the standard library."""

import email
import email.policy

import pytest

from mailgate import compose as C


def request(**over):
    base = {"idempotency_key": "k-1", "from": "Alice <alice@example.test>", "to": ["bob@example.org"],
            "subject": "Hello", "text": "Hi Bob"}
    base.update(over)
    return base


def parse(raw: bytes):
    # what a mail store does with a received message: local line ends (the parser keeps CRLF
    # inside decoded parts otherwise); decoded as UTF-8 so RFC 6532 headers read back too
    return email.message_from_string(raw.decode("utf-8").replace("\r\n", "\n"), policy=email.policy.default)


def build(req_dict, **kw):
    req = C.parse_request(req_dict)
    kw.setdefault("author", req.author)
    kw.setdefault("message_id", "<ref1@example.test>")
    kw.setdefault("ref", "ref1")
    return C.compose(req, **kw)


@pytest.mark.parametrize("field,value", [
    ("subject", "Hi\r\nBcc: victim@example.org"),
    ("from", "Alice <alice@example.test>\nBcc: victim@example.org"),
    ("to", ["bob@example.org\r\n"]),
    ("headers", {"X-Campaign": "a\nBcc: x@y.org"}),
    ("reply_to_name", "Sales\rTeam"),
    ("attachments", [{"key": "a/b.pdf", "filename": "b.pdf\r\nX: y"}]),
])
def test_line_break_in_any_header_value_is_refused_as_header_injection(field, value):
    with pytest.raises(C.InvalidRequest) as e:
        C.parse_request(request(**{field: value}))
    assert e.value.code == "header-injection"
    assert "line break" in str(e.value)


@pytest.mark.parametrize("address", ["bob", "bob@", "@example.org", "bob@@example.org", "bob smith@example.org",
                                     "bob@exa mple.org", "bob@localhost", "a" * 65 + "@example.org",
                                     "bob@-example.org", "Bob <bob@example.org"])
def test_bad_recipient_address_is_refused_with_the_field_named(address):
    with pytest.raises(C.InvalidRequest) as e:
        C.parse_request(request(to=[address]))
    assert e.value.code == "bad-address"
    assert e.value.field == "to[0]"


def test_request_without_body_or_recipient_or_key_is_refused_with_the_fix():
    with pytest.raises(C.InvalidRequest, match="give text, html or both"):
        C.parse_request(request(text=None))
    with pytest.raises(C.InvalidRequest, match="at least one recipient"):
        C.parse_request(request(to=[]))
    with pytest.raises(C.InvalidRequest, match="idempotency_key is required"):
        C.parse_request(request(idempotency_key=""))
    with pytest.raises(C.InvalidRequest, match="must be a JSON object"):
        C.parse_request(["not", "a", "dict"])


def test_gateway_owned_headers_cannot_be_set_by_the_request():
    for name in ("Message-ID", "From", "DKIM-Signature", "X-Mailgate-Id", "Content-Type"):
        with pytest.raises(C.InvalidRequest, match="set by the gateway"):
            C.parse_request(request(headers={name: "x"}))
    req = C.parse_request(request(headers={"List-Unsubscribe": "<mailto:u@example.test>", "X-Campaign": "7"}))
    assert dict(req.headers) == {"List-Unsubscribe": "<mailto:u@example.test>", "X-Campaign": "7"}


@pytest.mark.parametrize("name", ["X-Tag\n", "X-Tag\r\n", "X-Tag\r", "\nX-Tag", "X Tag", "X\tTag",
                                  "X:Tag", "X-T\u00e5g", "X-Tag\x00", "X-Tag\x7f", ""])
def test_header_name_that_is_no_rfc5322_field_name_is_refused_at_the_door(name):
    # RFC 5322 section 2.2/3.6.8: a field name is one or more printable US-ASCII characters
    # except colon. A trailing newline used to pass (the pattern's "$" matches before it), and
    # DKIM signing then failed on every retry of the send request.
    with pytest.raises(C.InvalidRequest) as e:
        C.parse_request(request(headers={name: "x"}))
    assert e.value.field == f"headers.{name}"
    assert "not a valid header field name" in str(e.value)


@pytest.mark.parametrize("ctype", ["text/plain\n", "text/plain\r\nX-Injected: 1", "text/plain;"])
def test_attachment_content_type_that_is_no_type_subtype_is_refused(ctype):
    with pytest.raises(C.InvalidRequest) as e:
        C.parse_request(request(attachments=[{"key": "att/a.txt", "filename": "a.txt", "content_type": ctype}]))
    assert e.value.field == "attachments[0]"


def test_too_large_body_and_too_many_recipients_are_refused():
    with pytest.raises(C.InvalidRequest) as e:
        C.parse_request(request(text="x" * (C.MAX_MESSAGE_BYTES + 1)))
    assert e.value.code == "too-large"
    with pytest.raises(C.InvalidRequest) as e:
        C.parse_request(request(to=[f"u{i}@example.org" for i in range(C.MAX_RECIPIENTS + 1)]))
    assert e.value.code == "too-large"
    big = ("big.bin", "application/octet-stream", b"\0" * C.MAX_MESSAGE_BYTES)
    with pytest.raises(C.InvalidRequest, match="fewer or smaller attachments"):
        build(request(), attachments=[big])


def test_idn_domain_is_sent_as_a_labels_and_recipients_are_deduplicated():
    req = C.parse_request(request(to=["bob@bücher.example", "Bob@BÜCHER.example"], cc=["carol@example.org"],
                                  bcc=["carol@example.org", "dave@example.org"]))
    assert req.recipients == ["bob@xn--bcher-kva.example", "carol@example.org", "dave@example.org"]


def test_text_and_html_make_multipart_alternative_with_html_last():
    m = parse(build(request(html="<p>Hi <b>Bob</b></p>")).raw)
    assert m.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in m.iter_parts()] == ["text/plain", "text/html"]
    assert m.get_body(("plain",)).get_content().strip() == "Hi Bob"
    assert "<b>Bob</b>" in m.get_body(("html",)).get_content()


def test_text_only_message_is_a_single_utf8_part():
    raw = build(request(text="Grüße\nzweite Zeile")).raw
    m = parse(raw)
    assert m.get_content_type() == "text/plain"
    assert m.get_content_charset() == "utf-8"
    assert m.get_content() == "Grüße\nzweite Zeile\n"
    assert all(len(line) <= 998 for line in raw.split(b"\r\n"))
    assert b"\n" not in raw.replace(b"\r\n", b"")  # CRLF line ends only


def test_attachments_make_multipart_mixed_with_rfc2231_filenames():
    files = [("résumé.pdf", "application/pdf", b"%PDF-1.4 \x00\xff binary"), ("notes.txt", "text/plain", b"plain")]
    m = parse(build(request(html="<p>x</p>"), attachments=files).raw)
    assert m.get_content_type() == "multipart/mixed"
    got = [(a.get_filename(), a.get_content_type(), a.get_content()) for a in m.iter_attachments()]
    assert got == [("résumé.pdf", "application/pdf", b"%PDF-1.4 \x00\xff binary"),
                   ("notes.txt", "text/plain", "plain")]
    assert m.get_body(("html",)) is not None


def test_non_ascii_names_and_subject_are_rfc2047_encoded_and_read_back():
    raw = build(request(**{"from": "Ævar Örn <alice@example.test>", "subject": "Réunion — ordre du jour " * 4,
                           "to": [{"name": "Doe, John", "address": "john@example.org"}]})).raw
    head = raw.split(b"\r\n\r\n", 1)[0]
    assert head.isascii()
    assert all(len(line) <= 78 for line in head.split(b"\r\n"))
    m = parse(raw)
    assert m["Subject"] == "Réunion — ordre du jour " * 4
    assert m["From"].addresses[0].display_name == "Ævar Örn"
    assert m["To"].addresses[0].display_name == "Doe, John"


def test_utf8_local_part_uses_rfc6532_headers_and_asks_for_smtputf8():
    composed = build(request(to=["jösé@example.org"]))
    assert composed.smtputf8
    m = parse(composed.raw)
    assert m["To"].addresses[0].addr_spec == "jösé@example.org"


def test_bcc_is_not_in_the_header_but_is_a_recipient():
    req = C.parse_request(request(bcc=["secret@example.org"]))
    m = parse(C.compose(req, author=req.author, message_id="<r@example.test>", ref="r").raw)
    assert "Bcc" not in m and "secret" not in str(m["To"])
    assert "secret@example.org" in req.recipients


def test_threading_headers_message_id_and_our_own_id_are_set():
    reply = C.Address(C.short_display_name("A very long record name " * 6), "catchall+tok@example.test")
    m = parse(build(request(notification=True), reply_to=reply, in_reply_to="<p2@example.test>",
                    references=["<p1@example.test>", "<p2@example.test>"]).raw)
    assert m["Message-ID"] == "<ref1@example.test>"
    assert m["X-Mailgate-Id"] == "ref1"
    assert m["In-Reply-To"] == "<p2@example.test>"
    assert m["References"].split() == ["<p1@example.test>", "<p2@example.test>"]
    assert m["Auto-Submitted"] == "auto-generated"
    name = m["Reply-To"].addresses[0].display_name
    assert len(name) <= C.MAX_REPLY_TO_NAME and name.endswith("…")
    assert m["Reply-To"].addresses[0].addr_spec == "catchall+tok@example.test"


def test_plain_message_is_not_marked_auto_submitted():
    assert "Auto-Submitted" not in parse(build(request()).raw)


def test_extra_headers_are_carried_and_encoded_when_not_ascii():
    m = parse(build(request(headers={"X-Campaign": "été 2026", "List-Unsubscribe": "<mailto:u@example.test>"})).raw)
    assert m["X-Campaign"] == "été 2026"
    assert m["List-Unsubscribe"] == "<mailto:u@example.test>"


def test_quoted_printable_keeps_lines_short_and_dots_intact():
    text = "." + "long line " * 40 + "\n.\nend  \n"
    m = parse(build(request(text=text)).raw)
    assert m.get_content() == text
    body = build(request(text=text)).raw.split(b"\r\n\r\n", 1)[1]
    assert max(len(line) for line in body.split(b"\r\n")) <= 76
