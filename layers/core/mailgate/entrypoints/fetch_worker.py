"""SQS fetch queue: fetch one mailbox per record, within the invocation's time budget."""

from ._runtime import container, count, deadline_from, logger, metrics
from ..services import fetch


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
def handler(event, context):
    result = fetch.handle_sqs_batch(container(), event, deadline=deadline_from(context))
    count("FetchJobs", len(event.get("Records", [])))
    count("FetchJobsRetried", len(result.get("batchItemFailures", [])))
    return result
