"""SQS outbound queue: compose, sign and send each request (DESIGN.md flow 3)."""

from ._runtime import container, count, logger, metrics
from ..services import outbound


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
def handler(event, context):
    result = outbound.handle_sqs_batch(container(), event)
    count("OutboundRequests", len(event.get("Records", [])))
    count("OutboundRetries", len(result.get("batchItemFailures", [])))
    return result
