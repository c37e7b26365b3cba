"""SQS batches through Powertools' BatchProcessor (only the SQS-triggered handlers import it)."""

from __future__ import annotations

from typing import Any, Callable

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response


class RetryLater(Exception):
    """Raised by a record handler for a record SQS must hand out again (a partial batch failure)."""


def sqs_batch(event: dict, record_handler: Callable[..., Any]) -> dict:
    """Each record of an SQS event through `record_handler(record=SQSRecord)`; the records it
    raised for are reported as batch item failures (ReportBatchItemFailures), so SQS hands out
    only those again. A batch whose every record failed is reported the same way, not raised:
    the invocation itself went well."""
    processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
    return process_partial_response(event=event, record_handler=record_handler, processor=processor)
