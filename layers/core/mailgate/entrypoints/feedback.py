"""SNS topic of SES bounce and complaint notifications (DESIGN.md flow 4).

Each record's Message is one SES notification (JSON). A record that is not one is reported in
the result, never raised, so it cannot hold up the others; trouble of the stores fails the
invocation (TransientError), and SNS's asynchronous invocation retries it.
"""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools.utilities.data_classes.sns_event import SNSEvent, SNSEventRecord

from ..errors import TransientError
from ..services import feedback
from ._runtime import container, count, logger, metrics


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
def handler(event, context):
    result = handle(container(), event)
    count("FeedbackNotifications", result["processed"])
    return result


def handle(c, event: Any) -> dict[str, Any]:
    """{"processed": n, "results": [one per record]}."""
    records = event.get("Records") if isinstance(event, dict) else None
    if not isinstance(records, list):
        return {"processed": 0, "results": []}
    results = [_one(c, record) for record in SNSEvent(event).records]
    return {"processed": len(results), "results": results}


def _one(c, record: SNSEventRecord) -> dict[str, Any]:
    try:
        message = record.sns.message
    except (KeyError, TypeError):
        message = None
    if not isinstance(message, str):
        return {"outcome": "invalid", "reason": "not an SNS record with a Message"}
    expected = c.settings.feedback_topic_arn
    topic = str(record.raw_event.get("Sns", {}).get("TopicArn") or "")
    if expected and topic != expected:
        # SES notifications are trusted because only SES publishes to this stack's topic
        return {"outcome": "refused", "reason": f"from topic {topic[:200]!r}, not the stack's feedback topic"}
    try:
        notification = json.loads(message)
    except ValueError:
        return {"outcome": "invalid", "reason": "SNS Message is not JSON"}
    try:
        return feedback.handle_feedback(c, notification)
    except TransientError:
        raise
    except Exception as exc:  # noqa: BLE001 - one broken notification must not lose the rest of the batch
        logger.exception("an SES notification could not be processed")
        return {"outcome": "failed", "reason": f"{type(exc).__name__}: {exc}"[:300]}
