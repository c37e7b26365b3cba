"""Odd and hostile messages, as bytes (used by the bad-input tests and bench/inbound.py)."""

from __future__ import annotations

import base64


def odd_messages() -> dict[str, bytes]:
    m: dict[str, bytes] = {}
    m["empty-bytes"] = b""
    m["only-headers"] = b"From: a@customer.test\nTo: sales@example.test\nSubject: no body\n"
    m["no-headers"] = b"\nJust a body without any header.\n"
    m["empty-body"] = b"From: a@customer.test\nTo: sales@example.test\nSubject: empty\nMessage-ID: <e@c.test>\n\n"
    m["missing-message-id"] = b"From: a@customer.test\nTo: sales@example.test\nSubject: no id\n\nhello\n"
    m["unclosed-multipart"] = (b"From: a@customer.test\nTo: sales@example.test\nSubject: broken mime\n"
                               b"Content-Type: multipart/mixed; boundary=\"XYZ\"\n\n--XYZ\nContent-Type: text/plain\n\n"
                               b"part one never closed\n--XYZ\nContent-Type: application/pdf\nContent-Transfer-Encoding: base64\n\nJVBER")
    m["multipart-without-boundary"] = (b"From: a@customer.test\nTo: sales@example.test\nSubject: x\n"
                                       b"Content-Type: multipart/alternative\n\nno boundary at all\n")
    m["unknown-charset"] = (b"From: a@customer.test\nTo: sales@example.test\nSubject: charset\n"
                            b"Content-Type: text/plain; charset=\"x-no-such-charset\"\n\ncaf\xe9 \xff\xfe\n")
    m["wrong-charset"] = (b"From: a@customer.test\nTo: sales@example.test\nSubject: latin1 as utf8\n"
                          b"Content-Type: text/plain; charset=utf-8\n\nna\xefve caf\xe9\n")
    m["broken-base64"] = (b"From: a@customer.test\nTo: sales@example.test\nSubject: b64\n"
                          b"Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: base64\n\n"
                          b"SGVsbG8gd29ybGQ!!!*** not base64 ===\n")
    m["broken-quoted-printable"] = (b"From: a@customer.test\nTo: sales@example.test\nSubject: qp\n"
                                    b"Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: quoted-printable\n\n"
                                    b"bad =ZZ escape and =4 and soft=\nbreak\n")
    m["unknown-transfer-encoding"] = (b"From: a@customer.test\nTo: sales@example.test\nSubject: cte\n"
                                      b"Content-Transfer-Encoding: x-uuencode-ish\n\nbegin 644 x\n")
    m["crlf-injected-encoded-subject"] = (b"From: a@customer.test\nTo: sales@example.test\n"
                                          b"Subject: =?utf-8?q?hi=0D=0ABcc:_victim@evil.test?=\n\nbody\n")
    m["crlf-injected-encoded-from"] = (b"From: =?utf-8?q?Eve=0D=0AReply-To:_x@evil.test?= <eve@customer.test>\n"
                                       b"To: sales@example.test\nSubject: hi\n\nbody\n")
    m["bare-cr-in-header"] = b"From: a@customer.test\rBcc: x@evil.test\nTo: sales@example.test\nSubject: a\rb\n\nbody\n"
    m["unknown-encoded-word-charset"] = (b"From: a@customer.test\nTo: sales@example.test\n"
                                         b"Subject: =?x-unknown?B?SGVsbG8=?= and =?utf-8?B?!!!?=\n\nbody\n")
    m["eight-bit-headers"] = ("From: Jos\u00e9 <jose@customer.test>\nTo: sales@example.test\n"
                              "Subject: Caf\u00e9 \u2603 order\n\nbody\n").encode("utf-8")
    m["latin1-8bit-headers"] = b"From: Jos\xe9 <jose@customer.test>\nTo: sales@example.test\nSubject: caf\xe9\n\nx\n"
    m["nul-bytes"] = b"From: a@customer.test\x00\nTo: sales@example.test\nSubject: nul\x00here\n\nbo\x00dy\n"
    m["garbage-addresses"] = b"From: <<<@@@>>> ,,, \"\nTo: @, a@, @b, ;;;\nSubject: garbage\n\nx\n"
    m["very-long-header"] = (b"From: a@customer.test\nTo: sales@example.test\nSubject: " + b"x" * 200_000 + b"\n\nbody\n")
    m["two-thousand-recipients"] = (b"From: a@customer.test\nTo: " + b", ".join(f"r{i}@many.test".encode() for i in range(2000))
                                    + b", sales@example.test\nSubject: many\n\nbody\n")
    m["deep-nesting"] = (b"From: a@customer.test\nTo: sales@example.test\nSubject: deep\n"
                         + b"".join(f"Content-Type: multipart/mixed; boundary=\"b{i}\"\n\n--b{i}\n".encode() for i in range(200))
                         + b"Content-Type: text/plain\n\ninnermost\n")
    m["attached-message"] = (b"From: a@customer.test\nTo: sales@example.test\nSubject: fwd\n"
                             b"Content-Type: multipart/mixed; boundary=\"Q\"\n\n--Q\nContent-Type: text/plain\n\nsee below\n"
                             b"--Q\nContent-Type: message/rfc822\n\nFrom: x@y.test\nSubject: inner\n\ninner body\n--Q--\n")
    m["html-only"] = (b"From: a@customer.test\nTo: sales@example.test\nSubject: html\nContent-Type: text/html\n\n"
                      b"<html><body><p>Yes &amp; thanks</p><blockquote>old</blockquote><script>x()</script></body></html>\n")
    m["rfc2231-filename"] = (b"From: a@customer.test\nTo: sales@example.test\nSubject: att\n"
                             b"Content-Type: multipart/mixed; boundary=\"Q\"\n\n--Q\nContent-Type: text/plain\n\nx\n--Q\n"
                             b"Content-Type: application/octet-stream\n"
                             b"Content-Disposition: attachment; filename*=utf-8''%E2%82%AC%20rates.pdf\n"
                             b"Content-Transfer-Encoding: base64\n\n" + base64.b64encode(b"pdf") + b"\n--Q--\n")
    m["forged-reply-token"] = (b"From: a@customer.test\nTo: catchall+aaaaaaaaaaaaaaaa.bbbbbbbbbbbbbbbb@example.test\n"
                               b"Subject: forged\n\nlet me in\n")
    m["token-too-long"] = (b"From: a@customer.test\nTo: catchall+" + b"a" * 300 + b".b@example.test\nSubject: long\n\nx\n")
    m["references-flood"] = (b"From: a@customer.test\nTo: sales@example.test\nSubject: refs\nReferences: "
                             + b" ".join(f"<r{i}@x.test>".encode() for i in range(5000)) + b"\n\nx\n")
    m["binary-garbage"] = bytes(range(256)) * 20
    return m
