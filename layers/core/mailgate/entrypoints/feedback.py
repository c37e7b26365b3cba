"""SNS topic of SES bounce and complaint notifications (DESIGN.md flow 4)."""

from ._runtime import container, logger, metrics
from ..services import feedback


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
def handler(event, context):
    return feedback.handle_sns_event(container(), event)
