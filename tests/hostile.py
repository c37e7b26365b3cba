"""Adversarial and heavy messages by family, at any size: the shapes that make a mail parser slow
or greedy (long runs of one character, near-base64, open tags, parentheses, blank lines, bounce
texts, encoded words, deep nesting, many parts or headers), plus legitimate heavy mail.

Shared by `bench/hostile.py` (each family at n and 10n, timed) and
`tests/unit/test_hostile_properties.py` (the same shapes at small sizes, no timing).

Every message carries the same envelope of headers unless its family attacks one of them, so a
test can check that the parser still reads what it could: `expected(family, n)` names them.
"""

from __future__ import annotations

import base64
import random
from dataclasses import dataclass, field
from typing import Callable

SENDER = "ann@customer.test"
DAEMON = "mailer-daemon@mx.remote.test"
DATE = "Thu, 26 Nov 2026 10:00:00 +0000"
#: the marker an earlier parser put in place of a base64 run it cut out of a big message; text that
#: repeats it made that parser copy the run once per mention (kept as a regression family)
ELISION_MARKER = "MAILGATE-ELIDED-"
#: the size from which that parser cut base64 runs out (so the family crosses it)
ELIDE_MIN = 1 << 20


@dataclass(frozen=True)
class Family:
    name: str
    what: str
    unit: str                      # what n counts
    n: int                         # the bench's size (it also runs 10n)
    small: int                     # the largest n the property tests draw
    build: Callable[[str, int], bytes] = field(repr=False)
    recipients: tuple[str, ...] = ("sales@example.test",)
    #: the standard header fields this family leaves intact (message_id, subject, sender)
    keeps: frozenset[str] = frozenset({"message_id", "subject", "sender"})
    sender: str = SENDER
    quick: int = 0                 # the bench's --quick size (default n // 10, at least 1)

    def message(self, n: int) -> bytes:
        return self.build(self.name, n)

    @property
    def quick_n(self) -> int:
        return self.quick or max(1, self.n // 10)


@dataclass(frozen=True)
class Case:
    """One message of a fixed size: a failure seen in the field at the size it was seen, or heavy real mail."""

    name: str
    what: str
    family: str                    # the family whose scaling rows show where its time goes
    build: Callable[[], bytes] = field(repr=False)
    recipients: tuple[str, ...] = ("sales@example.test",)


def message_id(name: str, n: int) -> str:
    return f"{name}.{n}@customer.test"


def subject(name: str) -> str:
    return f"hostile {name}"


def expected(family: Family, n: int) -> dict[str, str]:
    """The standard header fields message.parse must still read on family.message(n)."""
    want = {"message_id": message_id(family.name, n), "subject": subject(family.name), "sender": family.sender}
    return {k: v for k, v in want.items() if k in family.keeps}


# --- building blocks ---------------------------------------------------------------------------

def _mail(name: str, n: int, body: str | bytes = "Hello.\n", *, ctype: str = "text/plain; charset=utf-8",
          frm: str | None = None, to: str | None = None, subj: str | None = None,
          extra: str = "", cte: str = "") -> bytes:
    """A message with the standard headers; any of From/To/Subject may be replaced by the attack."""
    head = [
        f"From: {frm if frm is not None else 'Ann Example <' + SENDER + '>'}",
        f"To: {to if to is not None else 'sales@example.test'}",
        f"Subject: {subj if subj is not None else subject(name)}",
        f"Message-ID: <{message_id(name, n)}>",
        f"Date: {DATE}",
        "MIME-Version: 1.0",
        f"Content-Type: {ctype}",
    ]
    if cte:
        head.append(f"Content-Transfer-Encoding: {cte}")
    if extra:
        head.append(extra.rstrip("\n"))
    if isinstance(body, str):
        body = body.encode("utf-8")
    return ("\n".join(head) + "\n\n").encode("utf-8") + body


def _multipart(name: str, n: int, parts: list[str | bytes], *, subtype: str = "mixed", boundary: str = "=_b",
               **kw) -> bytes:
    chunks: list[bytes] = []
    for part in parts:
        chunks.append(f"--{boundary}\n".encode())
        chunks.append(part.encode("utf-8") if isinstance(part, str) else part)
        if not chunks[-1].endswith(b"\n"):
            chunks.append(b"\n")
    chunks.append(f"--{boundary}--\n".encode())
    return _mail(name, n, b"This is a multi-part message in MIME format.\n" + b"".join(chunks),
                 ctype=f'multipart/{subtype}; boundary="{boundary}"', **kw)


def _text_part(text: str) -> str:
    return "Content-Type: text/plain; charset=utf-8\n\n" + text


def _b64_lines(nbytes: int, seed: int = 1) -> bytes:
    """Base64 of random bytes in 76-character lines (RFC 2045 §6.8), as mail clients send files."""
    return base64.encodebytes(random.Random(seed).randbytes(nbytes))


def _attachment(data_b64: bytes, filename: str = "photo.jpg", ctype: str = "image/jpeg") -> bytes:
    return (f'Content-Type: {ctype}; name="{filename}"\nContent-Disposition: attachment; filename="{filename}"\n'
            f"Content-Transfer-Encoding: base64\n\n").encode() + data_b64


def _padding(nbytes: int) -> str:
    """Plain text (not base64: it has spaces) that brings a message over the elision threshold."""
    line = "Padding text that is not base64, so that the message is over one megabyte.\n"
    return line * (nbytes // len(line) + 1)


def _padded(name: str, n: int, parts: list[str | bytes]) -> bytes:
    """A multipart message of at least ELIDE_MIN bytes: the parser's large-message path at every n."""
    size = sum(len(p) for p in parts)
    pad = max(0, ELIDE_MIN + 4096 - size)
    return _multipart(name, n, [_text_part("See the attachments.\n")] + parts
                      + ([_text_part(_padding(pad)).replace("text/plain", "text/x-padding")] if pad else []))


def _bounce(name: str, n: int, body: str, **kw) -> bytes:
    return _mail(name, n, body, frm=f"Mail Delivery System <{DAEMON.upper()}>", to="bounce@example.test",
                 **kw)


_BOUNCE_INTRO = ("This is the mail system at host mx.remote.test.\n\n"
                 "I'm sorry to have to inform you that your message could not\n"
                 "be delivered to one or more recipients.\n\n")


def _dsn(name: str, n: int, human: str, status_blocks: str) -> bytes:
    original = (f"From: Sales <sales@example.test>\nTo: someone@remote.test\nSubject: Quote\n"
                f"Message-ID: <orig.{n}@example.test>\n\nYour quote.\n")
    parts = [
        "Content-Type: text/plain; charset=us-ascii\n\n" + human,
        "Content-Type: message/delivery-status\n\nReporting-MTA: dns; mx.remote.test\n"
        "Arrival-Date: " + DATE + "\n\n" + status_blocks,
        "Content-Type: message/rfc822\n\n" + original,
    ]
    chunks = "".join(f"--=_r\n{p}\n" for p in parts) + "--=_r--\n"
    return _mail(name, n, "This is a MIME-encapsulated message.\n\n" + chunks,
                 frm=f"Mail Delivery System <{DAEMON.upper()}>", to="bounce@example.test",
                 ctype='multipart/report; report-type=delivery-status; boundary="=_r"')


def _html(name: str, n: int, html: str) -> bytes:
    return _mail(name, n, html, ctype="text/html; charset=utf-8")


# --- the families --------------------------------------------------------------------------------
# Each builder takes (family name, n) and returns the raw bytes; sizes grow linearly with n.

def _subject_run(name, n):
    return _mail(name, n, subj="x" * n)


def _to_run(name, n):
    return _mail(name, n, to="a" * n)


def _body_line_run(name, n):
    return _mail(name, n, "x" * n + "\n")


def _space_run_body(name, n):
    return _mail(name, n, "Hello" + " " * n + "x\n")


def _base64_one_line(name, n):
    data = base64.b64encode(random.Random(2).randbytes(n))  # no line breaks at all
    return _multipart(name, n, [_text_part("One file.\n"), _attachment(data, "blob.bin", "application/octet-stream")])


def _b64_run_short(name, n):
    # one run of n base64 lines ending in a non-base64 line (an earlier parser's run regex backtracked
    # from each line of a run shorter than its 2,000-line minimum: quadratic)
    run = _b64_lines(57 * n, seed=3)
    return _padded(name, n, [_attachment(run)])


def _b64_lines_bad_char(name, n):
    line = "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWZnaGlqa2xtbm9wcXJzdHV2d3h5ejAxMjM0!\n"
    return _padded(name, n, [("Content-Type: application/octet-stream\nContent-Transfer-Encoding: base64\n\n"
                              + line * n)])


def _photos_plain(count: int, kb: int) -> bytes:
    """Mail as a phone sends it: a short text and `count` photos of `kb` KB, nothing else."""
    photos = [_attachment(_b64_lines(kb * 1000, seed=i), f"IMG_{i:04d}.jpg") for i in range(count)]
    name = f"photos-{count}x{kb}k"
    return _multipart(name, count, [_text_part("Photos from the site visit.\n")] + photos)


def _html_repeat(token: str) -> Callable[[str, int], bytes]:
    def build(name, n):
        return _html(name, n, "<html><body><p>Hello</p>" + token * n + "\n")
    return build


_NEWS_BLOCK = (
    '<table role="presentation" width="100%" cellpadding="0" cellspacing="0" style="border-collapse:collapse;'
    'mso-table-lspace:0pt"><tr><td style="padding:12px 24px;font-family:Arial,sans-serif;font-size:15px">'
    '<h2 style="margin:0">Product news {i}</h2><p>Our spring range is here &ndash; {i} new items&nbsp;with '
    '<a href="https://news.example.test/c?u={i}&amp;t=abc">free delivery</a>.</p>'
    '<img src="https://news.example.test/i/{i}.png" width="600" alt="Item {i}"><br>'
    '<div class="footer" style="color:#888">You receive this because you subscribed.</div></td></tr></table>\n')


def _html_newsletter(name, n):
    head = ("<!DOCTYPE html><html><head><meta charset='utf-8'><style>td{padding:0} .footer{font-size:11px}"
            "</style><title>News</title></head><body>")
    body = "".join(_NEWS_BLOCK.format(i=i) for i in range(n))
    return _multipart(name, n, [_text_part("Product news: view in your browser.\n"),
                                "Content-Type: text/html; charset=utf-8\n\n" + head + body + "</body></html>\n"],
                      subtype="alternative")


def _address_run(header: str, token: str) -> Callable[[str, int], bytes]:
    def build(name, n):
        value = token * (n // len(token) + 1)
        if header == "From":
            return _mail(name, n, frm=value[:n])
        if header == "To":
            return _mail(name, n, to=value[:n])
        return _mail(name, n, extra=f"{header}: {value[:n]}")
    return build


def _to_many_addresses(name, n):
    return _mail(name, n, to=", ".join(f"User {i} <user{i}@client{i % 97}.test>" for i in range(n)))


def _body_blank_lines(name, n):
    return _mail(name, n, "Hello.\n" + "\n" * n + "Regards, Ann\n")


def _body_ws_lines(name, n):
    return _mail(name, n, "Hello.\n" + " \t \n" * n + "Regards, Ann\n")


def _reply_blank_lines(name, n):
    return _mail(name, n, "Thanks, that works.\n" + "\n" * n
                 + "On Tue, 24 Nov 2026 at 09:00, Sales <sales@example.test> wrote:\n"
                 "> Here is the quote.\n> 40 chairs.\n",
                 subj=None)


def _html_br_run(name, n):
    return _html(name, n, "<p>Hello</p>" + "<br>\n" * n + "<p>Ann</p>\n")


def _bounce_space_line(name, n):
    return _bounce(name, n, _BOUNCE_INTRO + "<someone@remote.test>: host mx.remote.test said:\n"
                   + " " * n + "\n550 5.1.1 <someone@remote.test>: Recipient address rejected: User unknown\n")


def _bounce_many_addresses(name, n):
    lines = "".join(f"<user{i}@client{i % 97}.test>: host mx.client.test said: 550 5.1.1 User unknown\n"
                    for i in range(n))
    return _bounce(name, n, _BOUNCE_INTRO + lines)


def _bounce_blank_lines(name, n):
    return _bounce(name, n, _BOUNCE_INTRO + "\n" * n
                   + "<someone@remote.test>: 550 5.1.1 User unknown\n")


def _dsn_many_recipients(name, n):
    blocks = "".join(f"Final-Recipient: rfc822; user{i}@client{i % 97}.test\nAction: failed\nStatus: 5.1.1\n"
                     f"Diagnostic-Code: smtp; 550 5.1.1 <user{i}@client{i % 97}.test>: User unknown\n\n"
                     for i in range(n))
    return _dsn(name, n, _BOUNCE_INTRO, blocks)


def _dsn_space_diagnostic(name, n):
    blocks = ("Final-Recipient: rfc822; someone@remote.test\nAction: failed\nStatus: 5.1.1\n"
              "Diagnostic-Code: smtp; 550" + " " * n + "5.1.1 User unknown\n\n")
    return _dsn(name, n, _BOUNCE_INTRO + "<someone@remote.test>: 550" + " " * n + "User unknown\n", blocks)


def _subject_encoded_words(name, n):
    return _mail(name, n, subj=" ".join(["=?utf-8?B?w6lsw6h2ZQ==?="] * n))


def _subject_broken_encoded_words(name, n):
    return _mail(name, n, subj="".join(("=?utf-8?Q?", "=?x-bogus?B?!!!?=", "=?utf-8?B?w6", "?=")[i % 4]
                                      for i in range(n)))


def _subject_eq_q_run(name, n):
    return _mail(name, n, subj="=?" * n + "?=" * n)


def _from_encoded_words(name, n):
    words = " ".join(["=?iso-8859-1?Q?Ann_=E9?="] * n)
    return _mail(name, n, frm=f"{words} <{SENDER}>")


def _nested_encoded_words(name, n):
    # an encoded word whose decoded text looks like another encoded word, n times over
    inner = base64.b64encode(b"=?utf-8?B?PT91dGYtOD9CP3c2az0/PQ==?=").decode()
    return _mail(name, n, subj=" ".join([f"=?utf-8?B?{inner}?="] * n))


def _rfc2231(order: int) -> Callable[[str, int], bytes]:
    def build(name, n):
        idx = range(n) if order > 0 else range(n - 1, -1, -1)
        params = ";\n ".join(f"filename*{i}*={'utf-8' + chr(39) * 2 if i == 0 else ''}part{i}%C3%A9" for i in idx)
        att = ("Content-Type: application/pdf\nContent-Disposition: attachment;\n " + params
               + "\nContent-Transfer-Encoding: base64\n\n" + base64.encodebytes(b"%PDF-1.4 tiny").decode())
        return _multipart(name, n, [_text_part("The file.\n"), att])
    return build


def _nested_multipart(name, n):
    opening = "".join(f"--b{i}\nContent-Type: multipart/mixed; boundary=\"b{i + 1}\"\n\n" for i in range(n))
    closing = "".join(f"--b{i}--\n" for i in range(n, -1, -1))
    return _mail(name, n, opening + f"--b{n}\nContent-Type: text/plain\n\nHello from the bottom.\n" + closing,
                 ctype='multipart/mixed; boundary="b0"')


def _nested_rfc822(name, n):
    inner = "From: x@inner.test\nSubject: level\n\nHello from the bottom.\n"
    for _ in range(n):
        inner = "From: x@inner.test\nSubject: level\nMIME-Version: 1.0\nContent-Type: message/rfc822\n\n" + inner
    return _mail(name, n, inner, ctype="message/rfc822")


def _many_parts(name, n):
    parts = [_text_part("Hello.\n")] + [f'Content-Type: text/plain; name="n{i}.txt"\n'
                                       f'Content-Disposition: attachment; filename="n{i}.txt"\n\nnote {i}\n'
                                       for i in range(n)]
    return _multipart(name, n, parts)


def _many_headers(name, n):
    return _mail(name, n, extra="".join(f"X-Header-{i}: value {i}\n" for i in range(n)))


def _many_references(name, n):
    refs = " ".join(f"<ref{i}.{n}@client.test>" for i in range(n))
    return _mail(name, n, extra=f"References: {refs}\nIn-Reply-To: <ref{n - 1}.{n}@client.test>")


def _long_continuation(name, n):
    return _mail(name, n, subj="start" + "".join(f"\n word{i}" for i in range(n)))


def _elision_marker(name, n):
    # a real base64 run big enough that an earlier parser cut it out, and a text body that repeats
    # the marker naming that run n times (that parser expanded every mention into a copy)
    run = _b64_lines(800_000, seed=5)
    text = "Look:\n" + (ELISION_MARKER + "0\n") * n
    return _multipart(name, n, [_text_part(text), _attachment(run, "big.bin", "application/octet-stream")])


def _emoji_body(name, n):
    emoji = "".join(chr(0x1F600 + i % 64) for i in range(n))
    lines = "\n".join(emoji[i:i + 40] for i in range(0, len(emoji), 40))
    return _mail(name, n, "Hello " + lines + "\n")


def _attachment_mb(name, n):
    return _multipart(name, n, [_text_part("The report.\n"),
                                _attachment(_b64_lines(n * 1000 * 1000, seed=9), "report.pdf", "application/pdf")])


def _quoted_thread(name, n):
    """A thread of n replies, each carrying the history below it (Outlook and Gmail layouts)."""
    out = ["Agreed, let's go ahead.\n\nAnn\n"]
    for i in range(n, 0, -1):
        who = ("Bob", "bob@client.test") if i % 2 else ("Sales", "sales@example.test")
        text = "".join(f"Point {j} of message {i}: the delivery date, the price and the colour.\n" for j in range(4))
        if i % 3 == 0:
            out.append(f"\nOn Tue, 24 Nov 2026 at 09:{i % 60:02d}, {who[0]} <{who[1]}> wrote:\n"
                       + "".join("> " + line + "\n" for line in text.splitlines()))
        else:
            out.append(f"\n________________________________\nFrom: {who[0]} <{who[1]}>\n"
                       f"Sent: Tuesday, November 24, 2026 9:{i % 60:02d} AM\nTo: Ann <{SENDER}>\n"
                       f"Subject: RE: chairs\n\n{text}")
    return _mail(name, n, "".join(out))


def _fam(name, what, unit, n, small, build, **kw) -> Family:
    return Family(name=name, what=what, unit=unit, n=n, small=small, build=build, **kw)


_NO_SUBJECT = frozenset({"message_id", "sender"})
_NO_SENDER = frozenset({"message_id", "subject"})
_BOUNCE = dict(recipients=("bounce@example.test",), sender=DAEMON)

FAMILIES: list[Family] = [
    # long runs of one character
    _fam("subject-run", "Subject: one run of 'x'", "chars", 100_000, 3000, _subject_run, keeps=_NO_SUBJECT),
    _fam("to-run", "To: one run of 'a' (no @)", "chars", 100_000, 3000, _to_run),
    _fam("body-line-run", "text body: one line of 'x'", "chars", 80_000, 3000, _body_line_run),
    _fam("space-run-body", "text body: one line of spaces", "chars", 1000, 3000, _space_run_body),
    _fam("base64-one-line", "base64 attachment on one line (no line breaks)", "bytes", 75_000, 3000,
         _base64_one_line),
    # near-base64 (messages over the 1 MB elision threshold)
    _fam("b64-run-short", "1 MB message, one base64 run of n lines (< 2000) then a non-base64 line",
         "lines", 190, 60, _b64_run_short, quick=60),
    _fam("b64-lines-bad-char", "1 MB+ message, n base64-alphabet lines each ending in '!'", "lines", 2000, 200,
         _b64_lines_bad_char),
    # tags in text/html
    _fam("html-div", "text/html: '<div ' repeated, never closed", "tags", 500, 300, _html_repeat("<div ")),
    _fam("html-head", "text/html: '<head' repeated, never closed", "tags", 300, 300, _html_repeat("<head")),
    _fam("html-lt", "text/html: '<' repeated", "chars", 2000, 600, _html_repeat("<")),
    _fam("html-comment", "text/html: '<!--' repeated, never closed", "tags", 1000, 300, _html_repeat("<!--")),
    _fam("html-script", "text/html: '<script>' repeated, never closed", "tags", 20, 100,
         _html_repeat("<script>")),
    _fam("html-br-run", "text/html: '<br>' lines", "tags", 10_000, 300, _html_br_run),
    # address headers
    _fam("to-parens", "To: '(' repeated", "chars", 1500, 1500, _address_run("To", "(")),
    _fam("to-quotes", "To: '\"' repeated", "chars", 80_000, 1500, _address_run("To", '"')),
    _fam("to-backslashes", "To: '\\' repeated", "chars", 80_000, 1500, _address_run("To", "\\")),
    _fam("to-angles", "To: '<' repeated", "chars", 50_000, 1500, _address_run("To", "<")),
    _fam("from-parens", "From: '(' repeated", "chars", 1500, 1500, _address_run("From", "("), keeps=_NO_SENDER),
    _fam("cc-mixed", "Cc: '(\\\"<@' repeated", "chars", 80_000, 1500, _address_run("Cc", '(\\"<@')),
    _fam("to-many-addresses", "To: n addresses", "addresses", 1000, 200, _to_many_addresses),
    # blank lines
    _fam("body-blank-lines", "text body: blank lines", "lines", 200, 300, _body_blank_lines),
    _fam("body-ws-lines", "text body: whitespace-only lines", "lines", 120, 300, _body_ws_lines),
    _fam("reply-blank-lines", "reply text: blank lines before the quote header", "lines", 500, 300,
         _reply_blank_lines),
    # bounces
    _fam("bounce-space-line", "text bounce with a line of spaces", "spaces", 20, 60, _bounce_space_line, **_BOUNCE),
    _fam("bounce-many-addresses", "text bounce listing n failed addresses", "addresses", 50, 60,
         _bounce_many_addresses, **_BOUNCE),
    _fam("bounce-blank-lines", "text bounce with blank lines", "lines", 250, 300, _bounce_blank_lines, **_BOUNCE),
    _fam("dsn-many-recipients", "RFC 3464 DSN with n recipient blocks", "recipients", 200, 60,
         _dsn_many_recipients, **_BOUNCE),
    _fam("dsn-space-diagnostic", "DSN whose Diagnostic-Code has a run of spaces", "spaces", 1000, 300,
         _dsn_space_diagnostic, **_BOUNCE),
    # encoded words (RFC 2047) and parameters (RFC 2231)
    _fam("subject-encoded-words", "Subject: n encoded words", "words", 1000, 200, _subject_encoded_words,
         keeps=_NO_SUBJECT),
    _fam("subject-broken-words", "Subject: broken and unclosed encoded words", "words", 2000, 200,
         _subject_broken_encoded_words, keeps=_NO_SUBJECT),
    _fam("subject-eq-q-run", "Subject: '=?' x n then '?=' x n", "pairs", 20_000, 500, _subject_eq_q_run,
         keeps=_NO_SUBJECT),
    _fam("from-encoded-words", "From: display name of n encoded words", "words", 1000, 200, _from_encoded_words),
    _fam("nested-encoded-words", "Subject: encoded words that decode to encoded words", "words", 700, 200,
         _nested_encoded_words, keeps=_NO_SUBJECT),
    _fam("rfc2231-continuations", "filename*0* .. filename*n* (RFC 2231)", "sections", 1000, 200, _rfc2231(1)),
    _fam("rfc2231-reversed", "filename*n* .. filename*0*, in reverse order", "sections", 1000, 200, _rfc2231(-1)),
    # structure
    _fam("nested-multipart", "multipart nested n deep", "levels", 100, 200, _nested_multipart, quick=30),
    _fam("nested-rfc822", "message/rfc822 nested n deep", "levels", 100, 200, _nested_rfc822, quick=30),
    _fam("many-parts", "n sibling parts", "parts", 800, 300, _many_parts),
    _fam("many-headers", "n extra header fields", "headers", 3500, 1000, _many_headers),
    _fam("many-references", "References: n message-ids", "ids", 3000, 500, _many_references),
    _fam("long-continuation", "Subject folded over n lines", "lines", 8000, 1000, _long_continuation,
         keeps=_NO_SUBJECT),
    _fam("elision-marker", "1 MB message whose text repeats the internal elision marker", "markers", 10, 5,
         _elision_marker, quick=3),
    _fam("emoji-body", "text body of n non-BMP characters", "chars", 2000, 2000, _emoji_body),
    # legitimate heavy mail
    _fam("attachment", "one attachment of n MB", "MB", 3, 1, _attachment_mb, quick=1),
    _fam("quoted-thread", "a reply carrying n quoted earlier messages", "replies", 100, 20, _quoted_thread),
    _fam("html-newsletter", "HTML newsletter of n blocks (tables, styles, links)", "blocks", 160, 20,
         _html_newsletter),
]

BY_NAME = {f.name: f for f in FAMILIES}


def _case(name: str, what: str, family: str, n: int) -> Case:
    fam = BY_NAME[family]
    return Case(name, what, family, lambda: fam.message(n), fam.recipients)


CASES: list[Case] = [
    Case("photos-10x107k", "1.45 MB: ten 107 KB photos", "b64-run-short", lambda: _photos_plain(10, 107)),
    Case("photos-10x195k", "2.6 MB: ten 195 KB photos", "b64-run-short", lambda: _photos_plain(10, 195)),
    _case("to-parens-200k", "200 KB To: of parentheses", "to-parens", 200_000),
    _case("blank-lines-40k", "40 KB body of blank lines", "body-blank-lines", 40_000),
    _case("head-tags-20k", "20,000 '<head' tags", "html-head", 20_000),
    _case("div-tags-20k", "20,000 '<div ' tags", "html-div", 20_000),
    _case("bounce-1000-spaces", "bounce with a 1,000-space line", "bounce-space-line", 1000),
    _case("bounce-4000-addresses", "bounce listing 4,000 addresses", "bounce-many-addresses", 4000),
    _case("elision-marker-28k", "28 KB of text repeating the elision marker", "elision-marker", 1550),
    _case("nested-multipart-1000", "1,000 nested multiparts", "nested-multipart", 1000),
    _case("emoji-20000", "20,000 emoji in the body", "emoji-body", 20_000),
    _case("attachment-30mb", "legitimate: a 30 MB attachment", "attachment", 30),
    _case("quoted-thread-200", "legitimate: a 200-reply quoted history", "quoted-thread", 200),
]
