"""The unit tests cannot reach the network (tests/unit/conftest.py): a try fails loudly."""

import smtplib
import socket

import pytest
from pytest_socket import SocketBlockedError

# pytest-socket also warns on each blocked call (so that a swallowed one still shows); here the
# block is what is under test.
pytestmark = pytest.mark.filterwarnings("ignore:A test tried to use socket:UserWarning")


def test_connecting_to_127_0_0_1_raises_instead_of_reaching_a_server():
    with pytest.raises(SocketBlockedError):
        socket.create_connection(("127.0.0.1", 9), timeout=1)


def test_an_smtp_client_cannot_connect_and_the_error_is_not_an_oserror():
    with pytest.raises(SocketBlockedError) as info:
        smtplib.SMTP("127.0.0.1", 25, timeout=1)
    assert not isinstance(info.value, OSError)  # no `except OSError` in the code under test hides it


def test_name_resolution_and_udp_raise():
    with pytest.raises(SocketBlockedError):
        socket.getaddrinfo("localhost", 53)
    with pytest.raises(SocketBlockedError):
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM)


def test_unix_domain_sockets_stay_allowed():
    a, b = socket.socketpair()
    with a, b:
        a.sendall(b"x")
        assert b.recv(1) == b"x"
