"""SQS outbound queue: compose, sign and send each request (DESIGN.md flow 3).

Each record's body is one send request (docs/outbound.md). A request with recipients still to
try ("retrying": deferred by the server, another worker on it, the store unreachable) is
reported as a batch item failure, and SQS hands it out again after a delay that doubles with
each receive; everything else is done with (sent, rejected, failed: the "Send Result" says so).
"""

from __future__ import annotations

from functools import partial
from typing import Any

from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from ..services import outbound
from ._runtime import container, count, deadline_from, emit_tallies, logger, metrics, tally
from ._sqs import RetryLater, sqs_batch

#: the first retry after 30 s, doubling per receive, at most 15 minutes
FIRST_RETRY_SECONDS, MAX_RETRY_SECONDS = 30, 900


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
def handler(event, context):
    result = handle(container(), event, deadline=deadline_from(context))
    count("OutboundRequests", len(event.get("Records", [])))
    count("OutboundRetries", len(result["batchItemFailures"]))
    emit_tallies()
    return result


def handle(c, event: dict, *, deadline: float | None = None,
           senders: outbound.Senders | None = None) -> dict:
    """The batch, through one set of open transports (one SMTP connection per server)."""
    own = senders is None
    senders = senders or outbound.Senders(c)
    try:
        return sqs_batch(event, partial(_send, c, senders, deadline))
    finally:
        if own:
            senders.close()


def _send(c, senders: outbound.Senders, deadline: float | None, record: SQSRecord) -> dict[str, Any]:
    try:
        request = record.json_body
    except (KeyError, TypeError, ValueError) as exc:
        return outbound.reject_unreadable(c, str(exc))  # retrying cannot fix it
    try:
        result = outbound.send(c, request, senders=senders, deadline=deadline)
    except Exception:
        logger.exception("send failed unexpectedly; SQS retries it", extra={"sqs_message_id": record.message_id})
        raise
    count_recipients(result)
    if result.get("status") == "retrying":
        _back_off(c, record)
        raise RetryLater(result.get("reason") or "recipients deferred")
    return result


#: a recipient's status as the dashboard counts it, per transport (SES or the outgoing server's name)
RECIPIENT_METRICS = {"sent": "OutboundSent", "failed": "OutboundFailed", "unknown": "OutboundFailed",
                     "deferred": "OutboundDeferred"}


def count_recipients(result: dict[str, Any]) -> None:
    """OutboundSent / OutboundFailed {Transport} once per recipient, when its request is settled;
    OutboundDeferred for each attempt a recipient was deferred. A request answered again
    ("duplicate") or refused before any transport was chosen counts nothing here."""
    transport, status = result.get("transport"), result.get("status")
    if not transport or status == "duplicate":
        return
    for r in result.get("recipients") or []:
        name = RECIPIENT_METRICS.get(r.get("status"))
        if name and (status != "retrying" or name == "OutboundDeferred"):
            tally(name, "Transport", str(transport))


def retry_delay(receive_count: int) -> int:
    """Seconds before the next try: FIRST_RETRY_SECONDS doubling per receive, at most MAX_RETRY_SECONDS."""
    return min(MAX_RETRY_SECONDS, FIRST_RETRY_SECONDS * 2 ** max(0, receive_count - 1))


def _back_off(c, record: SQSRecord) -> None:
    """Make SQS wait longer before each new try (exponential backoff on the visibility timeout)."""
    handle = record.get("receiptHandle")
    if not handle:
        return  # not a message SQS handed out: nothing to delay
    try:
        received = int(record.attributes.approximate_receive_count or 1)
    except (KeyError, TypeError, ValueError):
        received = 1
    try:
        c.outbound_queue.change_visibility(handle, retry_delay(received))
    except Exception:  # noqa: BLE001 - the retry still happens, only sooner
        logger.warning("could not delay the retry of an SQS message", exc_info=True)
