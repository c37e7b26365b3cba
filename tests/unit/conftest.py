"""Unit tests of the pure core run with the network blocked.

Every test under tests/unit/ runs with pytest-socket's guard: creating an Internet socket, or
resolving a name, raises SocketBlockedError (a RuntimeError, which no `except OSError` swallows).
Unix-domain sockets stay allowed (asyncio's self-pipe uses one). A test that needs a real server
belongs in tests/integration/.
"""

import pytest

# urllib3 (under botocore) opens an IPv6 socket once, when first imported, to learn whether the
# host has IPv6: imported here, before the guard, it is not a test using the network.
import urllib3.util.connection  # noqa: F401
from pytest_socket import disable_socket, enable_socket


@pytest.fixture(autouse=True)
def _network_blocked():
    disable_socket(allow_unix_socket=True)
    yield
    enable_socket()
