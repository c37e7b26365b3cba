"""The IMAP and POP3 mailboxes share NetMailbox: every library error a call meets becomes a
MailgateError whose code the health record and `mailgate server test` show; refusals the caller
reads itself (a refused login) come through raw when asked."""

import imaplib
import poplib
import socket
import threading

import pytest

from mailgate.adapters.imap import ImapMailbox, _IMAP4
from mailgate.adapters.pop import PopMailbox, _POP3
from mailgate.domain import IncomingServer
from mailgate.errors import NotFound, PermanentError, TransientError


def server(protocol="imap"):
    return IncomingServer(name="shop", host="mail.example.org", port=993, user="u", protocol=protocol,
                          folder="INBOX")


def call_raising(box, exc, **kw):
    def boom():
        raise exc
    return box._call(boom, 5.0, **kw)


def test_read_only_imap_folder_is_a_permanent_error_that_says_to_use_ack_leave():
    box = ImapMailbox(server(), "pw")
    with pytest.raises(PermanentError) as e:
        call_raising(box, imaplib.IMAP4.readonly("mailbox status changed to READ-ONLY"))
    assert e.value.code == "folder-missing" and "use ack leave" in str(e.value)


def test_imap_connection_abort_is_transient_even_when_the_caller_reads_refusals_itself():
    box = ImapMailbox(server(), "pw")
    box._stage = "login"
    with pytest.raises(TransientError) as e:
        call_raising(box, imaplib.IMAP4.abort("socket error: EOF"), raw_errors=True)
    assert e.value.code == "connection-lost" and "during login" in str(e.value)


@pytest.mark.parametrize("make, exc, text", [
    (lambda: ImapMailbox(server(), "pw"), imaplib.IMAP4.error("SELECT command error: BAD [b'no such']"), "BAD"),
    (lambda: PopMailbox(server("pop"), "pw"), poplib.error_proto(b"-ERR unknown command"), "-ERR unknown command"),
])
def test_a_refused_command_is_a_permanent_protocol_error_naming_the_step(make, exc, text):
    box = make()
    box._stage = "STAT"
    with pytest.raises(PermanentError) as e:
        call_raising(box, exc)
    assert e.value.code == "protocol"
    assert str(e.value).startswith("mail.example.org rejected STAT: ") and text in str(e.value)
    with pytest.raises(type(exc)):  # the caller that reads the refusal itself gets it raw
        call_raising(box, exc, raw_errors=True)


@pytest.mark.parametrize("make", [lambda: ImapMailbox(server(), "pw"), lambda: PopMailbox(server("pop"), "pw")])
def test_network_errors_are_classified_and_our_own_errors_pass_unchanged(make):
    box = make()
    with pytest.raises(TransientError) as e:
        call_raising(box, socket.timeout("timed out"))
    assert e.value.code == "timeout" and "after 5s" in str(e.value)
    mine = NotFound("no such thing")
    with pytest.raises(NotFound) as e:
        call_raising(box, mine)
    assert e.value is mine


def test_pop3_speaks_over_the_socket_we_opened():
    ours, theirs = socket.socketpair()
    with ours, theirs:
        ours.settimeout(5)
        theirs.sendall(b"+OK POP3 ready\r\n")
        session = _POP3(ours, "mail.example.org")
        assert session.getwelcome() == b"+OK POP3 ready" and session.sock is ours


def test_imap_speaks_over_the_socket_we_opened():
    ours, theirs = socket.socketpair()

    def peer():  # greet, then answer the CAPABILITY imaplib asks right away (RFC 3501 6.1.1)
        theirs.sendall(b"* OK ready\r\n")
        tag = theirs.recv(1024).split()[0]
        theirs.sendall(b"* CAPABILITY IMAP4rev1 STARTTLS\r\n" + tag + b" OK done\r\n")

    with ours, theirs:
        ours.settimeout(5)
        t = threading.Thread(target=peer)
        t.start()
        session = _IMAP4(ours, "mail.example.org")
        t.join(5)
        assert session.welcome == b"* OK ready" and session.sock is ours
        assert "STARTTLS" in session.capabilities
