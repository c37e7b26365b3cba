"""SQS fetch queue: fetch one mailbox per record, within the invocation's time budget."""

from ._runtime import container, deadline_from, logger, metrics
from ..services import fetch


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
def handler(event, context):
    return fetch.handle_sqs_batch(container(), event, deadline=deadline_from(context))
