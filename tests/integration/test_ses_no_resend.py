"""SES v2 SendEmail whose answer never comes back: the message may have been accepted, so it is
neither retried by botocore nor sent again by the outbound path (reported `unknown`). A local
HTTP server on 127.0.0.1 plays an SES endpoint that takes the request and answers too late."""

from __future__ import annotations

import http.server
import threading

import boto3
import pytest
from botocore.config import Config

from mailgate.adapters.ses import SesSender
from mailgate.ports import Envelope
from tests.fixtures._ports import free_port

pytestmark = pytest.mark.integration


class SlowSes(http.server.BaseHTTPRequestHandler):
    requests = 0
    release = threading.Event()

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        type(self).requests += 1
        self.release.wait(5)  # the message is "accepted", the answer comes after the client gave up
        try:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(b'{"MessageId": "late"}')
        except OSError:
            pass

    def log_message(self, *args):
        pass


@pytest.fixture
def slow_ses():
    SlowSes.requests = 0
    SlowSes.release.clear()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), SlowSes)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    SlowSes.release.set()
    server.shutdown()
    server.server_close()
    thread.join(5)


def test_a_send_whose_answer_never_came_is_unknown_and_sent_once(slow_ses):
    client = boto3.client("sesv2", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x",
                          endpoint_url=f"http://127.0.0.1:{slow_ses.server_address[1]}",
                          # the retry policy the gateway's clients use (aws.Clients), a short wait
                          config=Config(retries={"mode": "standard", "max_attempts": 4}, connect_timeout=2,
                                        read_timeout=0.5))
    [result] = SesSender(client).send([Envelope("bounce+x@example.test", "a@example.org")], b"Subject: x\r\n\r\nx")
    assert SlowSes.requests == 1  # botocore used to send it four times
    assert (result.status, result.error) == ("unknown", "ses-no-answer") and "not sent again" in result.detail


def test_an_endpoint_that_cannot_be_reached_is_deferred_for_a_later_try():
    client = boto3.client("sesv2", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x",
                          endpoint_url=f"http://127.0.0.1:{free_port()}",  # nothing listens there
                          config=Config(retries={"mode": "standard", "max_attempts": 2}, connect_timeout=1))
    [result] = SesSender(client).send([Envelope("bounce+x@example.test", "a@example.org")], b"Subject: x\r\n\r\nx")
    assert (result.status, result.error) == ("deferred", "ses-unreachable")
