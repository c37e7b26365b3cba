"""SES receipt rule, Lambda action: route the message SES stored in S3 (DESIGN.md flow 1)."""

from ._runtime import container, logger, metrics
from ..services import inbound


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
def handler(event, context):
    return inbound.handle_ses_event(container(), event)
