"""SQS batches with partial batch failures (ReportBatchItemFailures): only the SQS-triggered
handlers import this."""

from __future__ import annotations

import logging
from typing import Any, Callable

from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

log = logging.getLogger(__name__)


class RetryLater(Exception):
    """Raised by a record handler for a record SQS must hand out again (a partial batch failure)."""


def sqs_batch(event: dict, record_handler: Callable[..., Any]) -> dict:
    """Each record of an SQS event through `record_handler(record=SQSRecord)`; the records it
    raised for are reported as batch item failures, so SQS hands out only those again
    (https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-errorhandling.html). A batch whose
    every record failed is reported the same way, not raised: the invocation itself went well.

    What Powertools' BatchProcessor does for a standard queue, in these few lines: its module
    imports asyncio and the Kafka, Kinesis and DynamoDB stream event classes, ~10 ms of every
    cold start of an SQS-triggered function."""
    failures = []
    for raw in event.get("Records") or []:
        record = SQSRecord(raw)
        try:
            record_handler(record=record)
        except Exception as exc:  # noqa: BLE001 - the record goes back to the queue; the handler logged why
            log.debug("SQS record %s handed out again: %r", raw.get("messageId"), exc)
            failures.append({"itemIdentifier": raw.get("messageId", "")})
    return {"batchItemFailures": failures}
