"""SNS topic of SES bounce and complaint notifications (DESIGN.md flow 4)."""

from ._runtime import container, count, logger, metrics
from ..services import feedback


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
def handler(event, context):
    result = feedback.handle_sns_event(container(), event)
    count("FeedbackNotifications", result.get("processed", 0))
    return result
