"""Bounces in the layouts of the mail systems that send them (written here, after each system's
format): the failed recipient is the address we mailed, with the right status and a right
dead-or-alive verdict, and nothing else in the notice is taken for a recipient."""

from __future__ import annotations

from mailgate.bounces import classify


def _dsn(fields: str, human: str = "Your message could not be delivered.\n", *,
         frm: str = "Mail Delivery System <MAILER-DAEMON@mx.client.example>",
         subject: str = "Undelivered Mail Returned to Sender") -> bytes:
    return (f"From: {frm}\nTo: bounce@shop.example\nSubject: {subject}\nMessage-ID: <dsn1@mx.client.example>\n"
            "MIME-Version: 1.0\nContent-Type: multipart/report; report-type=delivery-status; boundary=B\n\n"
            f"--B\nContent-Type: text/plain\n\n{human}\n"
            "--B\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; mx.client.example\n\n"
            f"{fields}\n--B\nContent-Type: text/rfc822-headers\n\nFrom: sales@shop.example\n"
            "To: ann@client.example\nMessage-ID: <o1@shop.example>\n\n--B--\n").encode()


def _text(body: str, *, frm: str = "MAILER-DAEMON@mx.client.example", subject: str = "failure notice",
          headers: str = "") -> bytes:
    return (f"From: {frm}\nTo: bounce@shop.example\nSubject: {subject}\nMessage-ID: <t1@mx.client.example>\n"
            f"{headers}\n{body}").encode()


def _one(raw: bytes) -> tuple[str, str, str, bool]:
    report = classify(raw)
    assert report.kind == "bounce", report.to_dict()
    [r] = report.recipients
    return r.address, r.status, r.action, r.permanent


# --- who failed ----------------------------------------------------------------------------------

def test_original_recipient_names_the_address_we_mailed_after_a_forward():
    # RFC 3464 §2.3.1: ann@ was forwarded to a.smith@; the DSN names both, we mailed ann@
    raw = _dsn("Original-Recipient: rfc822;ann@client.example\nFinal-Recipient: rfc822;a.smith@mailhost.client.example\n"
               "Action: failed\nStatus: 5.2.2\nDiagnostic-Code: smtp; 552 5.2.2 mailbox full\n",
               "<a.smith@mailhost.client.example> (expanded from <ann@client.example>): mailbox full\n")
    assert _one(raw) == ("ann@client.example", "5.2.2", "failed", False)


def test_final_recipient_serves_when_there_is_no_original_recipient():
    raw = _dsn("Final-Recipient: rfc822; bob@client.example\nAction: failed\nStatus: 5.1.1\n")
    assert _one(raw) == ("bob@client.example", "5.1.1", "failed", True)


def test_an_smtp_reply_code_in_the_status_field_still_gives_the_class():
    raw = _dsn("Final-Recipient: rfc822; bob@client.example\nAction: failed\nStatus: 553\n"
               "Diagnostic-Code: smtp; 553 sorry, that domain isn't in my list of allowed rcpthosts\n")
    address, status, _, _ = _one(raw)
    assert (address, status[:1]) == ("bob@client.example", "5")


def test_a_quoted_local_part_is_kept_as_the_address():
    raw = _dsn('Final-Recipient: rfc822; "ann..smith"@client.example\nAction: failed\nStatus: 5.1.1\n')
    assert _one(raw)[0] == '"ann..smith"@client.example'


def test_an_x400_gateway_address_loses_its_type_prefix():
    # Exchange 5.5 / X.400: the Internet address is the "SMTP=" attribute of an O/R address
    body = ("Your message\n\n  Subject: Order 7781\n\ndid not reach the following recipient(s):\n\n"
            "c=US;a= ;p=Client;o=Exch;dda:SMTP=Ann.Smith@Client.EXAMPLE; on Mon, 3 Mar 2026 10:00:00 -0500\n"
            "    The recipient name is not recognized\n\tMSEXCH:IMS:Client:Exch:MX01 0 (000C05A6) Unknown Recipient\n")
    raw = _text(body, frm="System Administrator <postmaster@client.example>", subject="Undeliverable: Order 7781")
    assert _one(raw)[0] == "ann.smith@client.example"
