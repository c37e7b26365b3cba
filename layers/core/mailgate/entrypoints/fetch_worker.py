"""SQS fetch queue: fetch one mailbox per record, within the invocation's time budget.

A job that is worth handing out again (a transient failure, no time left to start it) is
reported as a batch item failure; everything else is done with, its outcome in the server's
health (`mailgate fetch status`).
"""

from __future__ import annotations

from functools import partial
from typing import Any

from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from ..errors import TransientError
from ..services import fetch
from ._runtime import container, count, deadline_from, logger, metrics, outcome_metric, seconds
from ._sqs import sqs_batch


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
def handler(event, context):
    result = handle(container(), event, deadline=deadline_from(context))
    count("FetchJobs", len(event.get("Records", [])))
    count("FetchJobsRetried", len(result["batchItemFailures"]))
    return result


def observe(res: fetch.FetchResult) -> None:
    """A run's metrics and one log line per mailbox. The lag per mailbox is a log field, not a
    metric dimension (a custom metric per mailbox would be billed each month): the dashboard's
    table reads it with Logs Insights; the metrics carry the worst of all mailboxes."""
    if res.status in ("ok", "failed"):
        seconds("FetchLagSeconds", res.lag_seconds)
        seconds("FetchFailingSeconds", res.failing_seconds)
    for outcome, n in res.outcomes.items():
        count(outcome_metric(outcome), n)
    logger.info("fetch run", extra={"mailbox": res.server, "status": res.status, "fetched": res.fetched,
                                    "fetch_lag_seconds": round(res.lag_seconds, 1),
                                    "failing_seconds": round(res.failing_seconds, 1),
                                    "error_code": res.error_code})


def handle(c, event: dict, *, deadline: float) -> dict:
    """Each record's job, all within `deadline` (a time.monotonic() time)."""
    return sqs_batch(event, partial(_run, c, deadline))


def _run(c, deadline: float, record: SQSRecord) -> dict[str, Any]:
    try:
        job = record.json_body
    except (KeyError, TypeError, ValueError):
        logger.error("fetch queue: malformed message dropped",
                     extra={"sqs_message_id": record.get("messageId"), "body": str(record.get("body"))[:300]})
        return {}
    try:
        res = fetch.run_job(c, job, deadline=deadline, observe=observe)
    except TransientError as exc:
        logger.warning("fetch job handed out again", extra={"job": job, "reason": str(exc)})
        raise
    except Exception:
        logger.exception("fetch job crashed; handed out again", extra={"job": job})
        raise
    return res.to_dict()
