"""Invoking the Lambda handlers in-process, with the events their triggers send.

The local stack calls exactly the handler functions Lambda calls (mailgate.entrypoints.*), with
events shaped as SES, SQS, SNS and EventBridge shape them.
"""

from __future__ import annotations

import hashlib
import importlib
import logging
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

log = logging.getLogger("mailgate.local")

FUNCTIONS = ("inbound", "fetch_dispatcher", "fetch_worker", "outbound", "feedback", "dns_check", "outbox_sweep",
             "delivery", "api")


@dataclass
class LambdaContext:
    """The attributes of Lambda's context object that Powertools and our handlers read."""

    function_name: str
    memory_limit_in_mb: int = 512
    timeout_ms: int = 300_000
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    invoked_function_arn: str = ""
    log_group_name: str = ""
    log_stream_name: str = "local"
    _started: float = field(default_factory=time.monotonic)

    def __post_init__(self) -> None:
        self.invoked_function_arn = self.invoked_function_arn or \
            f"arn:aws:lambda:us-east-1:123456789012:function:{self.function_name}"
        self.log_group_name = self.log_group_name or f"/aws/lambda/{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int(self.timeout_ms - (time.monotonic() - self._started) * 1000))


def invoke(function: str, event: dict[str, Any], *, timeout_s: int = 300) -> Any:
    if function not in FUNCTIONS:
        raise ValueError(f"unknown function {function!r}")
    module = importlib.import_module(f"mailgate.entrypoints.{function}")
    return module.handler(event, LambdaContext(function_name=f"mailgate-{function}", timeout_ms=timeout_s * 1000))


def scheduled_event(rule: str = "mailgate-fetch-schedule") -> dict[str, Any]:
    return {"version": "0", "id": str(uuid.uuid4()), "detail-type": "Scheduled Event", "source": "aws.events",
            "account": "123456789012", "time": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "region": "us-east-1", "resources": [f"arn:aws:events:us-east-1:123456789012:rule/{rule}"],
            "detail": {}}


def sqs_event(messages: list[dict[str, Any]], queue_arn: str) -> dict[str, Any]:
    """SQS messages (from ReceiveMessage) as the event Lambda's SQS poller sends."""
    return {"Records": [{
        "messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"], "body": m["Body"],
        "attributes": {k: str(v) for k, v in (m.get("Attributes") or {}).items()},
        "messageAttributes": {}, "md5OfBody": hashlib.md5(m["Body"].encode()).hexdigest(),
        "eventSource": "aws:sqs", "eventSourceARN": queue_arn, "awsRegion": "us-east-1",
    } for m in messages]}


class QueuePoller(threading.Thread):
    """Plays Lambda's SQS event source mapping: receive, invoke, delete what succeeded.

    With ReportBatchItemFailures the handler names the records that failed; those stay in the
    queue, become visible again, and after maxReceiveCount go to the dead-letter queue.
    """

    def __init__(self, sqs, queue_url: str, function: str, *, batch_size: int = 10) -> None:
        super().__init__(name=f"poll-{function}", daemon=True)
        self.sqs, self.queue_url, self.function, self.batch_size = sqs, queue_url, function, batch_size
        self.stopping = threading.Event()
        self.queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]

    def poll_once(self, wait: int = 1) -> int:
        got = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=self.batch_size,
                                       WaitTimeSeconds=wait, AttributeNames=["All"]).get("Messages", [])
        if not got:
            return 0
        try:
            result = invoke(self.function, sqs_event(got, self.queue_arn)) or {}
            failed = {f["itemIdentifier"] for f in result.get("batchItemFailures", [])}
        except Exception:
            log.exception("%s failed on a batch of %d; the messages will be retried", self.function, len(got))
            return len(got)
        done = [m for m in got if m["MessageId"] not in failed]
        if done:
            self.sqs.delete_message_batch(QueueUrl=self.queue_url, Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)])
        return len(got)

    def run(self) -> None:
        while not self.stopping.is_set():
            try:
                self.poll_once()
            except Exception:
                log.exception("polling %s", self.queue_url)
                self.stopping.wait(2)

    def stop(self) -> None:
        self.stopping.set()


def drain(sqs, queue_url: str, function: str, *, rounds: int = 20) -> int:
    """Process what is in the queue now (used by the demo and tests), return how many messages."""
    poller = QueuePoller(sqs, queue_url, function)
    total = 0
    for _ in range(rounds):
        n = poller.poll_once(wait=0)
        total += n
        if n == 0:
            break
    return total
