"""EventBridge schedule: carry out the effects left pending (services.outbox.sweep).

An outcome's effects (its event, follower notifications, the polite answer, a Send Result) are
written with it and carried out right after; what an invocation could not finish (killed, or the
bus unreachable for longer than its retries) is found here, oldest first, within the invocation's
time.
"""

from ..services import outbox
from ._runtime import container, count, deadline_from, logger, metrics, schedule_of


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
def handler(event, context):
    result = outbox.sweep(container(), deadline=deadline_from(context, margin_ms=10_000))
    count("OutboxEffectsSwept", result["done"])
    count("OutboxEffectsPending", result["pending"])
    logger.info("outbox swept", extra={**result, **schedule_of(event)})
    return result
