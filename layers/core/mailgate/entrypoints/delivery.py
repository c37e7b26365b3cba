"""SQS delivery queue: hand each routed message to its target, Odoo or a webhook (DESIGN.md flow 5).

Each record's body is one job `{"message_key", "target"}`. A delivery to retry (timeout, 408,
429, 5xx, another attempt holding it) is reported as a batch item failure after its visibility
timeout is set to the backoff (doubling from MAILGATE_DELIVERY_FIRST_RETRY, at least the target's
Retry-After, at most 11.5 h); everything else is done with (delivered, kept, failed: recorded).

Why a function and a queue rather than EventBridge API destinations: an API destination sends the
event as it is, with a static header or OAuth; it cannot sign each body per Standard Webhooks
(`webhook-signature` is an HMAC over id, timestamp and body) nor speak XML-RPC to Odoo, and its
retries stop after 24 hours with no record per attempt.

Metric `DeliveryFailures` (namespace mailgate, dimension Target) counts every attempt that failed,
retried or permanent.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit, single_metric
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from ..services import delivery
from ._runtime import container, count, logger, metrics
from ._sqs import RetryLater, sqs_batch


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
def handler(event, context):
    result = handle(container(), event)
    count("DeliveryJobs", len(event.get("Records", [])))
    return result


def handle(c, event: dict) -> dict:
    return sqs_batch(event, partial(_deliver, c))


def _deliver(c, record: SQSRecord) -> dict[str, Any]:
    try:
        body = record.json_body
    except (KeyError, TypeError, ValueError):
        logger.error("not a delivery job; dropped", extra={"sqs_message_id": record.message_id})
        return {"status": "bad-job"}
    attempt = _receives(record)
    state = delivery.deliver(c, body if isinstance(body, dict) else {}, attempt=attempt)
    status = state.get("status")
    logger.info("delivery attempt", extra={"id": state.get("id"), "status": status, "attempt": attempt,
                                           "detail": state.get("detail", "")})
    if status in ("retrying", "failed") and state.get("attempts") and state["attempts"][-1]["attempt"] == attempt:
        failure_metric(state.get("target", ""))
    if status in ("retrying", "busy"):
        _back_off(c, record, int(state.get("retry_in") or c.settings.delivery_first_retry))
        raise RetryLater(f"{state.get('id')}: {state.get('detail', status)}")
    if status == "failed" and attempt >= delivery.MAX_ATTEMPTS:
        raise RetryLater("given up: the job goes to the dead-letter queue")
    return state


def failure_metric(target: str) -> None:
    """DeliveryFailures{Target}: its own EMF line, so targets of one batch keep their dimension."""
    with single_metric(name="DeliveryFailures", unit=MetricUnit.Count, value=1, namespace="mailgate") as metric:
        metric.add_dimension(name="Target", value=target or "unknown")


def _receives(record: SQSRecord) -> int:
    try:
        return max(1, int(record.attributes.approximate_receive_count or 1))
    except (KeyError, TypeError, ValueError):
        return 1


def _back_off(c, record: SQSRecord, seconds: int) -> None:
    handle = record.get("receiptHandle")
    if not handle:
        return
    try:
        c.delivery_queue.change_visibility(handle, seconds)
    except Exception:  # noqa: BLE001 - the retry still happens, at the queue's visibility timeout
        logger.warning("could not delay the retry of a delivery", exc_info=True)
