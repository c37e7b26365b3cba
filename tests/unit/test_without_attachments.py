"""A fetched message from a server with attachments off: files out, the rest byte for byte."""

from mailgate.message import parse, without_attachments


def _mail(eol: bytes = b"\r\n") -> bytes:
    lines = [
        b"From: ann@client.test", b"To: sales@example.test", b"Subject: offer", b"Message-ID: <o1@client.test>",
        b"MIME-Version: 1.0", b'Content-Type: multipart/mixed; boundary="b1"', b"",
        b"--b1", b'Content-Type: multipart/related; boundary="b2"', b"",
        b"--b2", b"Content-Type: text/html; charset=utf-8", b"", b'<p>See <img src="cid:logo"></p>',
        b"--b2", b"Content-Type: image/png", b"Content-ID: <logo>", b"Content-Disposition: inline",
        b"Content-Transfer-Encoding: base64", b"", b"iVBORw0KGgo=",
        b"--b2--",
        b"--b1", b'Content-Type: application/pdf; name="offer.pdf"', b"Content-Transfer-Encoding: base64",
        b'Content-Disposition: attachment; filename="offer.pdf"', b"", b"JVBERi0xLjQK" * 50,
        b"--b1", b"Content-Type: application/zip", b"Content-Transfer-Encoding: base64",
        b'Content-Disposition: attachment; filename="all.zip"', b"", b"UEsDBBQ=",
        b"--b1--", b"",
    ]
    return eol.join(lines)


def test_files_are_replaced_by_a_note_and_everything_else_stays_byte_for_byte():
    raw = _mail()
    stripped, removed = without_attachments(raw)
    assert removed == ["offer.pdf", "all.zip"]
    assert b"JVBERi0xLjQK" not in stripped and b"UEsDBBQ=" not in stripped
    head, _, _ = raw.partition(b"--b1\r\nContent-Type: application/pdf")
    assert stripped.startswith(head)  # headers, body and the inline logo untouched
    p = parse(stripped)
    assert p.message_id == "o1@client.test" and "See" in p.html
    kept = [(a.content_type, a.inline, a.content_id) for a in p.attachments if a.content_type != "text/plain"]
    assert kept == [("image/png", True, "logo")]  # the inline image the body shows stays
    assert "[attachment 'offer.pdf' removed by mailgate]" in stripped.decode()
    assert stripped.endswith(b"--b1--\r\n")


def test_line_endings_follow_the_message():
    stripped, _ = without_attachments(_mail(b"\n"))
    assert b"\r" not in stripped


def test_a_message_without_files_is_returned_as_it_is():
    raw = b"From: a@b.test\r\nSubject: hi\r\n\r\nhello\r\n"
    assert without_attachments(raw) == (raw, [])


def test_a_thousand_nested_multiparts_are_read_without_recursion():
    depth = 1000
    parts = [b"From: a@b.test", b"Subject: deep", b'Content-Type: multipart/mixed; boundary="d0"', b""]
    for i in range(1, depth):
        parts += [b"--d%d" % (i - 1), b'Content-Type: multipart/mixed; boundary="d%d"' % i, b""]
    parts += [b"--d%d" % (depth - 1), b'Content-Disposition: attachment; filename="x.bin"', b"", b"payload"]
    raw = b"\r\n".join(parts)
    stripped, removed = without_attachments(raw)  # beyond the depth cap the file is not seen: kept
    assert isinstance(stripped, bytes) and removed == []
